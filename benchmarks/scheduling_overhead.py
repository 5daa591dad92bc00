"""What running a cell as a SLURM job costs over running it as a local process, per cell.

    python benchmarks/scheduling_overhead.py [--cells 5] [--executors local,slurm] [--profile local]

Needs a SLURM cluster for `slurm` (the one-node cluster of slurm/local/ will do). Each executor runs
`--cells` one-cell runs of the `chance` method on synthetic:unseen, one after another (a new seed
each, so no cell is ever reused), through the same `executors.execute` that `run` calls. Per cell it
takes the submission time (just before `execute`), the cell's own start and end (its result's
provenance, written by the job) and the moment the driver has the result, and prints the medians of
submission -> start (queueing, process start, imports), start -> end (the cell's own work) and
end -> collected (how long the driver takes to notice, bounded by its polling interval), with the
slurm / local ratio of each.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import tempfile
import time

from benchmark import plan
from benchmark.execution import executors, profiles
from benchmark.runner import RunContext
from benchmark.store import RunStore


def seconds(iso: str) -> float:
    return datetime.datetime.fromisoformat(iso).timestamp()


def one_cell(executor: str, seed: int, output: str, slurm: executors.SlurmOptions | None) -> dict[str, float]:
    (cell,) = plan.make(plan.Request(methods=["chance"], datasets=["synthetic:unseen"], seed=seed)).cells
    collected = {}
    submitted = time.time()
    executors.execute([cell], RunContext(output), executor, 1,
                      on_result=lambda result: collected.setdefault("at", time.time()), slurm=slurm)
    (result,) = [r for r in RunStore(output).results() if r["cell"]["id"] == cell.id]
    assert result["status"] == "done", result.get("error")
    start, end = seconds(result["provenance"]["start_time"]), seconds(result["provenance"]["end_time"])
    return {"submit_to_start": start - submitted, "cell": end - start, "end_to_collected": collected["at"] - end}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=5)
    parser.add_argument("--executors", default="local,slurm")
    parser.add_argument("--profile", default="local", help="cluster profile for the slurm executor")
    args = parser.parse_args()
    slurm = executors.SlurmOptions(profiles.load(args.profile))
    medians = {}
    with tempfile.TemporaryDirectory(prefix="overhead-") as folder:
        for executor in args.executors.split(","):
            one_cell(executor, 10_000, f"{folder}/{executor}-warm", slurm)  # first import and dataset cache
            timings = [one_cell(executor, seed, f"{folder}/{executor}", slurm) for seed in range(args.cells)]
            medians[executor] = {key: statistics.median(t[key] for t in timings) for key in timings[0]}
    print(f"median seconds per cell over {args.cells} one-cell runs (chance on synthetic:unseen, 80 frames); the "
          f"drivers poll every {executors.POLL_SECONDS:g} s (local) and {slurm.profile.poll_s:g} s (slurm profile "
          f"{slurm.profile.name})")
    print(f"{'executor':10s} {'submit->start':>14s} {'cell itself':>12s} {'end->collected':>15s} {'total':>8s}")
    for executor, m in medians.items():
        total = sum(m.values())
        print(f"{executor:10s} {m['submit_to_start']:14.2f} {m['cell']:12.2f} {m['end_to_collected']:15.2f} {total:8.2f}")
    if {"local", "slurm"} <= set(medians):
        ratio = {key: medians["slurm"][key] / medians["local"][key] for key in medians["local"]}
        print(f"slurm / local: submit->start {ratio['submit_to_start']:.1f}x, end->collected "
              f"{ratio['end_to_collected']:.1f}x")


if __name__ == "__main__":
    main()
