"""End to end: the CLI, the runner and the result files, on the embedded synthetic dataset."""

import json
import os
import re

import numpy as np
import pytest
import torch
from conftest import TEST_METHODS, run_cli

from benchmark import cli
from benchmark.data import synthetic
from benchmark.data.cards import load_card
from benchmark.data.records import read_mask


def cells(output):
    return {path.stem: json.loads(path.read_text()) for path in sorted((output / "cells").glob("*.json"))}


def one_cell(output, method):
    found = [r for r in cells(output).values() if r["cell"]["method"] == method]
    assert len(found) == 1, list(cells(output))
    return found[0]


def test_oracle_plugin_scores_100_with_full_result_record(tmp_path):
    out = tmp_path / "run"
    run_cli("run", "--plugin", TEST_METHODS, "--methods", "test-oracle",
            "--datasets", "synthetic:unseen,synthetic:all", "--output", out, check=0)
    results = cells(out)
    assert len(results) == 2
    for result in results.values():
        assert result["status"] == "done"
        cell = result["cell"]
        assert {"method", "dataset", "setting", "protocol", "options", "id"} <= set(cell)
        assert cell["options"] == {"dataset": "synthetic", "delay": 0.0, "noise": 0.0, "abstain": 0.0}
        for key in ("mIoU", "fwIoU", "mAcc", "pAcc", "mIoU_mmseg", "VC_8", "VC_16"):
            assert result["metrics"][key] == 100, key
        some_class = next(iter(result["per_class"].values()))
        assert {"IoU", "Acc", "gt_pixels"} <= set(some_class)
        prov = result["provenance"]
        for key in ("git_commit", "git_dirty", "packages", "seed", "host", "slurm_job_id", "start_time", "end_time"):
            assert key in prov, key
        assert prov["packages"]["torch"] == "2.14.1" and prov["end_time"] >= prov["start_time"]
    generalized = [r for r in results.values() if r["cell"]["setting"] == "all"][0]
    assert generalized["metrics"]["mIoU_seen"] == generalized["metrics"]["mIoU_unseen"] == generalized["metrics"]["hIoU"] == 100


def unseen_gt_counts():
    """Ground-truth pixels of each unseen class in the default synthetic val split, from the mask files."""
    card = load_card("synthetic")
    seen, total = card["num_seen"], len(card["classes"])
    gt_counts = np.zeros(total - seen, np.int64)
    for video in synthetic.SyntheticReader().read_videos(synthetic.ensure(), "val"):
        for mask_path in video.masks.values():
            raw = read_mask(mask_path)
            unseen = raw[(raw > seen) & (raw <= total)].astype(np.int64) - seen - 1
            gt_counts += np.bincount(unseen, minlength=total - seen)
    return gt_counts


def expected_constant_metrics(label):
    """The constant predictor's unseen metrics, computed straight from the mask files."""
    gt_counts = unseen_gt_counts()
    scored = gt_counts.sum()
    present = gt_counts > 0
    iou = np.zeros(len(gt_counts))
    iou[label] = gt_counts[label] / scored  # TP = GT of the label, union = every scored pixel
    return {"mIoU": 100 * iou[present].mean(), "pAcc": 100 * gt_counts[label] / scored,
            "mAcc": 100 * (gt_counts[label] / gt_counts[label]) / present.sum(),
            "fwIoU": 100 * (gt_counts / scored * iou)[present].sum()}


def test_metrics_match_a_direct_computation_from_the_masks(tmp_path):
    out = tmp_path / "run"
    label = int(np.argmax(unseen_gt_counts()))  # a class the split shows
    assert cli.main(["run", "--plugin", str(TEST_METHODS), "--methods", "test-constant,test-abstain",
                     "--opt", f"test-constant.label={label}", "--datasets", "synthetic:unseen", "--output", str(out)]) == 0
    metrics = one_cell(out, "test-constant")["metrics"]
    for key, value in expected_constant_metrics(label).items():
        assert metrics[key] == pytest.approx(value), key
    abstained = one_cell(out, "test-abstain")
    assert abstained["metrics"]["mIoU"] == 0 and abstained["metrics"]["pAcc"] == 0
    assert sum(c["abstained_pixels"] for c in abstained["per_class"].values()) == abstained["counts"]["scored_pixels"]


@pytest.mark.parametrize("mode,message", [
    ("shape", r"label map has shape \(72, 97\), expected \(72, 96\)"),
    ("range", r"values \[(\d+)\] outside \[0, (\d+)\)"),
    ("float", "dtype float32"),
    ("raise", "segment\\(\\) raised RuntimeError: out of memory"),
    ("short", "stopped after fewer label maps"),
])
def test_a_bad_method_fails_its_cell_and_the_others_finish(tmp_path, mode, message, capsys):
    out = tmp_path / "run"
    status = cli.main(["run", "--plugin", str(TEST_METHODS), "--methods", "test-broken,test-oracle",
                       "--opt", f"test-broken.mode={mode}", "--datasets", "synthetic:unseen", "--output", str(out)])
    assert status == 1
    broken = one_cell(out, "test-broken")
    assert broken["status"] == "failed"
    error = broken["error"]["message"]
    assert "method test-broken, video val_001" in error
    if mode != "short":
        assert "frame 2 (00000003)" in error
    assert re.search(message, error), error
    assert one_cell(out, "test-oracle")["metrics"]["mIoU"] == 100
    assert "FAILED" in capsys.readouterr().err


def test_rerun_skips_finished_cells_unless_forced(tmp_path):
    out = tmp_path / "run"
    base = ["run", "--plugin", str(TEST_METHODS), "--methods", "test-constant", "--datasets", "synthetic",
            "--output", str(out)]
    assert cli.main(base) == 0
    path = next((out / "cells").glob("*.json"))
    first = path.read_text()
    again = run_cli(*base, check=0)
    assert "1 cells (1 finished already)" in again.stdout and path.read_text() == first
    assert cli.main(base + ["--force"]) == 0
    assert json.loads(path.read_text())["provenance"]["start_time"] >= json.loads(first)["provenance"]["start_time"]
    # A later run of another method into the same folder adds to what status and report show.
    assert cli.main(base[:4] + ["test-abstain"] + base[5:]) == 0
    status = run_cli("status", out, check=0).stdout
    assert "test-constant__" in status and "test-abstain__" in status and "2 done" in status


def test_local_executor_matches_debug_and_survives_a_crashing_process(tmp_path):
    methods = ["--plugin", TEST_METHODS, "--datasets", "synthetic:unseen"]
    debug, local = tmp_path / "debug", tmp_path / "local"
    run_cli("run", *methods, "--methods", "test-constant,test-oracle", "--output", debug, check=0)
    done = run_cli("run", *methods, "--methods", "test-constant,test-oracle,test-crash", "--executor", "local",
                   "--workers", "2", "--output", local, check=1)
    for method in ("test-constant", "test-oracle"):
        assert one_cell(local, method)["metrics"] == one_cell(debug, method)["metrics"]
    crashed = one_cell(local, "test-crash")
    assert crashed["status"] == "failed" and "died" in crashed["error"]["message"]
    assert os.path.exists(crashed["error"]["log"]), crashed["error"]
    assert "FAILED" in done.stderr
    oracle = one_cell(local, "test-oracle")
    logs = "".join(p.read_text() for p in (local / "jobs").glob("*_log.err"))  # progress, as in a SLURM job's log
    assert f"{oracle['cell']['id']}: {oracle['counts']['frames']}/{oracle['counts']['frames']} frames" in logs

    status = run_cli("status", local, check=0).stdout
    assert status.count("done ") == 2 and "failed" in status and "died" in status
    report = run_cli("report", local, check=0).stdout
    assert "test-oracle" in report and "100.00" in report
    assert (local / "tables" / "cells.csv").is_file() and (local / "tables" / "cells.md").is_file()


def test_clear_errors_for_bad_input(tmp_path):
    def error_of(*args):
        done = run_cli(*args, "--output", tmp_path / "x")
        assert done.returncode == 2, done.stderr
        return done.stderr

    assert "unknown method 'nope'; known methods: chance" in error_of("run", "--methods", "nope")
    assert "dataset vspw not found" in error_of("run", "--datasets", "vspw:unseen", "--data-root", tmp_path)
    assert "unknown setting 'novel'" in error_of("run", "--datasets", "synthetic:novel")
    assert "expected NAME.KEY=VALUE" in error_of("run", "--opt", "seed=3")
    assert "which this run does not include" in error_of("run", "--methods", "chance", "--opt", "other.k=1")
    assert "no file" in error_of("run", "--methods", "chance", "--checkpoint", f"chance={tmp_path}/none.pt")
    assert "not a TrainableMethod" in error_of("run", "--methods", "chance", "--checkpoint", f"chance={TEST_METHODS}")
    assert "Invalid device string" in error_of("run", "--methods", "chance", "--device", "gpu0")
    assert "no CUDA device" in error_of("run", "--methods", "chance", "--device", "cuda")


def test_a_trainable_method_loads_its_checkpoint_before_evaluation(tmp_path):

    assert cli.main(["train", "--method", "test-trainable", "--dataset", "synthetic:seen", "--plugin", str(TEST_METHODS),
                     "--output", str(tmp_path / "train")]) == 0
    checkpoint = tmp_path / "train" / "label.pt"
    label = int(torch.load(checkpoint, weights_only=True)["label"])
    out = tmp_path / "run"
    common = ["--plugin", str(TEST_METHODS), "--datasets", "synthetic:seen", "--output", str(out)]
    assert cli.main(["run", *common, "--methods", "test-trainable", "--checkpoint", f"test-trainable={checkpoint}"]) == 0
    assert cli.main(["run", *common, "--methods", "test-constant", "--opt", f"test-constant.label={label}"]) == 0
    trained = one_cell(out, "test-trainable")
    assert trained["cell"]["checkpoint"] == str(checkpoint)
    assert trained["metrics"] == one_cell(out, "test-constant")["metrics"]


def test_a_finished_folder_run_again_keeps_its_tables_and_plots_and_leaves_no_empty_folders(tmp_path):
    out = tmp_path / "run"
    base = ["run", "--plugin", TEST_METHODS, "--methods", "test-oracle", "--datasets", "synthetic:unseen",
            "--output", out, "--no-tracking"]
    first = run_cli(*base, check=0)
    assert not (out / "partial").exists()  # the finished cell's saved videos are gone, and their folder
    drawn = {p: p.stat().st_mtime_ns for p in [*(out / "tables").iterdir(), *(out / "plots").iterdir()]}
    again = run_cli(*base, check=0)
    assert "are unchanged" in again.stdout
    assert {p: p.stat().st_mtime_ns for p in drawn} == drawn
    headline = [line for line in first.stdout.splitlines() if line.startswith("|")]
    assert headline and headline == [line for line in again.stdout.splitlines() if line.startswith("|")]
    # Something they are drawn from changed: a new cell in the folder; then they are drawn again.
    run_cli(*base[:4], "test-constant", *base[5:], check=0)
    assert (out / "tables" / "cells.md").stat().st_mtime_ns != drawn[out / "tables" / "cells.md"]
    assert "test-constant" in (out / "tables" / "cells.md").read_text()


def test_a_shard_counts_only_its_own_videos_when_it_resumes(tmp_path, caplog):
    from benchmark import plan, registry
    from benchmark.runner import RunContext, run_cell

    registry.load_plugin(str(TEST_METHODS))
    (cell,) = plan.make(plan.Request(methods=["test-oracle"], datasets=["synthetic:unseen"])).cells
    context = RunContext(str(tmp_path / "run"), [str(TEST_METHODS)])
    caplog.set_level("INFO", logger="benchmark.runner")
    assert run_cell(cell.to_dict(), context, shard=1, shards=2)["status"] == "shard-done"
    assert "resuming" not in caplog.text
    # Shard 1 runs again (its job was requeued): all its own videos are saved, none of shard 0's.
    assert run_cell(cell.to_dict(), context, shard=1, shards=2)["status"] == "shard-done"
    videos = len(synthetic.SyntheticReader().read_videos(synthetic.ensure(), "val"))
    assert f"(shard 1 of 2): resuming, {videos // 2} of {videos // 2} videos already done" in caplog.text
    caplog.clear()
    merged = run_cell(cell.to_dict(), context, shard=0, shards=2)
    assert "resuming" not in caplog.text and merged["status"] == "done"
    timing = merged["timing"]
    assert [part["frames"] for part in timing["shards"]] and timing["frames"] == sum(p["frames"] for p in timing["shards"])
    wall = max(p["ended"] for p in timing["shards"]) - min(p["started"] for p in timing["shards"])
    assert timing["wall_s"] == wall and timing["frames_per_s"] == timing["frames"] / wall


def test_status_answers_at_once_when_slurm_cannot_be_reached(tmp_path, monkeypatch):
    import socket
    import time

    from benchmark.execution.jobs import Task, TaskRecords

    out = tmp_path / "run"
    run_cli("run", "--methods", "chance", "--datasets", "synthetic:unseen", "--output", out, "--no-tracking", check=0)
    cell_id = next((out / "cells").glob("*.json")).stem
    TaskRecords(out / "jobs").save(Task(id=cell_id, kind="cell", payload={"id": cell_id}, jobs=[{"job_id": "4242"}]))
    with socket.socket() as probe:  # a port nothing listens on: the controller is down
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conf = tmp_path / "slurm.conf"
    conf.write_text(f"ClusterName=gone\nSlurmctldHost=gone(127.0.0.1)\nSlurmctldPort={port}\n")
    monkeypatch.setenv("SLURM_CONF", str(conf))
    started = time.monotonic()
    done = run_cli("status", out, check=0)
    assert time.monotonic() - started < 8  # a Python start and the files; squeue alone waited 9 s
    assert f"no controller answers at 127.0.0.1:{port}" in done.stdout and "files only" in done.stdout
    assert "1 done" in done.stdout
