"""Faults met by the mlflow side: a kill while a new store is created (by us, or in place by mlflow
itself), and `ui` ended by a hang-up, a signal or a kill. Each ends with a store that logs exactly what
an uninterrupted log does, or with no process of the server left."""

from __future__ import annotations

import contextlib
import http.client
import os
import pathlib
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
from conftest import REPO, kill_all, run_cli
from mlflow import MlflowClient

from benchmark.reporting import tracking

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kills and /proc: Linux")


def start(*args) -> subprocess.Popen:
    """`python -m benchmark ARGS`, its output (stderr too, unbuffered) on stdout."""
    return subprocess.Popen([sys.executable, "-m", "benchmark", *map(str, args)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def wait_for_line(process: subprocess.Popen, text: str) -> float:
    """Read the process's output until a line holding `text`; returns the time it came."""
    for line in process.stdout:
        if text in line:
            return time.monotonic()
    raise AssertionError(f"no line with {text!r} (exit {process.wait()})")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One run folder, which every test logs; the runs of its uninterrupted log into a new store (by `run`
    itself); and how long that log took from the store's creation on: the window kills are spread over."""
    root = tmp_path_factory.mktemp("tracking-faults")
    process = start("run", "--methods", "chance", "--output", root / "run", "--tracking-uri",
                    f"sqlite:///{root / 'mlflow.db'}")
    created = wait_for_line(process, "Creating initial")
    window = wait_for_line(process, "mlflow: 1 parent and 1 cell runs logged") - created
    process.stdout.read()
    assert process.wait() == 0
    return SimpleNamespace(output=root / "run", runs=logged_runs(root / "mlflow.db"), window=window)


def logged_runs(database: pathlib.Path) -> dict[str, tuple]:
    """Every run of the store by name (a cell's id; `run <time>` for the parent): what a log writes."""
    client = MlflowClient(tracking_uri=f"sqlite:///{database}")
    runs = client.search_runs([client.get_experiment_by_name(tracking.DEFAULT_EXPERIMENT).experiment_id])
    names = {run.info.run_id: run.info.run_name for run in runs}
    return {run.info.run_name: (
        run.info.status, run.info.start_time, run.info.end_time, run.data.params, run.data.metrics,
        {key: value for key, value in run.data.tags.items() if key != "mlflow.parentRunId"},
        names.get(run.data.tags.get("mlflow.parentRunId")),
        sorted(artifact.path for artifact in client.list_artifacts(run.info.run_id)),
    ) for run in runs}


def complete(database: pathlib.Path) -> bool:
    """Whether the SQLite file holds mlflow's whole schema: its latest revision, no migration half done."""
    from mlflow.store.db.utils import _get_latest_schema_revision

    # read-write: a killed writer may have left a journal to roll back
    with contextlib.closing(sqlite3.connect(f"{database.as_uri()}?mode=rw", uri=True)) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        revisions = [r for (r,) in db.execute("SELECT version_num FROM alembic_version")] \
            if "alembic_version" in tables else []
    return revisions == [_get_latest_schema_revision()] and not any(t.startswith("_alembic_tmp_") for t in tables)


def log_again_and_compare(database: pathlib.Path, reference) -> None:
    again = run_cli("report", reference.output, "--log", "--tracking-uri", f"sqlite:///{database}", check=0)
    assert "Traceback" not in again.stderr
    assert logged_runs(database) == reference.runs
    assert not list(database.parent.glob(f".{database.name}.creating*"))  # the killed creation's leftovers


@pytest.mark.fault("SIGKILL while mlflow creates a new store", trials=(3, 12))
def test_a_kill_while_the_store_is_created_leaves_none_or_a_complete_one(tmp_path, reference, trial):
    database = tmp_path / "mlflow.db"
    process = start("report", reference.output, "--log", "--tracking-uri", f"sqlite:///{database}")
    created = wait_for_line(process, "Creating initial")
    delay = (trial + 0.5) * 0.618 % 1 * reference.window  # spread over the window, however many trials
    time.sleep(max(0.0, created + delay - time.monotonic()))
    process.kill()
    process.communicate()
    assert not database.exists() or complete(database)
    log_again_and_compare(database, reference)


@pytest.mark.fault("a store half-created in place by mlflow itself (killed mid-migration)", trials=(1, 3))
def test_a_store_mlflow_left_half_migrated_is_replaced(tmp_path, reference, trial):
    """As a bare `mlflow ui` or an earlier version of the harness leaves it: it holds nothing yet (mlflow
    adds its first experiment last), so a new store takes its place."""
    database = tmp_path / "mlflow.db"
    create = subprocess.Popen([sys.executable, "-c", "import sys; from mlflow.store.tracking.sqlalchemy_store "
                               "import SqlAlchemyStore; SqlAlchemyStore(sys.argv[1], sys.argv[2])",
                               f"sqlite:///{database}", str(tmp_path / "artifacts")],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    created = wait_for_line(create, "Creating initial")
    # well within its migrations, which take most of the window
    time.sleep(max(0.0, created + (0.2 + 0.15 * trial) * reference.window - time.monotonic()))
    create.kill()
    create.communicate()
    assert not complete(database)
    log_again_and_compare(database, reference)


def process_table() -> dict[int, tuple[int, int]]:
    """(parent pid, session id) of every live process, from /proc."""
    table = {}
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # exited meanwhile
            continue
        if fields[0] != "Z":
            table[int(stat.parent.name)] = (int(fields[1]), int(fields[3]))
    return table


def descendants(pid: int) -> set[int]:
    table = process_table()
    found, new = set(), {pid}
    while new:
        found |= new
        new = {child for child, (parent, _) in table.items() if parent in new} - found
    return found - {pid}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    uri = f"sqlite:///{tmp_path_factory.mktemp('ui') / 'mlflow.db'}"
    tracking.ensure_store(uri)
    return uri


def signal_ui(ui: subprocess.Popen, how: str) -> None:
    if how == "SIGKILL to its process group":
        os.killpg(ui.pid, signal.SIGKILL)
    else:
        ui.send_signal(getattr(signal, how.split()[0]))


@pytest.mark.fault("ui hung up, terminated, interrupted or its process killed", trials=(1, 2))
@pytest.mark.parametrize("how", ["SIGHUP", "SIGTERM", "SIGINT", "SIGKILL to its process group", "SIGKILL alone"])
def test_ui_leaves_no_server_behind(tmp_path, store, how, trial):
    """Odd trials hold a browser's idle keep-alive connection open while `ui` is ended."""
    port = free_port()
    log = tmp_path / "ui.log"
    with log.open("w") as sink:  # its own process group, as a shell's job
        ui = subprocess.Popen([sys.executable, "-m", "benchmark", "ui", "--tracking-uri", store, "--port", str(port)],
                              cwd=REPO, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    server = set()
    try:
        deadline = time.monotonic() + 120
        while not listening(port):
            assert ui.poll() is None and time.monotonic() < deadline, f"no UI on port {port}:\n{log.read_text()}"
            time.sleep(0.1)
        if trial % 2:
            browser = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            browser.request("GET", "/health")
            assert browser.getresponse().read() == b"OK"
        server = descendants(ui.pid)
        sessions = {session for pid, (_, session) in process_table().items() if pid in server}
        signal_ui(ui, how)
        status = ui.wait(timeout=30)
        assert status == (-signal.SIGKILL if "SIGKILL" in how else 0), log.read_text()

        def left() -> set[int]:
            return {pid for pid, (_, session) in process_table().items() if pid in server or session in sessions}

        deadline = time.monotonic() + tracking.UI_STOP_TIMEOUT_S / 2
        while left() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not left(), f"{left()} left:\n{log.read_text()}"
        with socket.create_server(("127.0.0.1", port)):  # the port is free again
            pass
    finally:
        kill_all(server | {ui.pid})  # nothing is left when it passed
        ui.wait()
