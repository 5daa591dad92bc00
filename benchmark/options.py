"""Typed options: every option value is checked against its declared type before any work starts.

A method's options are the keyword arguments of its `__init__`, typed by their annotations (a plugin
gets this for free); a range is declared with `Annotated[float, Range(0, 1, high_open=True)]`, a set
of choices with `Literal[...]`. An option without annotation takes the type of its default. Values
come from YAML (`--opt ov2vss.alpha=0.5`), so a number written as `1e-3` (a string to YAML) is read as
the number it says, an integer is a valid float, and nothing else is converted.
"""

from __future__ import annotations

import inspect
import types
import typing
from dataclasses import dataclass
from typing import Any


class OptionError(ValueError):
    """An option value of the wrong type or out of range: the message names the key, the value and
    what is expected."""


@dataclass(frozen=True)
class Range:
    """Bounds of a numeric option (None: unbounded on that side)."""

    low: float | None = None
    high: float | None = None
    high_open: bool = False

    def holds(self, value: float) -> bool:
        above = self.low is None or value >= self.low
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def __str__(self) -> str:
        if self.high is None:
            return f">= {self.low}"
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {self.high}"
        return f"in [{self.low}, {self.high}{')' if self.high_open else ']'}"


def method_types(cls: type) -> tuple[dict[str, Any], bool]:
    """The declared type of each keyword option of `cls.__init__`, and whether it takes any other
    keyword (`**kwargs`: those are the method's to check)."""
    init = cls.__init__
    try:
        hints = typing.get_type_hints(init, include_extras=True)
    except (NameError, TypeError):  # an annotation that does not resolve: fall back to the defaults
        hints = {}
    declared, open_ended = {}, False
    for name, parameter in inspect.signature(init).parameters.items():
        if parameter.kind is parameter.VAR_KEYWORD:
            open_ended = True
        elif name != "self" and parameter.kind in (parameter.KEYWORD_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            declared[name] = hints.get(name, _type_of(parameter.default))
    return declared, open_ended


def default_types(defaults: dict[str, Any], declared: dict[str, Any] | None = None) -> dict[str, Any]:
    """Types of options declared by their defaults (a default of None: a string or None), with any
    explicitly `declared` ones in their place."""
    return {key: (declared or {}).get(key, _type_of(value) if value is not None else str | None)
            for key, value in defaults.items()}


def check(owner: str, key: str, value: Any, annotation: Any) -> Any:
    """`value` as the option's type; OptionError naming `owner.key`, the value and the type if it is not one."""
    ok, converted = _convert(value, annotation)
    if not ok:
        raise OptionError(f"{owner}.{key}={value!r}: expected {describe(annotation)}")
    return converted


def describe(annotation: Any) -> str:
    """The type in words, as an error message shows it."""
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        ranges = [str(extra) for extra in arguments[1:] if isinstance(extra, Range)]
        return describe(arguments[0]) + "".join(f" {r}" for r in ranges)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(choice) for choice in arguments)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(argument) for argument in arguments)
    if origin in (tuple, list):
        return f"a list [{describe(arguments[0]) if arguments else 'a value'}, ...]"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string",
            type(None): "null"}.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _convert(value: Any, annotation: Any) -> tuple[bool, Any]:
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any or annotation is inspect.Parameter.empty:
        return True, value
    if origin is typing.Annotated:
        ok, converted = _convert(value, arguments[0])
        ranges = [extra for extra in arguments[1:] if isinstance(extra, Range)]
        return ok and all(r.holds(converted) for r in ranges), converted
    if origin is typing.Literal:
        return value in arguments, value
    if origin in (typing.Union, types.UnionType):
        for argument in arguments:
            ok, converted = _convert(value, argument)
            if ok:
                return True, converted
        return False, value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            return False, value
        item = arguments[0] if arguments else Any
        converted = [_convert(element, item) for element in value]
        return all(ok for ok, _ in converted), origin(element for _, element in converted)
    if annotation is type(None):
        return value is None, value
    if annotation is bool:
        return isinstance(value, bool), value
    if annotation in (int, float):
        return _number(value, annotation)
    if isinstance(annotation, type):
        return isinstance(value, annotation), value
    return True, value  # a type this module does not know: the method checks it


def _number(value: Any, kind: type) -> tuple[bool, Any]:
    if isinstance(value, bool):
        return False, value
    if isinstance(value, str):  # YAML reads 1e-3 as a string
        try:
            value = float(value)
        except ValueError:
            return False, value
    if not isinstance(value, (int, float)):
        return False, value
    if kind is int:
        whole = float(value).is_integer()
        return whole, int(value) if whole else value
    return True, value


def _type_of(default: Any) -> Any:
    if default is inspect.Parameter.empty or default is None:
        return Any
    return type(default)
