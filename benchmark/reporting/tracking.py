"""A run folder logged to mlflow, and the mlflow UI to browse it.

The files under DIR stay the record; mlflow is an index over them for searching and comparing. Each
invocation of `run` (an entry of plan.json's "runs") becomes a parent run, and each cell result it
computed a child run of it, with the cell's fields as params, its metrics (and per-class IoU) as
metrics, and its result file and a per-class CSV as artifacts. Logging is idempotent: parents are
found again by their tags, children by their cell id, so logging a folder again only adds what is new.

Only the driver logs, after the cells have finished: a SQLite store takes one writer at a time. A new
SQLite store is created whole or not at all (`ensure_store`), and `ui` stops its server however it ends.
"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import datetime
import errno
import fcntl
import json
import os
import pathlib
import re
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from typing import Any

from benchmark.store import RunStore

DEFAULT_STORE = pathlib.Path("results/mlflow.db")
DEFAULT_EXPERIMENT = "ov-vss"

# mlflow's limits (mlflow.utils.validation): values past them are refused, so they are clipped here.
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_PARAMS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000

# mlflow refuses other characters in metric and param names (it takes colons too, but not on Windows)
UNSAFE_KEY_CHARACTERS = re.compile(r"[^\w\-. /]")

# The UI is for one person browsing: one worker starts in half the time of mlflow's default four, and
# the job runner (GenAI evaluation jobs, seven more processes) has nothing to do here.
UI_ENVIRONMENT = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
UI_STOP_TIMEOUT_S = 10.0
UI_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # Ctrl-C, kill, a closed terminal
PR_SET_PDEATHSIG = 1  # linux/prctl.h
# The process between `ui` and the mlflow server (see serve_ui); imports no more than this module.
UI_GUARD = "import sys; from benchmark.reporting.tracking import guard_ui; sys.exit(guard_ui(*sys.argv[1:]))"


class TrackingError(Exception):
    """mlflow could not be reached or refused what was logged; the run folder itself is unaffected."""


def default_uri() -> str:
    """$MLFLOW_TRACKING_URI, else the SQLite store results/mlflow.db under the current directory."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    DEFAULT_STORE.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{DEFAULT_STORE.resolve()}"


def sqlite_path(uri: str) -> pathlib.Path | None:
    """The database file of a SQLite store URI (relative paths are relative to the current directory);
    None for other stores and in-memory databases."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri.removeprefix("sqlite:///").partition("?")[0]
    return pathlib.Path(path).resolve() if path and path != ":memory:" else None


def artifact_location(uri: str) -> str | None:
    """Where a store's artifacts go: `mlartifacts` beside a SQLite database (mlflow would otherwise use
    ./mlruns under whatever directory the logging process runs in); None lets a server decide."""
    database = sqlite_path(uri)
    return (database.parent / "mlartifacts").as_uri() if database else None


def ensure_store(uri: str) -> None:
    """Create the SQLite store `uri` unless it exists, so that a kill at any moment leaves no store or a
    complete one: mlflow would migrate a new database in place, one step at a time, and a kill halfway
    leaves a file that every later use fails on. Other kinds of store are left to mlflow.

    An existing SQLite store that is incomplete (a migration cut short, or another mlflow version's schema)
    is replaced by a new one when it holds no experiment (mlflow adds the first one last, so nothing is
    lost), and refused with a TrackingError saying what to do when it holds some."""
    database = sqlite_path(uri)
    if database is None:
        return
    from mlflow import MlflowException
    from sqlalchemy.exc import SQLAlchemyError

    try:
        if _store_problem(database) is None:
            return
        database.parent.mkdir(parents=True, exist_ok=True)
        with _locked(database.with_name(f".{database.name}.lock")):
            problem = _store_problem(database)  # again: another process may have created it meanwhile
            if problem is None:
                return
            if database.exists() and _count_experiments(database):
                raise TrackingError(
                    f"the mlflow store {database} is incomplete ({problem}) and holds experiments, so it is left "
                    f"as it is: move it aside (`mv {database} {database}.broken`), and a new one is created in its "
                    f"place; or, if another mlflow version made it, back it up and run "
                    f"`mlflow db upgrade sqlite:///{database}`")
            _create_store(database, artifact_location(uri))
    except (sqlite3.Error, OSError, MlflowException, SQLAlchemyError) as error:
        raise TrackingError(f"the mlflow store {database} cannot be used: {type(error).__name__}: {error}") from error


def _store_problem(database: pathlib.Path) -> str | None:
    """What keeps the SQLite file `database` from being a complete store of this mlflow version; None if
    nothing does."""
    import mlflow
    from mlflow.store.db.utils import _get_latest_schema_revision  # what mlflow checks a store against

    if not database.exists():
        return "it does not exist"
    with _connect(database) as db:
        tables = _tables(db)
        revisions = [r for (r,) in db.execute("SELECT version_num FROM alembic_version")] \
            if "alembic_version" in tables else []
    leftovers = sorted(table for table in tables if table.startswith("_alembic_tmp_"))
    if leftovers:
        return f"a migration was cut short, leaving {', '.join(leftovers)}"
    head = _get_latest_schema_revision()
    if revisions != [head]:
        return f"its schema is at revision {', '.join(revisions) or 'none'}, not {head} of mlflow {mlflow.__version__}"
    return None


def _count_experiments(database: pathlib.Path) -> int:
    with _connect(database) as db:
        tables = _tables(db)
        # a migration cut short may have left them in its copy of the table
        return sum(db.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]
                   for table in ("experiments", "_alembic_tmp_experiments") if table in tables)


def _tables(db: sqlite3.Connection) -> set[str]:
    return {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _connect(database: pathlib.Path):
    # read-write: opening rolls back what a killed writer left in the journal; an absent file is an error
    return contextlib.closing(sqlite3.connect(f"{database.as_uri()}?mode=rw", uri=True, timeout=60))


@contextlib.contextmanager
def _locked(path: pathlib.Path):
    """Hold an exclusive lock on the file `path` (created if missing) for the with block: a POSIX record
    lock, which holds across hosts on a shared file system and ends with its holder however it ends."""
    with path.open("a") as handle:
        fcntl.lockf(handle, fcntl.LOCK_EX)
        yield


def _create_store(database: pathlib.Path, artifacts: str) -> None:
    """Create and migrate a store in a file beside `database`, then move it into place in one step."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    scratch = database.with_name(f".{database.name}.creating")
    for suffix in ("", "-journal", "-wal", "-shm"):  # left by a creation killed halfway
        pathlib.Path(f"{scratch}{suffix}").unlink(missing_ok=True)
    SqlAlchemyStore(f"sqlite:///{scratch}", artifacts).engine.dispose()  # closed before it moves
    os.replace(scratch, database)


def log_run(output: pathlib.Path | str, uri: str | None = None, experiment: str = DEFAULT_EXPERIMENT) -> dict[str, Any]:
    """Log the run folder `output` to the mlflow store `uri` (default: `default_uri()`).

    Each cell result is logged once, under the invocation that computed it: the last one listing the
    cell that started before the result did (so cells an invocation found finished already stay with
    the invocation that computed them). Returns counts of what this call added and what was there.
    Raises TrackingError when the store cannot be reached or refuses what is logged."""
    folder = pathlib.Path(output).resolve()
    store = RunStore(folder)
    plan = store.read_plan()
    if plan is None:
        raise FileNotFoundError(f"{folder} has no plan.json; pass the --output folder of a run")
    invocations = plan["runs"]
    computed: list[list[dict[str, Any]]] = [[] for _ in invocations]
    for cell_id in dict.fromkeys(cell_id for invocation in invocations for cell_id in invocation["cells"]):
        result = store.read_result(cell_id)
        if result is not None:
            computed[_computing_invocation(cell_id, result, invocations)].append(result)
    uri = uri or default_uri()

    import mlflow
    from requests import RequestException
    from sqlalchemy.exc import SQLAlchemyError

    try:
        ensure_store(uri)
        client = mlflow.MlflowClient(tracking_uri=uri)
        experiment_id = _experiment_id(client, experiment, uri)
        summary = {"uri": uri, "experiment_id": experiment_id, "parents": 0, "children": 0, "skipped": 0}
        with tempfile.TemporaryDirectory(prefix="ovvss-mlflow-") as scratch:
            for invocation, cell_results in zip(invocations, computed):
                _log_invocation(client, experiment_id, store, invocation, cell_results, pathlib.Path(scratch),
                                summary)
    except (mlflow.MlflowException, SQLAlchemyError, RequestException, OSError) as error:
        raise TrackingError(f"logging {folder} to mlflow at {uri} failed: {type(error).__name__}: {error}") from error
    return summary


def ui_command(uri: str, host: str = "127.0.0.1", port: int = 5000) -> list[str]:
    """The command that serves the mlflow UI on the store `uri`."""
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host,
               "--port", str(port), "--workers", "1"]
    artifacts = artifact_location(uri)
    return command + ["--default-artifact-root", artifacts] if artifacts else command


def port_in_use(host: str, port: int) -> bool:
    """Whether something listens on host:port already: `mlflow ui` then exits with status 0, silently
    leaving whatever holds the port in its place."""
    try:
        with socket.create_server((host, port)):
            return False
    except OSError as error:  # other errors (an IPv6 host, a name that does not resolve) are mlflow's to report
        return error.errno == errno.EADDRINUSE


def runs_page(uri: str, host: str, port: int, experiment: str = DEFAULT_EXPERIMENT) -> str:
    """The UI's page of the harness's runs; the server's root opens mlflow's GenAI page, which shows none."""
    from mlflow import MlflowClient

    found = MlflowClient(tracking_uri=uri).get_experiment_by_name(experiment)
    return f"http://{host}:{port}/" + (f"#/experiments/{found.experiment_id}/runs" if found else "")


def serve_ui(uri: str, host: str = "127.0.0.1", port: int = 5000) -> int:
    """Run the mlflow UI in the foreground until it exits, or until this process gets Ctrl-C, SIGTERM or
    SIGHUP (its terminal closed), or dies, even of SIGKILL (on Linux); either way the server and all its
    worker processes stop with it. Returns the server's exit status, 0 when it was stopped (the way to
    stop it)."""
    # Once killed, this process can stop nothing: a guard process between it and the server learns of its
    # death from the kernel and stops the server. The guard has a session of its own, so that a kill of
    # this process group does not reach it first, and Ctrl-C reaches this process alone.
    command = [sys.executable, "-c", UI_GUARD, uri, host, str(port), str(os.getpid())]
    return _run_until_stopped(lambda: subprocess.Popen(command, start_new_session=True), _stop_guard)


def guard_ui(uri: str, host: str, port: str, parent: str) -> int:
    """The guard of serve_ui: serve the UI until `ui` (process `parent`) stops it or dies (SIGTERM either
    way), then stop the server's process group. Returns the server's exit status, 0 when stopped."""
    if not _signalled_when_parent_dies(int(parent)):
        return 0  # `ui` is gone already
    # in a session of its own, so that its workers stop as one process group
    return _run_until_stopped(lambda: subprocess.Popen(ui_command(uri, host, int(port)),
                                                       env={**UI_ENVIRONMENT, **os.environ}, start_new_session=True),
                              _stop_process_group)


def _signalled_when_parent_dies(parent: int) -> bool:
    """Have the kernel send this process SIGTERM when its parent dies, however it dies (Linux; elsewhere
    this does nothing). False when the parent is no longer `parent`: it died before."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    return os.getppid() == parent


def _run_until_stopped(start, stop) -> int:
    """Start a child process with `start()` and wait until it exits or this process gets one of
    UI_STOP_SIGNALS; then `stop(child)`. Returns the child's exit status, 0 when a signal stopped it."""
    # The handlers only take note, so no signal (a second Ctrl-C) can cut `start` or `stop` short and
    # leave a child behind.
    signalled = []
    previous = {number: signal.signal(number, lambda signum, frame: signalled.append(signum))
                for number in UI_STOP_SIGNALS}
    try:
        child = start()
        while child.poll() is None and not signalled:
            time.sleep(0.1)
        stop(child)  # also when it exited by itself: its workers may not have
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return 0 if signalled else child.returncode


def _stop_guard(guard: subprocess.Popen) -> None:
    """Have the guard stop the server, and wait until it has stopped all of it."""
    guard.terminate()
    guard.wait()


def _stop_process_group(leader: subprocess.Popen) -> None:
    """Terminate the process group `leader` started, and wait for all of it (killed if it lingers)."""
    deadline = time.monotonic() + UI_STOP_TIMEOUT_S
    try:
        os.killpg(leader.pid, signal.SIGTERM)
        while time.monotonic() < deadline:
            leader.poll()  # reaps the leader once it exits, so that it stops counting as a member
            os.killpg(leader.pid, 0)
            time.sleep(0.1)
        os.killpg(leader.pid, signal.SIGKILL)
    except ProcessLookupError:  # the group is empty
        pass
    leader.wait()


def _computing_invocation(cell_id: str, result: dict[str, Any], invocations: list[dict[str, Any]]) -> int:
    """The index of the invocation that computed `result`: the last one listing the cell that started no
    later than the result did; the first listing it when none did (clocks of other hosts may lag)."""
    listing = [index for index, invocation in enumerate(invocations) if cell_id in invocation["cells"]]
    provenance = result.get("provenance") or {}
    started = provenance.get("start_time") or provenance.get("end_time")  # a job that died has no start
    if started is None:
        return listing[-1]
    before = [index for index in listing if _millis(invocations[index]["time"]) <= _millis(started)]
    return before[-1] if before else listing[0]


def _experiment_id(client, name: str, uri: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return client.create_experiment(name, artifact_location=artifact_location(uri))
    if experiment.lifecycle_stage != "active":
        raise TrackingError(f"the mlflow experiment {name!r} at {uri} is deleted; restore it in the UI "
                            f"(or `mlflow experiments restore --experiment-id {experiment.experiment_id}`)")
    return experiment.experiment_id


def _log_invocation(client, experiment_id: str, store: RunStore, invocation: dict[str, Any],
                    results: list[dict[str, Any]], scratch: pathlib.Path, summary: dict[str, Any]) -> None:
    """Find or create the invocation's parent run and add the children it lacks; when anything was
    added, log the folder's tables and plots to it and set its status and end from its children."""
    folder = store.root
    added = summary["parents"] + summary["children"]
    parent = _find_parent(client, experiment_id, folder, invocation["time"])
    if parent is None:
        parent = client.create_run(experiment_id, start_time=_millis(invocation["time"]),
                                   run_name=f"{folder.name} {invocation['time']}", tags=_clip_values({
                                       "ovvss.run_dir": str(folder),
                                       "ovvss.invocation": invocation["time"],
                                       "ovvss.argv": shlex.join(invocation.get("argv", [])),
                                       "ovvss.device": str(invocation.get("device")),
                                       "ovvss.data_root": str(invocation.get("data_root") or "default"),
                                       "ovvss.plugins": json.dumps(invocation.get("plugins", [])),
                                   }, MAX_TAG_VALUE))
        summary["parents"] += 1
    parent_id = parent.info.run_id
    children = {run.data.tags.get("ovvss.cell_id"): run.info
                for run in _search_runs(client, experiment_id, f"tags.`mlflow.parentRunId` = '{parent_id}'")}
    for result in results:
        cell_id = result["cell"]["id"]
        logged = children.get(cell_id)
        if logged is not None and logged.status != "RUNNING":
            summary["skipped"] += 1
            continue
        if logged is not None:  # left unfinished by an interrupted logging: log it again
            client.delete_run(logged.run_id)
        children[cell_id] = _log_cell(client, experiment_id, parent_id, store, result, scratch)
        summary["children"] += 1

    if summary["parents"] + summary["children"] == added and parent.info.status != "RUNNING":
        return  # logged before, completely, and nothing new: leave it as it is
    # else new children, or a parent left RUNNING by a logging killed after its last child: finish it
    commits = sorted({c for r in results if (c := (r.get("provenance") or {}).get("git_commit"))})
    tags = {"git_commit": ", ".join(commits)} if commits else {}
    if len(commits) == 1:
        tags["mlflow.source.git.commit"] = commits[0]
    _log_batch(client, parent_id, tags=tags)
    for name in ("tables", "plots"):
        if (folder / name).is_dir():
            client.log_artifacts(parent_id, str(folder / name), name)
    failed = any(child.status == "FAILED" for child in children.values())
    end = max([_millis(invocation["time"])] + [child.end_time or 0 for child in children.values()])
    client.set_terminated(parent_id, "FAILED" if failed else "FINISHED", end_time=end)


def _find_parent(client, experiment_id: str, folder: pathlib.Path, invocation_time: str):
    # filtered on the time alone: a folder path may hold quotes, which the filter syntax cannot take
    for run in _search_runs(client, experiment_id, f"tags.`ovvss.invocation` = '{invocation_time}'"):
        if run.data.tags.get("ovvss.run_dir") == str(folder) and "mlflow.parentRunId" not in run.data.tags:
            return run
    return None


def _search_runs(client, experiment_id: str, filter_string: str) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], filter_string, max_results=1000, page_token=token)
        runs += page
        token = page.token
        if not token:
            return runs


def _log_cell(client, experiment_id: str, parent_id: str, store: RunStore, result: dict[str, Any],
              scratch: pathlib.Path):
    """One child run for one cell result; it is set FINISHED or FAILED last, so a child still RUNNING
    was interrupted while being logged. Returns its RunInfo."""
    cell = result["cell"]
    provenance = result.get("provenance") or {}
    end = _millis(provenance["end_time"]) if provenance.get("end_time") else int(time.time() * 1000)
    tags = {
        "mlflow.parentRunId": parent_id,
        "ovvss.cell_id": cell["id"],
        "ovvss.run_dir": str(store.root),
        "status": result["status"],
        "dataset": f"{cell['dataset']}:{cell['setting']}",
        "protocol": cell["protocol"],
        "git_commit": provenance.get("git_commit"),
        "mlflow.source.git.commit": provenance.get("git_commit"),
        "git_dirty": None if provenance.get("git_dirty") is None else str(provenance["git_dirty"]).lower(),
        "slurm_job_id": provenance.get("slurm_job_id"),
        "host": provenance.get("host"),
        "error": (result.get("error") or {}).get("message"),
        "method_warnings": "\n".join((provenance.get("method") or {}).get("warnings") or []) or None,
    }
    start = _millis(provenance["start_time"]) if provenance.get("start_time") else end
    child = client.create_run(experiment_id, start_time=start, run_name=cell["id"],
                              tags=_clip_values({k: v for k, v in tags.items() if v is not None}, MAX_TAG_VALUE))
    run_id = child.info.run_id
    _log_batch(client, run_id, params=cell_params(cell), metrics=cell_metrics(result), timestamp=end)
    client.log_artifact(run_id, str(store.result_path(cell["id"])))
    if result.get("per_class"):
        table = scratch / cell["id"] / "per_class.csv"
        table.parent.mkdir(exist_ok=True)
        write_per_class_csv(result["per_class"], table)
        client.log_artifact(run_id, str(table))
    client.set_terminated(run_id, "FINISHED" if result["status"] == "done" else "FAILED", end_time=end)
    return client.get_run(run_id).info


def cell_params(cell: dict[str, Any]) -> dict[str, str]:
    """A cell's fields as mlflow params, its method options as `opt.KEY` and dataset options as
    `data.KEY`: strings as they are, other values as JSON, clipped to mlflow's length limit."""
    params = {key: value for key, value in cell.items() if key not in ("id", "options", "dataset_options")}
    params |= {f"opt.{key}": value for key, value in (cell.get("options") or {}).items()}
    params |= {f"data.{key}": value for key, value in (cell.get("dataset_options") or {}).items()}
    return _clip_values({safe_key(key): value if isinstance(value, str) else json.dumps(value)
                         for key, value in params.items()}, MAX_PARAM_VALUE)


def cell_metrics(result: dict[str, Any]) -> dict[str, float]:
    """A result's numeric metrics with their intervals (`mIoU_low`, `mIoU_high`), its classes' IoU as
    `IoU/CLASS`, and its frames per second."""
    metrics = {safe_key(name): value for name, value in (result.get("metrics") or {}).items() if _is_number(value)}
    for name, bounds in (result.get("intervals") or {}).items():  # the bootstrap interval over videos
        if bounds:
            metrics[safe_key(f"{name}_low")], metrics[safe_key(f"{name}_high")] = bounds
    for name, scores in (result.get("per_class") or {}).items():
        if _is_number(scores.get("IoU")):
            part = safe_key(name).replace("/", "_")
            key = base = f"IoU/{part if part not in ('', '.', '..') else '_'}"  # a path part that stays one
            suffix = 1
            while key in metrics:  # two names that only differed in characters mlflow refuses
                suffix += 1
                key = f"{base}_{suffix}"
            metrics[key] = scores["IoU"]
    frames_per_s = (result.get("timing") or {}).get("frames_per_s")
    if _is_number(frames_per_s):
        metrics["frames_per_s"] = frames_per_s
    return {key: float(value) for key, value in metrics.items()}


def safe_key(name: str) -> str:
    """`name` with every character mlflow refuses in a metric or param name replaced by `_`."""
    return UNSAFE_KEY_CHARACTERS.sub("_", name)


def write_per_class_csv(per_class: dict[str, dict[str, Any]], path: pathlib.Path) -> None:
    """One row per class (class, IoU, IoU_low, IoU_high, Acc, gt_pixels, ...); missing values are left empty."""
    def flat(scores: dict[str, Any]) -> dict[str, Any]:
        interval = scores.get("IoU_interval") or (None, None)
        return {**{k: v for k, v in scores.items() if k != "IoU_interval"}, "IoU_low": interval[0],
                "IoU_high": interval[1]}

    rows = {name: flat(scores) for name, scores in per_class.items()}
    columns = list(dict.fromkeys(column for scores in rows.values() for column in scores))
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["class", *columns])
        for name, scores in rows.items():
            writer.writerow([name, *("" if scores.get(c) is None else scores[c] for c in columns)])


def _log_batch(client, run_id: str, params: dict[str, str] | None = None, metrics: dict[str, float] | None = None,
               tags: dict[str, str] | None = None, timestamp: int = 0) -> None:
    """log_batch in slices within mlflow's per-request limits."""
    from mlflow.entities import Metric, Param, RunTag

    slices = [("params", [Param(k, v) for k, v in (params or {}).items()], MAX_PARAMS_PER_BATCH),
              ("tags", [RunTag(k, v) for k, v in (tags or {}).items()], MAX_PARAMS_PER_BATCH),
              ("metrics", [Metric(k, v, timestamp, 0) for k, v in (metrics or {}).items()], MAX_METRICS_PER_BATCH)]
    for kind, entities, limit in slices:
        for start in range(0, len(entities), limit):
            client.log_batch(run_id, **{kind: entities[start:start + limit]})


def _clip_values(values: dict[str, str], limit: int) -> dict[str, str]:
    return {key: value if len(value) <= limit else value[:limit - 3] + "..." for key, value in values.items()}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _millis(timestamp: str) -> int:
    """Milliseconds since the epoch of an ISO time as the store writes them (`store.now()`)."""
    return int(datetime.datetime.fromisoformat(timestamp).timestamp() * 1000)
