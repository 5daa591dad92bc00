"""The slurm executor against a real SLURM cluster: the one-node cluster of slurm/local/ (CI starts it
with slurm/local/start.sh; without one these tests are skipped, unless BENCHMARK_REQUIRE_SLURM=1)."""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import mlflow
import pytest
from conftest import REPO, TEST_METHODS, run_cli
from test_reports import DATA, TINY

from benchmark import cli
from benchmark.execution import jobs

SLURM = ["--executor", "slurm", "--cluster-profile", "local", "--slurm", "poll_s=0.5"]


def cluster_is_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    done = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    return done.returncode == 0 and any(s.strip() in ("idle", "mixed", "allocated") for s in done.stdout.split())


@pytest.fixture(scope="module", autouse=True)
def slurm_cluster():
    if not cluster_is_up():
        message = "no SLURM cluster answers here; start one with slurm/local/install.sh && slurm/local/start.sh"
        if os.environ.get("BENCHMARK_REQUIRE_SLURM") == "1":
            pytest.fail(message)
        pytest.skip(message)


def results(output: pathlib.Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((output / "cells").glob("*.json"))}


def by_method(output: pathlib.Path) -> dict[str, dict]:
    return {r["cell"]["method"] + ":" + r["cell"]["setting"]: r for r in results(output).values()}


def tasks(output: pathlib.Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((output / "jobs" / "tasks").glob("*.json"))}


def scored(result: dict) -> dict:
    """What must not depend on where or how a cell ran."""
    return {key: result[key] for key in ("metrics", "per_class", "confusion", "vc", "counts", "method_counts")}


def debug_run(tmp_path, name: str, *args) -> pathlib.Path:
    out = tmp_path / name
    assert cli.main(["run", "--plugin", str(TEST_METHODS), "--output", str(out), *map(str, args)]) in (0, 1)
    return out


def wait_for(condition, timeout: float = 120, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_suite_runs_as_chunked_array_jobs_with_the_debug_executors_numbers(tmp_path):
    cells = ["--methods", "test-oracle,test-constant,test-abstain", "--datasets", "synthetic:unseen,synthetic:all"]
    out = tmp_path / "slurm"
    done = run_cli("run", "--plugin", TEST_METHODS, *cells, *SLURM, "--slurm", "max_array_size=4",
                   "--output", out, check=0)
    assert "6 of 6 tasks ended" in done.stdout
    reference = by_method(debug_run(tmp_path, "debug", *cells))
    found = by_method(out)
    assert set(found) == set(reference) and all(r["status"] == "done" for r in found.values())
    for key, result in found.items():
        assert scored(result) == scored(reference[key]), key
    # Six cells with arrays of at most four: two array jobs, of four and two tasks.
    job_ids = [t["jobs"][0]["job_id"] for t in tasks(out).values()]
    arrays = {}
    for job_id in job_ids:
        arrays.setdefault(job_id.split("_")[0], []).append(job_id)
    assert sorted(len(members) for members in arrays.values()) == [2, 4]
    for task_id, task in tasks(out).items():  # each result names the job that computed it
        provenance = results(out)[task_id]["provenance"]
        assert provenance["slurm_job_id"] == task["jobs"][0]["job_id"]
        assert pathlib.Path(provenance["code"]).parent == out / "jobs" / "code"  # the snapshot, not the checkout


def test_sharded_cell_equals_the_unsharded_one_exactly(tmp_path):
    cell = ["--methods", "test-oracle", "--opt", "test-oracle.noise=0.3", "--datasets", "synthetic:all",
            "--save-predictions"]
    out = tmp_path / "sharded"
    run_cli("run", "--plugin", TEST_METHODS, *cell, *SLURM, "--shards", "3", "--output", out, check=0)
    (sharded,) = results(out).values()
    whole_out = debug_run(tmp_path, "whole", *cell)
    (whole,) = results(whole_out).values()
    assert sharded["status"] == "done" and scored(sharded) == scored(whole)
    maps = [{str(p.relative_to(run)): p.read_bytes() for p in (run / "predictions").rglob("*.png")} for run in (out, whole_out)]
    assert maps[0] == maps[1] and len(maps[0]) == 2 * whole["counts"]["frames"]  # each shard's videos, both formats
    assert (out / "predictions" / sharded["cell"]["id"] / "predictions.json").is_file()
    assert sharded["method_counts"]["noisy_pixels"] > 0
    assert [s["shard"] for s in sharded["provenance"]["shards"]] == ["0 of 3", "1 of 3", "2 of 3"]
    assert len({s["slurm_job_id"] for s in sharded["provenance"]["shards"]}) == 3
    assert not (out / "partial" / sharded["cell"]["id"]).exists()  # merged: partial state cleared


def start_slow_cell(tmp_path, name: str, *extra):
    """A cell of four videos at about 4 s each, run by a driver in the background."""
    out = tmp_path / name
    command = [sys.executable, "-m", "benchmark", "run", "--plugin", str(TEST_METHODS), "--methods", "test-oracle",
               "--opt", "test-oracle.delay=0.2", "--opt", "test-oracle.noise=0.2", "--datasets", "synthetic:unseen",
               *SLURM, "--output", str(out), *extra]
    driver = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    partial = out / "partial"
    wait_for(lambda: partial.is_dir() and any(partial.glob("*/*.json")), what="the first saved video")
    (task,) = tasks(out).values()
    return out, driver, task


def finish_slow_cell(tmp_path, out, driver) -> dict:
    """Wait for the driver; check the cell equals an uninterrupted run; return its task record."""
    output, _ = driver.communicate(timeout=300)
    assert driver.returncode == 0, output
    (result,) = results(out).values()
    (reference,) = results(debug_run(tmp_path, "reference", "--methods", "test-oracle", "--opt",
                                     "test-oracle.noise=0.2", "--datasets", "synthetic:unseen")).values()
    assert scored(result) == scored(reference)
    (task,) = tasks(out).values()
    return task


def test_a_cancelled_job_is_resubmitted_and_resumes_from_its_saved_videos(tmp_path):
    out, driver, task = start_slow_cell(tmp_path, "cancelled")
    first_job = task["jobs"][0]["job_id"]
    subprocess.run(["scancel", first_job], check=True)
    task = finish_slow_cell(tmp_path, out, driver)
    assert len(task["jobs"]) == 2 and task["jobs"][0]["job_id"] == first_job
    assert jobs.job_states([first_job]) == {first_job: "CANCELLED"}
    second_log = pathlib.Path(task["jobs"][1]["stderr"]).read_text()
    assert "resuming, " in second_log and "of 4 videos already done" in second_log


def test_a_preempted_job_checkpoints_requeues_itself_and_resumes(tmp_path):
    out, driver, task = start_slow_cell(tmp_path, "preempted")
    job_id = task["jobs"][0]["job_id"]
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)  # what SLURM sends before preempting
    # The requeued job waits cred_expire (10 s on the local cluster, 120 s by SLURM's default) to start again.
    task = finish_slow_cell(tmp_path, out, driver)
    assert len(task["jobs"]) == 1  # submitit requeued the same job; the driver had nothing to do
    log = pathlib.Path(task["jobs"][0]["stderr"]).read_text()
    assert "Calling checkpoint method" in log and "of 4 videos already done" in log


def test_failing_cells_are_reported_with_error_and_log_while_the_others_finish(tmp_path):
    out = tmp_path / "failing"
    done = run_cli("run", "--plugin", TEST_METHODS, "--methods", "test-constant,test-broken,test-crash",
                   "--opt", "test-broken.mode=raise", "--datasets", "synthetic:unseen", *SLURM, "--output", out,
                   check=1)
    found = by_method(out)
    assert found["test-constant:unseen"]["status"] == "done"
    broken, crashed = found["test-broken:unseen"], found["test-crash:unseen"]
    assert broken["status"] == "failed" and "out of memory (simulated)" in broken["error"]["message"]
    assert crashed["status"] == "failed" and "ended FAILED" in crashed["error"]["message"]
    assert pathlib.Path(crashed["error"]["log"]).is_file()
    assert "FAILED test-crash" in done.stderr

    status = run_cli("status", out, check=0).stdout
    assert "1 done, 2 failed" in status
    crash_task = tasks(out)[crashed["cell"]["id"]]
    for line in (f"log: {crash_task['jobs'][0]['stderr']}", "out of memory (simulated)",
                 f"[job {crash_task['jobs'][0]['job_id']} FAILED]"):
        assert line in status, status
    assert "| " in status  # the logs' last lines


def test_training_runs_first_and_evaluation_waits_for_it(tmp_path):
    out = tmp_path / "trained"
    done = run_cli("run", "--plugin", TEST_METHODS, "--methods", "test-trainable", "--train",
                   "--datasets", "synthetic:all", *SLURM, "--output", out, check=0,
                   cwd=tmp_path)
    assert "test-trainable: trains first on synthetic:seen" in done.stdout
    train_tasks = [t for t in tasks(out).values() if t["kind"] == "train"]
    cell_tasks = [t for t in tasks(out).values() if t["kind"] == "cell"]
    assert len(train_tasks) == 1 and len(cell_tasks) == 1
    assert all(t["after"] == [train_tasks[0]["id"]] for t in cell_tasks)
    folder = pathlib.Path(train_tasks[0]["payload"]["context"]["folder"])
    assert folder.parent == tmp_path / "results" / "train"  # the `train` command's folder: shared with it
    trained = json.loads((folder / "trained.json").read_text())
    for result in results(out).values():
        assert result["status"] == "done" and result["cell"]["training"] == str(folder)
        assert result["provenance"]["start_time"] >= trained["finished"]
    # SLURM kept the order: the cells were submitted at once, waiting on the training job (afterok).
    scripts = "".join(p.read_text() for p in (out / "jobs" / "slurm").rglob("*.sh"))
    assert f"--dependency=afterok:{train_tasks[0]['jobs'][0]['job_id']}" in scripts
    # Evaluated again: the finished training is reused, not repeated.
    again = run_cli("run", "--plugin", TEST_METHODS, "--methods", "test-trainable", "--train", "--force",
                    "--datasets", "synthetic:all", *SLURM, "--output", out, check=0, cwd=tmp_path)
    assert "test-trainable: trained already" in again.stdout


def test_each_seed_trains_as_its_own_job_and_its_cell_waits_for_it(tmp_path):
    out = tmp_path / "seeds"
    run_cli("run", "--plugin", TEST_METHODS, "--methods", "test-trainable", "--train", "--seeds", "2",
            "--datasets", "synthetic:all", *SLURM, "--output", out, check=0, cwd=tmp_path)
    train_tasks = {t["id"]: t for t in tasks(out).values() if t["kind"] == "train"}
    cell_tasks = [t for t in tasks(out).values() if t["kind"] == "cell"]
    assert sorted(t["payload"]["training"]["seed"] for t in train_tasks.values()) == [0, 1]
    assert len(cell_tasks) == 2
    for task in cell_tasks:
        (needed,) = task["after"]
        assert train_tasks[needed]["payload"]["training"]["seed"] == task["payload"]["seed"]
    assert sorted(r["cell"]["seed"] for r in results(out).values() if r["status"] == "done") == [0, 1]


def test_a_suite_trains_each_configuration_and_its_cells_wait_for_their_own(tmp_path):
    opts = [i for key, value in TINY["ov2vss"].items() for i in ("--opt", f"ov2vss.{key}={value}")]
    out = tmp_path / "suite"
    run_cli("run", "--suite", "table1", "--methods", "ov2vss", "--train", *DATA, *opts, *SLURM, "--output", out,
            check=0, cwd=tmp_path, env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"})
    trainings = {t["id"]: t for t in tasks(out).values() if t["kind"] == "train"}
    cells = [t for t in tasks(out).values() if t["kind"] == "cell"]
    assert len(trainings) == 2 and len(cells) == 2  # ResNet-101 and ViT-B2 (tiny stand-ins), one training each
    for task in cells:
        (after,) = task["after"]
        backbone = trainings[after]["payload"]["training"]["options"]["backbone"]
        assert task["payload"]["options"]["backbone"] == backbone
    table = (out / "tables" / "table1.csv").read_text()
    assert table.count(",reproduced,") == 2 and "ResNet-101 (stand-in)" in table and "ViT-B2 (stand-in)" in table
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")  # logged by the driver, with each job's id
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    children = client.search_runs(experiments, "tags.`ovvss.cell_id` LIKE 'ov2vss%'")
    assert len(children) == 2 and all(run.data.tags.get("slurm_job_id") for run in children)


def test_a_failed_training_fails_the_cells_waiting_for_it_with_its_log(tmp_path):
    out = tmp_path / "untrainable"
    done = run_cli("run", "--plugin", TEST_METHODS, "--methods", "test-trainable", "--opt", "test-trainable.fail=true",
                   "--train", "--datasets", "synthetic:all", *SLURM, "--output", out, check=1, cwd=tmp_path)
    (result,) = results(out).values()
    assert result["status"] == "failed" and "the training it needs failed" in result["error"]["message"]
    train_task = next(t for t in tasks(out).values() if t["kind"] == "train")
    assert train_task["jobs"][0]["stderr"] in result["error"]["message"]
    assert "FAILED" in done.stderr
    status = run_cli("status", out, check=0).stdout
    assert "failed  training test-trainable" in status and "the loss went to NaN (simulated)" in status, status


def test_no_wait_returns_at_once_and_a_later_run_reattaches(tmp_path):
    out = tmp_path / "detached"
    args = ["run", "--plugin", TEST_METHODS, "--methods", "test-oracle", "--opt", "test-oracle.delay=0.1",
            "--datasets", "synthetic:unseen", *SLURM, "--output", out]
    submitted = run_cli(*args, "--no-wait", check=0)
    assert "1 task(s) submitted" in submitted.stdout
    (task,) = tasks(out).values()
    status = run_cli("status", out, check=0).stdout
    assert task["jobs"][0]["job_id"] in status and ("pending" in status or "running" in status), status
    collected = run_cli(*args, check=0)
    assert f"reattached to job {task['jobs'][0]['job_id']}" in collected.stdout
    (task,) = tasks(out).values()
    assert len(task["jobs"]) == 1 and next(iter(results(out).values()))["status"] == "done"
    assert "1 done" in run_cli("status", out, check=0).stdout


def test_jobs_run_the_code_as_it_was_at_submission(tmp_path):
    plugin = tmp_path / "frozen_methods.py"
    plugin.write_text((REPO / "tests" / "plugins" / "methods_for_tests.py").read_text())
    out = tmp_path / "frozen"
    args = ["run", "--plugin", plugin, "--methods", "test-constant", "--opt", "test-constant.label=1",
            "--datasets", "synthetic:unseen", *SLURM, "--output", out]
    run_cli(*args, "--no-wait", check=0)
    # Edited after submission, before the job starts: the job must not see this.
    plugin.write_text(plugin.read_text().replace("torch.full(image.shape[1:], self.label,",
                                                 "torch.full(image.shape[1:], 0,"))
    run_cli(*args, check=0)
    (result,) = results(out).values()
    reference = results(debug_run(tmp_path, "reference", "--methods", "test-constant", "--opt",
                                  "test-constant.label=1", "--datasets", "synthetic:unseen"))
    assert scored(result) == scored(next(iter(reference.values())))


def test_jobs_have_the_modules_git_does_not_track_yet(tmp_path):
    # A new module in the checkout, not yet committed, that a method imports: the jobs must find it.
    module = REPO / "methods" / f"_untracked_probe_{os.getpid()}.py"
    module.write_text("import torch\nfrom benchmark import ImageMethod\n\n\nclass Probe(ImageMethod):\n"
                      "    name = 'test-untracked'\n\n    def setup(self, vocabulary, device):\n        pass\n\n"
                      "    def segment_frame(self, image):\n"
                      "        self.count('in_snapshot', int('/jobs/code/' in __file__))\n"
                      "        return torch.ones(image.shape[1:], dtype=torch.int64)\n")
    plugin = tmp_path / "probe_plugin.py"
    plugin.write_text(f"import methods.{module.stem}  # noqa: F401\n")
    try:
        out = tmp_path / "untracked"
        run_cli("run", "--plugin", plugin, "--methods", "test-untracked", "--datasets", "synthetic:unseen", *SLURM,
                "--output", out, "--no-tracking", check=0)
        (result,) = results(out).values()
        assert result["status"] == "done", result.get("error")
        # from the snapshot, not the checkout (an editable install would quietly import the checkout's)
        assert result["method_counts"]["in_snapshot"] > 0, result["method_counts"]
    finally:
        module.unlink()


def test_a_profile_the_cluster_cannot_satisfy_is_an_input_error_naming_it(tmp_path):
    done = run_cli("run", "--methods", "chance", "--datasets", "synthetic:unseen", "--executor", "slurm",
                   "--output", tmp_path / "gpu", check=2)  # the default profile asks for a GPU; this node has none
    assert "sbatch refused the cell jobs under cluster profile 'default'" in done.stderr
    assert "--cluster-profile local" in done.stderr and "Traceback" not in done.stderr


def test_submitting_from_inside_a_slurm_job_works(tmp_path):
    out = tmp_path / "nested"
    command = (f"{sys.executable} -m benchmark run --plugin {TEST_METHODS} --methods test-constant "
               f"--datasets synthetic:unseen {' '.join(SLURM)} --output {out}")
    done = subprocess.run(["srun", "--cpus-per-task=1", "--mem=1G", "bash", "-c", command], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    (result,) = results(out).values()
    assert result["status"] == "done"
    (task,) = tasks(out).values()
    assert result["provenance"]["slurm_job_id"] == task["jobs"][0]["job_id"]  # its own job, not the driver's
