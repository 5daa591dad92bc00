"""`python -m benchmark verify NAME --fixture DIR`: check a method against outputs its reference code
recorded (e.g. the authors' code run on rule-made weights and a short video).

The method supplies the fixture format (`Method.reference_check(DIR)`): what to run (a dataset
folder, weights, options that make the method record its raw outputs) and how to compare them with
the folder's. The harness runs the method through the runner exactly as `run --checkpoint` does,
then prints the comparison per frame. Exit status: 0 all frames within tolerance, 1 some are not
(named), 2 a malformed folder.
"""

from __future__ import annotations

import contextlib
import pathlib
import tempfile
from dataclasses import dataclass, field
from typing import Any


class FixtureError(ValueError):
    """A reference folder that is missing a file or holds something malformed (exit status 2)."""


@dataclass
class ReferenceRun:
    """What to run: a dataset setting read from `data_root`, the method's options and weights."""

    dataset: str                      # NAME:SETTING
    protocol: str
    data_root: pathlib.Path
    options: dict[str, Any]
    checkpoint: pathlib.Path | None
    vocabulary: list[str]             # the names the reference code was given, in order
    record: pathlib.Path              # where the options make the method record its outputs


@dataclass
class Comparison:
    """Per frame: the measured differences and whether each is within tolerance."""

    rows: list[dict[str, Any]]
    failed: list[str]                 # the frames outside tolerance (empty: all match)
    notes: list[str] = field(default_factory=list)


def verify(method: str, fixture: pathlib.Path, workdir: pathlib.Path | None = None, device: str = "cpu",
           **choices: Any) -> tuple[Comparison, dict[str, Any]]:
    """Run `method` on the reference folder `fixture` and compare; returns the comparison and the
    cell's result. `choices` go to the method's reference check (e.g. how text is encoded)."""
    from benchmark import registry
    from benchmark.data import catalog
    from benchmark.plan import Cell, resolve_options
    from benchmark.runner import RunContext, run_cell

    check = registry.get(method).reference_check(pathlib.Path(fixture), **choices)
    kept = contextlib.nullcontext(str(workdir)) if workdir else None
    with kept or tempfile.TemporaryDirectory(prefix="verify-") as folder:
        work = pathlib.Path(folder)
        plan = check.prepare(work)
        name, setting = catalog.parse(plan.dataset)
        evaluation = catalog.open_evaluation(name, setting, plan.protocol, plan.data_root)
        if evaluation.setting.vocabulary != plan.vocabulary:
            raise FixtureError(f"{fixture}: its vocabulary ({len(plan.vocabulary)} names, starting "
                               f"{plan.vocabulary[:3]}) is not what {plan.dataset} under the {plan.protocol} "
                               f"protocol gives a method ({evaluation.setting.vocabulary[:3]}, ...)")
        options = resolve_options(method, {method: plan.options})
        cell = Cell(method, name, setting, plan.protocol, options,
                    checkpoint=str(plan.checkpoint) if plan.checkpoint else None)
        context = RunContext(str(work / "run"), data_root=str(plan.data_root), device=device)
        result = run_cell(cell.to_dict(), context)
        if result["status"] != "done":
            return Comparison([], ["all"], [f"the run failed: {result['error']['message']}"]), result
        return check.compare(plan.record), result


def format_comparison(comparison: Comparison) -> str:
    import pandas as pd

    lines = []
    if comparison.rows:
        lines.append(pd.DataFrame(comparison.rows).to_string(
            index=False, float_format=lambda value: f"{value:.3g}", na_rep=""))
    lines += comparison.notes
    lines.append("all frames within tolerance" if not comparison.failed else
                 f"OUTSIDE TOLERANCE: {', '.join(comparison.failed)}")
    return "\n".join(lines)
