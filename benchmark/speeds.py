"""Measured speeds that methods declare, and the time estimates `run --dry-run` makes from them.

A method lists `Speed` figures in its `speeds` class attribute: seconds per annotated frame and
seconds per training iteration, on one kind of device, with the options they were measured with and
the benchmark that measured them. An estimate uses only a figure measured on the device kind the job
will run on; where none was, it says so and shows what was measured elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEVICE_KINDS = ("cpu", "gpu")
#: The machine the shipped methods' CPU figures were measured on (the project's development machines).
DEV_CPU = "2-core x86 CPU, torch 2.14, 2 threads"


@dataclass(frozen=True)
class Speed:
    device: str                                  # "cpu" or "gpu"
    machine: str                                 # what exactly, e.g. "2-core x86 CPU, torch 2.14"
    source: str                                  # the command that measured it
    seconds_per_frame: float | None = None       # per annotated frame, at a steady state (full clips)
    seconds_per_iteration: float | None = None   # one training iteration of the method's recipe
    when: dict[str, Any] = field(default_factory=dict)  # options (and recipe) it was measured with; a tuple: any of
    frame: tuple[int, int] | None = (480, 853)   # the frame size a per-frame figure was measured at

    def __post_init__(self) -> None:
        if self.device not in DEVICE_KINDS:
            raise ValueError(f"Speed.device {self.device!r}: one of {', '.join(DEVICE_KINDS)}")

    def applies(self, options: dict[str, Any]) -> bool:
        return all(options.get(key) in (value if isinstance(value, tuple) else (value,))
                   for key, value in self.when.items())


def figure(speeds: tuple[Speed, ...], options: dict[str, Any], device: str, what: str,
           frame: tuple[int, int] | None = None) -> Speed | None:
    """The most specific figure for `what` ("seconds_per_frame" or "seconds_per_iteration") that
    applies to these options on this kind of device (and, per frame, at this frame size), or None."""
    found = [s for s in speeds if s.device == device and getattr(s, what) is not None and s.applies(options)
             and (what != "seconds_per_frame" or frame is None or s.frame == frame)]
    return max(found, key=lambda s: len(s.when), default=None)


def estimate(speeds: tuple[Speed, ...], options: dict[str, Any], device: str, what: str, count: int | None,
             unit: str, divide: int = 1, frame: tuple[int, int] | None = None) -> tuple[str, Speed | None]:
    """`count` units (frames or iterations, of `frame` size) at the declared speed, as text, and the
    figure the text quotes (None when none); `divide` jobs share the units. Only a figure measured on
    this kind of device and frame size makes an estimate; the text says where others were measured."""
    if count is None:
        return f"unknown (how many {unit}s is not known before the run)", None
    found = figure(speeds, options, device, what, frame)
    if found is not None:
        shared = f" in each of {divide} jobs" if divide > 1 else ""
        return (f"~{_duration(count * getattr(found, what) / divide)}{shared} ({count:,} {unit}s x "
                f"{getattr(found, what):g} s on a {device})", found)
    if frame is not None and figure(speeds, options, device, what) is not None:
        other = figure(speeds, options, device, what)
        return (f"unknown at {frame[0]}x{frame[1]}: measured only at {other.frame[0]}x{other.frame[1]} "
                f"({getattr(other, what):g} s per {unit}); {count:,} {unit}s", other)
    elsewhere = [s for s in DEVICE_KINDS if s != device and figure(speeds, options, s, what, frame) is not None]
    if not elsewhere:
        at = f" at {frame[0]}x{frame[1]}" if frame else ""
        return f"unknown: never measured for these options{at} on any device ({count:,} {unit}s)", None
    other = figure(speeds, options, elsewhere[0], what, frame)
    return (f"unknown on a {device}: never measured there; on a {other.device} {getattr(other, what):g} s per "
            f"{unit}, ~{_duration(count * getattr(other, what) / divide)} for {count:,} {unit}s", other)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
