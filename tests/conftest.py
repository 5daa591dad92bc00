import os
import pathlib
import signal
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
PLUGINS = pathlib.Path(__file__).resolve().parent / "plugins"
TEST_METHODS = PLUGINS / "methods_for_tests.py"


def pytest_addoption(parser):
    """Options of the fault suite (tests/faults/conftest.py)."""
    group = parser.getgroup("faults")
    group.addoption("--exhaustive", action="store_true",
                    help="run every fault test with its full number of trials (minutes)")
    group.addoption("--faults-table", metavar="PATH", default=None,
                    help="write the 'What survives what' table (markdown) to PATH")


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Generated datasets go to a per-session folder (and subprocesses inherit it)."""
    cache = tmp_path_factory.mktemp("cache")
    previous = os.environ.get("BENCHMARK_CACHE")
    os.environ["BENCHMARK_CACHE"] = str(cache)
    yield cache
    if previous is None:
        os.environ.pop("BENCHMARK_CACHE", None)
    else:
        os.environ["BENCHMARK_CACHE"] = previous


@pytest.fixture(scope="session", autouse=True)
def isolated_tracking(tmp_path_factory):
    """Runs log to a per-session mlflow store, not to results/mlflow.db of the checkout."""
    store = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{store}"
    yield store
    if previous is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = previous


@pytest.fixture(autouse=True)
def isolated_registry():
    """Methods a test loads with --plugin in this process are forgotten after it, so `--methods all`
    in a later test means what it means in a fresh process."""
    from benchmark import registry
    registered, plugins = set(registry._registered), {m for m in sys.modules if m.startswith("benchmark_plugin_")}
    yield
    for name in set(registry._registered) - registered - set(registry.BUILTIN):
        del registry._registered[name]
    for module in {m for m in sys.modules if m.startswith("benchmark_plugin_")} - plugins:
        del sys.modules[module]


def run_cli(*args, cwd=None, check=None, **kwargs):
    """`python -m benchmark ARGS` in a real subprocess; returns the CompletedProcess."""
    done = subprocess.run([sys.executable, "-m", "benchmark", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=600, **kwargs)
    if check is not None and done.returncode != check:
        raise AssertionError(f"exit {done.returncode} != {check}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}")
    return done


def kill_all(targets, kill=os.kill) -> None:
    """SIGKILL each process (with kill=os.killpg: each process group) that is still there."""
    for target in targets:
        try:
            kill(target, signal.SIGKILL)
        except ProcessLookupError:
            pass


def interrupt_after(monkeypatch, owner, attribute: str, calls: int):
    """Make `owner.attribute` raise KeyboardInterrupt from its (calls + 1)-th call on, as Ctrl-C would
    mid-training; returns a function that puts the real one back."""
    real = getattr(owner, attribute)
    count = {"n": 0}

    def interrupted(*args, **kwargs):
        count["n"] += 1
        if count["n"] > calls:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, attribute, interrupted)
    return lambda: monkeypatch.setattr(owner, attribute, real)
