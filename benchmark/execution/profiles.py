"""Cluster profiles: the SLURM resources and habits of one cluster, kept as YAML in `slurm/`.

`--cluster-profile NAME` reads `slurm/NAME.yaml` (or a path to any YAML file); `--slurm KEY=VALUE`
overrides one field for one run. Unknown keys are errors, so a typo never silently drops a setting.
"""

from __future__ import annotations

import dataclasses
import pathlib
from dataclasses import dataclass, field
from typing import Any

PROFILES_DIR = pathlib.Path(__file__).resolve().parents[2] / "slurm"
DEFAULT_PROFILE = "default"


@dataclass
class ClusterProfile:
    name: str = DEFAULT_PROFILE
    partition: str | None = None          # None: the cluster's default partition
    gpus_per_node: int = 0
    cpus_per_task: int = 1
    mem_gb: float = 4.0
    timeout_min: int = 60                 # per job; a job that times out is requeued from its saved state
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    setup: list[str] = field(default_factory=list)      # shell lines run before the job (module load ...)
    sbatch: dict[str, Any] = field(default_factory=dict)  # any other sbatch option, e.g. {exclude: node7}
    max_array_size: int = 1000            # the cluster's MaxArraySize: bigger submissions are chunked
    array_parallelism: int = 64           # tasks of one array running at once
    max_retries: int = 2                  # resubmissions of a job that was cancelled, preempted or lost
    max_requeues: int = 50                # requeues of a job that reached its time limit (it resumes each time),
                                          # so a training may take up to (1 + max_requeues) x timeout_min
    poll_s: float = 10.0                    # how often the driver asks SLURM about its jobs
    snapshot: bool = True                 # jobs run a copy of the code made at submission
    python: str | None = None             # the interpreter on the nodes (default: this one)

    def submitit_parameters(self) -> dict[str, Any]:
        """The profile as submitit's AutoExecutor parameters (dependencies are added per submission)."""
        parameters: dict[str, Any] = {
            "timeout_min": self.timeout_min, "gpus_per_node": self.gpus_per_node, "cpus_per_task": self.cpus_per_task,
            "mem_gb": self.mem_gb, "slurm_array_parallelism": self.array_parallelism, "slurm_setup": list(self.setup),
        }
        for key in ("partition", "account", "qos", "constraint"):
            if getattr(self, key) is not None:
                parameters[f"slurm_{key}"] = getattr(self, key)
        return parameters


FIELDS = {f.name: f for f in dataclasses.fields(ClusterProfile)}


def available() -> list[str]:
    return sorted(path.stem for path in PROFILES_DIR.glob("*.yaml"))


def load(name_or_path: str = DEFAULT_PROFILE, overrides: list[str] | None = None) -> ClusterProfile:
    """The profile `slurm/NAME.yaml` (or the YAML file at a path), with `KEY=VALUE` overrides applied."""
    import yaml

    path = pathlib.Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        path = PROFILES_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no cluster profile {name_or_path!r}: neither a YAML file nor one of "
                                f"{available()} in {PROFILES_DIR}; copy {PROFILES_DIR / 'default.yaml'} and edit it")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"cluster profile {path}: expected a mapping of keys to values, got {type(data).__name__}")
    values = {"name": path.stem}
    for key, value in data.items():
        values[key] = _checked(key, value, str(path))
    for item in overrides or []:
        key, eq, text = item.partition("=")
        if not eq:
            raise ValueError(f"--slurm {item!r}: expected KEY=VALUE, for example --slurm partition=gpu")
        values[key.strip()] = _checked(key.strip(), yaml.safe_load(text) if text else None, f"--slurm {item!r}")
    return ClusterProfile(**values)


def _checked(key: str, value: Any, where: str) -> Any:
    if key not in FIELDS or key == "name":
        known = ", ".join(k for k in FIELDS if k != "name")
        raise ValueError(f"{where}: unknown cluster profile key {key!r}; known keys: {known}")
    default = FIELDS[key].default if FIELDS[key].default is not dataclasses.MISSING else FIELDS[key].default_factory()
    expected = type(default) if default is not None else str
    if value is None and default is None:
        return None
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if expected is list and isinstance(value, str):
        value = [value]
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ValueError(f"{where}: {key} must be {expected.__name__}, got {value!r}")
    return value
