"""Run folders logged to mlflow (a real SQLite store, queried with mlflow's own client) and the `ui` command."""

import contextlib
import csv
import json
import os
import pathlib
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from types import SimpleNamespace

import pytest
from conftest import REPO, TEST_METHODS, kill_all, run_cli
from mlflow import MlflowClient

from benchmark.cli import main
from benchmark.reporting import tracking

CHANCE_RUN = ["run", "--methods", "chance", "--datasets", "synthetic:unseen,synthetic:all"]


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """Two chance cells run into a folder, then logged twice to a fresh SQLite store (which `run` may
    have logged into already)."""
    root = tmp_path_factory.mktemp("tracking")
    output, uri = root / "run", f"sqlite:///{root}/mlflow.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        assert main([*CHANCE_RUN, "--output", str(output)]) == 0
    summaries = [tracking.log_run(output, uri), tracking.log_run(output, uri)]
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([summaries[0]["experiment_id"]])
    return SimpleNamespace(root=root, output=output, uri=uri, summaries=summaries, client=client,
                           parents=[r for r in runs if "mlflow.parentRunId" not in r.data.tags],
                           children=[r for r in runs if "mlflow.parentRunId" in r.data.tags])


def cell_results(output):
    return {path.stem: json.loads(path.read_text()) for path in sorted((output / "cells").glob("*.json"))}


def test_a_parent_per_invocation_and_a_child_per_cell(logged):
    plan = json.loads((logged.output / "plan.json").read_text())
    results = cell_results(logged.output)
    assert len(logged.parents) == 1 and len(logged.children) == 2
    parent = logged.parents[0]
    assert parent.info.run_name == f"run {plan['runs'][0]['time']}"
    assert parent.data.tags["ovvss.run_dir"] == str(logged.output.resolve())
    assert parent.data.tags["ovvss.invocation"] == plan["runs"][0]["time"]
    assert parent.data.tags["ovvss.argv"] == shlex.join(plan["runs"][0]["argv"])
    commit = next(iter(results.values()))["provenance"]["git_commit"]
    assert parent.data.tags.get("git_commit") == commit
    assert parent.info.status == "FINISHED"

    assert {child.info.run_name for child in logged.children} == set(results)
    for child in logged.children:
        result = results[child.info.run_name]
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.info.status == "FINISHED"
        assert child.info.artifact_uri.startswith((logged.root / "mlartifacts").as_uri())
        assert child.data.metrics["mIoU"] == pytest.approx(result["metrics"]["mIoU"], abs=1e-9)
        low, high = result["intervals"]["mIoU"]  # the bootstrap interval over videos, beside the value
        assert (child.data.metrics["mIoU_low"], child.data.metrics["mIoU_high"]) == pytest.approx((low, high))
        assert child.data.metrics["frames_per_s"] == pytest.approx(result["timing"]["frames_per_s"])
        for name, scores in result["per_class"].items():
            assert child.data.metrics.get(f"IoU/{name}") == scores["IoU"]  # None: not logged
        assert child.data.params["method"] == "chance"
        assert child.data.params["setting"] == result["cell"]["setting"]
        assert child.data.params["opt.seed"] == "0"
        assert child.data.tags["ovvss.cell_id"] == result["cell"]["id"]
        assert child.data.tags["protocol"] == "intended"
        assert child.data.tags["dataset"] == f"synthetic:{result['cell']['setting']}"
        assert child.data.tags.get("git_commit") == commit
        assert child.data.tags["status"] == "done"

        listed = {artifact.path for artifact in logged.client.list_artifacts(child.info.run_id)}
        assert listed == {f"{result['cell']['id']}.json", "per_class.csv"}
        table = logged.client.download_artifacts(child.info.run_id, "per_class.csv", str(logged.root))
        with open(table, newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert [row["class"] for row in rows] == list(result["per_class"])
        assert rows[0]["gt_pixels"] == str(next(iter(result["per_class"].values()))["gt_pixels"])

    assert (logged.output / "tables").is_dir()
    tables = {artifact.path for artifact in logged.client.list_artifacts(parent.info.run_id, "tables")}
    assert {f"tables/{path.name}" for path in (logged.output / "tables").iterdir()} == tables


def test_logging_again_adds_nothing(logged):
    assert logged.summaries[1] == {**logged.summaries[0], "parents": 0, "children": 0, "skipped": 2}
    child = logged.children[0].info.run_id
    class_metric = next(key for key in logged.children[0].data.metrics if key.startswith("IoU/"))
    for key in ("mIoU", class_metric):
        assert len(logged.client.get_metric_history(child, key)) == 1


def test_results_that_appear_later_and_a_second_invocation(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/logged-by-run.db")
    uri = f"sqlite:///{tmp_path}/mlflow.db"  # logged by this test alone, whatever `run` logs by itself
    output = tmp_path / "run"
    assert main([*CHANCE_RUN, "--output", str(output)]) == 0
    late = next((output / "cells").glob("chance__synthetic-all__*.json"))
    late.rename(tmp_path / late.name)  # as if that cell had not finished yet
    assert counts(tracking.log_run(output, uri)) == (1, 1, 0)
    (tmp_path / late.name).rename(late)
    assert counts(tracking.log_run(output, uri)) == (0, 1, 1)

    assert main(["run", "--plugin", str(TEST_METHODS), "--methods", "chance,test-broken", "--opt",
                 "test-broken.mode=raise", "--datasets", "synthetic:unseen", "--output", str(output)]) == 1
    assert counts(tracking.log_run(output, uri)) == (1, 1, 2)  # the chance cell was computed by the first
    assert counts(tracking.log_run(output, uri)) == (0, 0, 3)

    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("ov-vss").experiment_id])
    parents = {run.data.tags["ovvss.invocation"]: run for run in runs if "mlflow.parentRunId" not in run.data.tags}
    invocations = json.loads((output / "plan.json").read_text())["runs"]
    first, second = (parents[invocation["time"]] for invocation in invocations)
    children = {r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId") == second.info.run_id}
    assert len(runs) == 5 and len(parents) == 2
    (broken_id, broken), = children.items()
    assert broken_id.startswith("test-broken__")
    assert broken.info.status == "FAILED" and broken.data.tags["status"] == "failed"
    assert "out of memory (simulated)" in broken.data.tags["error"]
    assert {a.path for a in client.list_artifacts(broken.info.run_id)} == {f"{broken_id}.json"}
    assert (first.info.status, second.info.status) == ("FINISHED", "FAILED")


def test_a_parent_left_running_after_its_last_child_is_finished_by_the_next_log(tmp_path, monkeypatch):
    """A log killed after its last child and before the parent's tables and status (CI met it) leaves the
    parent RUNNING with nothing new to add; the next log must still finish it."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/logged-by-run.db")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    output = tmp_path / "run"
    assert main([*CHANCE_RUN, "--output", str(output)]) == 0
    summary = tracking.log_run(output, uri)
    client = MlflowClient(tracking_uri=uri)
    parent, = (run for run in client.search_runs([summary["experiment_id"]])
               if "mlflow.parentRunId" not in run.data.tags)
    finished = parent.info
    client.update_run(parent.info.run_id, status="RUNNING")  # as the killed log left it
    assert counts(tracking.log_run(output, uri)) == (0, 0, 2)
    again = client.get_run(parent.info.run_id).info
    assert finished.status == "FINISHED"
    assert (again.status, again.end_time) == (finished.status, finished.end_time)
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} == {"plots", "tables"}


def counts(summary):
    return summary["parents"], summary["children"], summary["skipped"]


def test_an_unreachable_store_is_a_tracking_error(logged, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    started = time.monotonic()
    with pytest.raises(tracking.TrackingError, match="http://127.0.0.1:9"):
        tracking.log_run(logged.output, "http://127.0.0.1:9")  # the discard port: nothing listens
    assert time.monotonic() - started < 15


def test_run_with_an_unreachable_store_keeps_its_results_and_says_how_to_log_them(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    output = tmp_path / "run"
    assert main([*CHANCE_RUN, "--output", str(output), "--tracking-uri", "http://127.0.0.1:9"]) == 1  # not logged
    error = capsys.readouterr().err
    assert "http://127.0.0.1:9" in error and f"python -m benchmark report {output} --log" in error
    assert len(cell_results(output)) == 2 and (output / "tables" / "table1.md").is_file()
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    assert main(["report", str(output), "--log", "--tracking-uri", uri]) == 0  # later, as the message says
    assert f"1 parent and 2 cell runs logged to {uri}" in capsys.readouterr().out
    client = MlflowClient(tracking_uri=uri)
    assert len(client.search_runs([client.get_experiment_by_name("ov-vss").experiment_id])) == 3


def test_an_incomplete_store_that_holds_runs_is_refused_and_left_as_it_is(logged, tmp_path):
    """A migration cut short (its tables made, its revision not recorded, as a kill leaves it) in a store
    that holds runs: logging fails with exit 1 and says what to do, which then works."""
    database = tmp_path / "mlflow.db"
    shutil.copyfile(logged.root / "mlflow.db", database)
    with contextlib.closing(sqlite3.connect(database)) as db, db:
        db.execute("UPDATE alembic_version SET version_num = '770bee3ae1dd'")  # an earlier revision of mlflow's
    before = database.read_bytes()
    uri = f"sqlite:///{database}"

    refused = run_cli("report", logged.output, "--log", "--tracking-uri", uri, check=1)
    assert f"the mlflow store {database} is incomplete (its schema is at revision 770bee3ae1dd" in refused.stderr
    assert f"`mv {database} {database}.broken`" in refused.stderr
    assert f"`python -m benchmark report {logged.output} --log --tracking-uri {uri}`" in refused.stderr
    assert "Traceback" not in refused.stderr and database.read_bytes() == before

    database.rename(f"{database}.broken")  # as it says
    logged_again = run_cli("report", logged.output, "--log", "--tracking-uri", uri, check=0)
    assert f"1 parent and 2 cell runs logged to {uri}" in logged_again.stdout


def test_two_processes_creating_one_store_at_once(tmp_path):
    database = tmp_path / "mlflow.db"
    create = [sys.executable, "-c", "import sys; from benchmark.reporting import tracking; "
              "tracking.ensure_store(sys.argv[1])", f"sqlite:///{database}"]
    creators = [subprocess.Popen(create, cwd=REPO, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errors = [creator.communicate()[1] for creator in creators]
    assert [creator.returncode for creator in creators] == [0, 0], errors
    assert sum("Creating initial" in error for error in errors) == 1  # the other found it made
    assert [e.name for e in MlflowClient(tracking_uri=f"sqlite:///{database}").search_experiments()] == ["Default"]
    assert not list(tmp_path.glob(".mlflow.db.creating*"))


def test_store_locations_and_metric_names(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    uri = tracking.default_uri()
    assert uri == f"sqlite:///{tmp_path.resolve() / 'results' / 'mlflow.db'}"
    assert (tmp_path / "results").is_dir()
    artifacts = (tmp_path.resolve() / "results" / "mlartifacts").as_uri()
    assert tracking.artifact_location(uri) == artifacts
    assert tracking.ui_command(uri, port=5123)[2:] == ["mlflow", "ui", "--backend-store-uri", uri, "--host",
                                                       "127.0.0.1", "--port", "5123", "--workers", "1",
                                                       "--default-artifact-root", artifacts]
    assert tracking.artifact_location("http://mlflow.example:5000") is None
    assert "--default-artifact-root" not in tracking.ui_command("http://mlflow.example:5000")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert tracking.default_uri() == "http://mlflow.example:5000"

    result = {"metrics": {"mIoU": 1.5, "hIoU": None},
              "per_class": {"traffic light (far)": {"IoU": 2.0}, "a/b": {"IoU": 3}, "a+b": {"IoU": 4.0},
                            "sky": {"IoU": None}},
              "timing": {"frames_per_s": 10}}
    assert tracking.cell_metrics(result) == {"mIoU": 1.5, "IoU/traffic light _far_": 2.0, "IoU/a_b": 3.0,
                                             "IoU/a_b_2": 4.0, "frames_per_s": 10.0}


def test_ui_refuses_a_port_in_use(tmp_path):
    """mlflow ui itself exits with status 0 when it cannot bind the port."""
    with socket.create_server(("127.0.0.1", 0)) as holder:
        port = holder.getsockname()[1]
        done = run_cli("ui", "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db", "--port", port, check=2)
    assert f"port {port} on 127.0.0.1 is in use" in done.stderr
    assert not (tmp_path / "mlflow.db").exists()


def processes():
    """(pid, parent pid, process group) of every live process, from /proc."""
    found = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            state, parent, group = stat.read_text().rpartition(")")[2].split()[:3]
        except OSError:  # exited meanwhile
            continue
        if state != "Z":
            found.append((int(stat.parent.name), int(parent), int(group)))
    return found


@pytest.mark.skipif(not pathlib.Path("/proc/self/stat").exists(), reason="finds the server's processes in /proc")
def test_ui_serves_the_store_and_stops_with_its_workers(logged, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"http://127.0.0.1:{port}"
    log = tmp_path / "ui.log"
    with log.open("w") as sink:
        ui = subprocess.Popen([sys.executable, "-m", "benchmark", "ui", "--tracking-uri", logged.uri,
                               "--port", str(port)], cwd=REPO, stdout=sink, stderr=subprocess.STDOUT,
                              start_new_session=True)
    servers = set()
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{address}/", timeout=5) as page:
                    assert page.status == 200
                break
            except (urllib.error.URLError, ConnectionError):
                if ui.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the UI did not answer at {address} (exit {ui.poll()}):\n{log.read_text()}")
                time.sleep(0.25)
        experiment = logged.summaries[0]["experiment_id"]  # the runs' page, not the root's GenAI page
        assert f"mlflow UI for {logged.uri}: {address}/#/experiments/{experiment}/runs (Ctrl-C stops it)" in log.read_text()
        child = logged.children[0].info.run_id
        with urllib.request.urlopen(f"{address}/ajax-api/2.0/mlflow/artifacts/list?run_id={child}") as listing:
            assert "per_class.csv" in {entry["path"] for entry in json.load(listing)["files"]}

        table, tree = processes(), {ui.pid}
        while children := {pid for pid, parent, _ in table if parent in tree} - tree:
            tree |= children
        servers = {group for pid, _, group in table if pid in tree - {ui.pid}}  # the guard's and the server's
        assert len(servers) == 2
        ui.send_signal(signal.SIGTERM)
        assert ui.wait(timeout=30) == 0
        assert not [pid for pid, _, group in processes() if group in servers | {ui.pid}]
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0
    finally:
        kill_all(servers | {ui.pid}, os.killpg)  # nothing is left when it passed
        ui.wait()
