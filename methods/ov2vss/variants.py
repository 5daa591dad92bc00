"""OV2VSS's named variants: every row of the paper's Table III is one configuration of the one model.

A variant is a set of option values (`--opt ov2vss.variant=NAME`); options given explicitly win.
`full` is the paper's model. Which variant each row of Table III runs is data: suites/table3.yaml
(the rows that equal the full model, e.g. "Concat on channel", name `full`, so it is trained once).
"""

from __future__ import annotations

from typing import Any

#: The paper's model: all three video modules, concatenation, one labelled frame, alpha = beta = 1.
FULL: dict[str, Any] = {"stcf": True, "rfe": True, "vte": "attn-ffn", "fusion": "concat", "annotations": "target",
                        "alpha": 1.0, "beta": 1.0}

VARIANTS: dict[str, dict[str, Any]] = {
    "full": {},
    "baseline": {"stcf": False, "rfe": False, "vte": "off"},
    "rfe": {"stcf": False, "vte": "off"},
    "rfe-stcf": {"vte": "off"},
    "fusion-add": {"fusion": "add"},
    "frames4-labels4": {"rfe": False, "annotations": "all"},
    "frames4-labels1": {"rfe": False},
    "vte-attn": {"vte": "attn"},
    "loss-a0.1-b1": {"alpha": 0.1, "beta": 1.0},
    "loss-a10-b1": {"alpha": 10.0, "beta": 1.0},
    "loss-a1-b0.1": {"alpha": 1.0, "beta": 0.1},
    "loss-a1-b10": {"alpha": 1.0, "beta": 10.0},
}

def variant_options(name: str) -> dict[str, Any]:
    """The option values variant `name` sets (the full model's, changed where the variant differs)."""
    if name not in VARIANTS:
        raise ValueError(f"unknown ov2vss variant {name!r}; choose one of {', '.join(VARIANTS)}")
    return {**FULL, **VARIANTS[name]}


def variant_of(options: dict[str, Any]) -> str | None:
    """The named variant that a method's options (`variant` plus any fields given explicitly, None
    where not given) amount to; None when they match none."""
    chosen = {**variant_options(options.get("variant", "full")),
              **{k: options[k] for k in FULL if options.get(k) is not None}}
    return next((name for name in VARIANTS if variant_options(name) == chosen), None)
