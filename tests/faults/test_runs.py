"""Faults met by `run`: a kill mid-cell, a second driver on the same folder, a cell's saved state
removed while it runs, a full disk. Each ends with the numbers of an uninterrupted run."""

from __future__ import annotations

import json
import pathlib
import random
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
from conftest import REPO, TEST_METHODS, run_cli

#: A slow, noisy method on the synthetic world's unseen setting (4 videos): a run takes a few seconds, and
#: its numbers depend on the global RNG, so a resumed run only matches if it reseeds exactly.
TWO_CELLS = ["--plugin", TEST_METHODS, "--methods", "test-oracle,test-constant", "--datasets", "synthetic:unseen",
             "--no-tracking", "--opt", "test-oracle.delay=0.04", "--opt", "test-oracle.noise=0.3"]
#: The same, slow enough that a second driver starts (seconds) before the first is done.
SLOWER = [*TWO_CELLS, "--opt", "test-oracle.delay=0.25"]


def cells(output: pathlib.Path) -> dict[str, dict]:
    """Each cell's result by method."""
    return {r["cell"]["method"]: r for r in (json.loads(p.read_text()) for p in (output / "cells").glob("*.json"))}


def numbers(result: dict) -> tuple:
    return result["status"], result.get("metrics"), result.get("confusion"), result.get("method_counts")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, dict]:
    """The uninterrupted run every faulted one must equal."""
    output = tmp_path_factory.mktemp("reference") / "run"
    run_cli("run", *TWO_CELLS, "--output", output, check=0)
    return cells(output)


def start(output: pathlib.Path, *extra, args=TWO_CELLS) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "benchmark", "run", *map(str, args), *extra,
                             "--output", str(output)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def assert_equal_to(reference: dict[str, dict], output: pathlib.Path) -> None:
    found = cells(output)
    assert set(found) == set(reference)
    for method, result in reference.items():
        assert numbers(found[method]) == numbers(result), method


@pytest.mark.fault("run killed (SIGKILL) mid-cell, then run again", trials=(2, 12))
def test_a_killed_run_resumes_to_identical_numbers(tmp_path, reference, trial):
    output = tmp_path / "run"
    saved = 1 + trial % 3  # kill after this many of the first cell's 4 videos are saved
    process = start(output)
    wait_for(lambda: len(list((output / "partial").glob("*/*.json"))) >= saved)
    time.sleep(random.Random(trial).uniform(0, 0.1))
    process.send_signal(signal.SIGKILL)
    process.wait()
    resumed = run_cli("run", *TWO_CELLS, "--output", output, check=0)
    assert "Traceback" not in resumed.stderr
    assert_equal_to(reference, output)


@pytest.mark.fault("a second driver on the same output folder", trials=(1, 3))
@pytest.mark.parametrize("executor", ["debug", "local"])
def test_a_second_driver_refuses_or_waits_and_finished_cells_stay(tmp_path, reference, executor, trial):
    output = tmp_path / "run"
    first = start(output, "--executor", executor, args=SLOWER)
    wait_for(lambda: (output / ".driver.lock").is_file() and (output / ".driver.lock").stat().st_size > 0)

    refused = run_cli("run", *SLOWER, "--executor", executor, "--output", output)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert f"{output} is in use by another driver (pid {first.pid} on host {socket.gethostname()}" in refused.stderr
    assert "--wait-lock" in refused.stderr

    waited = run_cli("run", *SLOWER, "--executor", executor, "--output", output, "--wait-lock", check=0)
    assert first.wait() == 0
    assert "waiting for the driver that holds" in waited.stderr
    assert "2 cells (2 finished already)" in waited.stdout  # the second driver only ran after the first ended
    assert_equal_to(reference, output)
    assert not list((output / "partial").glob("*/*.json"))


@pytest.mark.fault("a cell's saved state (partial/) deleted while it runs", trials=(1, 6))
def test_deleted_partial_state_fails_that_cell_and_the_run_goes_on(tmp_path, reference, trial):
    output = tmp_path / "run"
    process = start(output)
    wait_for(lambda: len(list((output / "partial").glob("*/*.json"))) >= 1 + trial % 3)  # of the first cell's 4
    shutil.rmtree(output / "partial", ignore_errors=True)  # the cell may be writing its next video meanwhile
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 1 and "Traceback" not in stderr
    found = cells(output)
    failed = found["test-oracle"]
    assert failed["status"] == "failed" and str(output / "partial") in failed["error"]["message"]
    assert numbers(found["test-constant"]) == numbers(reference["test-constant"])  # the next cell ran
    assert "1 of 2 cells failed" in stderr

    run_cli("run", *TWO_CELLS, "--output", output, check=0)
    assert_equal_to(reference, output)


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB file system of its own (tmpfs), unmounted afterwards; skipped where mounting is not allowed."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small file system here to fill ({done.stderr.strip()})")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(mount: pathlib.Path, leave: int) -> pathlib.Path:
    """Fill the file system but for about `leave` bytes."""
    filler = mount / "filler"
    free = shutil.disk_usage(mount).free
    filler.write_bytes(b"\0" * max(0, free - leave))
    return filler


@pytest.mark.fault("disk full during a run", trials=(3, 8))
def test_a_full_disk_names_the_folder_and_a_rerun_after_freeing_space_completes(small_disk, reference, trial):
    # From almost nothing left (the plan cannot be written) to room for everything but the last files.
    leave = [0, 40_000, 200_000, 8_192, 80_000, 120_000, 160_000, 280_000][trial]
    filler = fill(small_disk, leave)
    output = small_disk / "run"
    full = run_cli("run", *TWO_CELLS, "--output", output)
    assert "Traceback" not in full.stderr
    if full.returncode != 0:
        assert full.returncode == 1
        assert "is full" in full.stderr and str(small_disk) in full.stderr, full.stderr
    filler.unlink()
    run_cli("run", *TWO_CELLS, "--output", output, check=0)
    assert_equal_to(reference, output)


@pytest.mark.fault("results made under a umask colleagues can read")
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_result_files_are_as_readable_as_the_umask_allows(tmp_path, umask, mode):
    output = tmp_path / "run"
    run_cli("run", "--methods", "chance", "--datasets", "synthetic:unseen", "--no-tracking", "--output", output,
            check=0, preexec_fn=lambda: __import__("os").umask(umask))
    written = [output / "plan.json", *(output / "cells").glob("*.json")]
    assert len(written) == 2 and {path.stat().st_mode & 0o777 for path in written} == {mode}
