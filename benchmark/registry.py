"""Method names -> method classes.

Three sources, looked up in this order: classes already defined (any subclass of `Method` with a
`name` registers itself on definition, so a `--plugin` file only has to be imported); the built-in
methods, listed here by name and imported only when asked for; and entry points of installed
packages in the group `benchmark.methods`.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import pathlib
import sys
import traceback
from typing import Any

ENTRY_POINT_GROUP = "benchmark.methods"

#: Built-in methods: name -> (import path "module:Class", one-line description). Importing waits
#: until a method is used, so `list` and `--help` never pay for torch models.
BUILTIN: dict[str, tuple[str, str]] = {
    "chance": ("methods.chance:ChanceMethod",
               "uniform random label per pixel: the chance level every method must beat"),
    "clip-cost-volume": ("methods.clip_cost_volume:ClipCostVolume",
                         "image-only CLIP cost volume: training-free, or trained (OV2VSS without its video modules)"),
    "sam-clip": ("methods.sam_clip:SamClip",
                 "SAM + CLIP: SAM's automatic masks, each region named by CLIP; training-free"),
    "ov2vss": ("methods.ov2vss.method:OV2VSS",
               "OV2VSS: CLIP cost volume with spatial-temporal fusion, random frame enhancement, video text encoding"),
    "ov2vss-authors": ("methods.ov2vss_authors.method:OV2VSSAuthors",
                       "OV2VSS as the authors' released code computes it, from their checkpoint (test time)"),
    "sclip": ("methods.attention_clip:SCLIP",
              "SCLIP: CLIP whose last block attends by q-q plus k-k correlation; training-free"),
    "clearclip": ("methods.attention_clip:ClearCLIP",
                  "ClearCLIP: CLIP's last block with q-q attention, no residual, no FFN; training-free"),
    "naclip": ("methods.attention_clip:NACLIP",
               "NACLIP: CLIP's last block with k-k attention plus a Gaussian neighbourhood, then PAMR; training-free"),
    "temporal": ("methods.temporal:Temporal",
                 "any image method made a video method: its per-pixel scores averaged over neighbouring frames"),
}

#: name -> Method subclass (this module never imports `interface`: defining a subclass calls `register`)
_registered: dict[str, type] = {}


class UnknownMethodError(LookupError):
    pass


def register(cls: type) -> None:
    """Record a method class under its `name` (called when the subclass is defined)."""
    name = cls.name
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__module__}.{cls.__qualname__}.name must be a non-empty string, got {name!r}")
    if name in BUILTIN and BUILTIN[name][0] != _qualified(cls):  # whether or not it was imported yet
        raise ValueError(f"method name {name!r} is a built-in method ({BUILTIN[name][0]}); "
                         f"give {_qualified(cls)} another name")
    previous = _registered.get(name)
    if previous is not None and _qualified(previous) != _qualified(cls):
        raise ValueError(
            f"method name {name!r} is taken by {_qualified(previous)}; "
            f"give {_qualified(cls)} another name")
    _registered[name] = cls


def _qualified(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def available() -> dict[str, str]:
    """Every method name that can be used now -> where it comes from."""
    names = {name: "built-in" for name in BUILTIN}
    names.update({name: f"entry point {ep.value}" for name, ep in _entry_points().items()})
    for name, cls in _registered.items():
        names.setdefault(name, f"plugin {_qualified(cls)}")
    return dict(sorted(names.items()))


def describe(name: str) -> str:
    """One line about a method, without importing a built-in."""
    if name in BUILTIN:
        return BUILTIN[name][1]
    cls = _registered.get(name)
    doc = (cls.__doc__ or "").strip().splitlines() if cls is not None else []
    return doc[0] if doc else ""


def get(name: str) -> type:
    """The class registered under `name`, importing it if it is a built-in or an entry point."""
    if name in _registered:
        return _registered[name]
    if name in BUILTIN:
        module, _, attr = BUILTIN[name][0].partition(":")
        getattr(importlib.import_module(module), attr)  # defining the class registers it
    else:
        entry_point = _entry_points().get(name)
        if entry_point is not None:
            cls = entry_point.load()
            if name not in _registered or _registered[name] is not cls:
                raise UnknownMethodError(
                    f"entry point {name!r} = {entry_point.value} must name a Method subclass whose name is {name!r}")
    if name not in _registered:
        known = ", ".join(available()) or "none"
        raise UnknownMethodError(
            f"unknown method {name!r}; known methods: {known}. "
            "Add your own with --plugin path/to/file.py (see README, 'Adding a method'; docs/methods.md).")
    return _registered[name]


def non_default_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options that differ from the method's defaults (all of them when it is not registered)."""
    try:
        defaults = get(name).default_options()
    except UnknownMethodError:  # a report of a folder whose plugin is gone still shows every option
        defaults = {}
    return {key: value for key, value in options.items() if defaults.get(key, object()) != value}


def create(name: str, **options: Any) -> Any:
    """An instance of the method `name` with these options."""
    cls = get(name)
    try:
        return cls(**options)
    except TypeError as error:
        accepted = ", ".join(cls.default_options()) or "none"
        raise TypeError(f"method {name!r} rejected options {options}: {error} (its options: {accepted})") from error


def load_plugin(spec: str) -> None:
    """Import a user's methods from a file path or an importable module name."""
    path = pathlib.Path(spec)
    if spec.endswith(".py") or path.exists():
        path = path.resolve()
        if not path.is_file():
            raise FileNotFoundError(f"plugin file {path} does not exist; pass --plugin a .py file or a module name")
        # A stable module name per file, so importing the same file twice is one import.
        module_name = "benchmark_plugin_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
        if module_name in sys.modules:
            return
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as error:
            del sys.modules[module_name]
            raise PluginError(_import_failure(str(path), error)) from error
        except BaseException:
            del sys.modules[module_name]
            raise
    else:
        try:
            importlib.import_module(spec)
        except ModuleNotFoundError as error:
            if error.name != spec.split(".")[0] and error.name != spec:  # the plugin imports something missing
                raise PluginError(_import_failure(spec, error)) from error
            raise ModuleNotFoundError(
                f"plugin {spec!r} is neither an existing file nor an importable module ({error})") from error
        except Exception as error:
            raise PluginError(_import_failure(spec, error)) from error


class PluginError(ValueError):
    """A plugin that fails to import: the message names its file, the line and the error."""


def _import_failure(plugin: str, error: Exception) -> str:
    """Where importing a plugin failed (the innermost line in the plugin's own code, else the last one)."""
    if isinstance(error, SyntaxError):
        where = f"{error.filename}, line {error.lineno}"
        code = (error.text or "").strip()
        return (f"plugin {plugin} could not be imported: {where}: SyntaxError: {error.msg}"
                + (f" ({code})" if code else "") + "; fix the file and run again")
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if not frame.filename.startswith("<frozen")]
    own = [frame for frame in frames if frame.filename == plugin]
    frame = (own or frames or [None])[-1]
    where = f"{frame.filename}, line {frame.lineno}" if frame else plugin
    return (f"plugin {plugin} could not be imported: {where}: {type(error).__name__}: {error}; "
            "fix the plugin and run again")
