"""A finished cell records the code of its method; editing that code (the plugin, or a file it imports)
means the next run computes the cell again instead of reporting the old numbers as finished."""

import json
import os

from conftest import TEST_METHODS, run_cli

from benchmark import registry
from benchmark.code_identity import method_code

METHOD = '''
import torch

from benchmark import ImageMethod
from labelling.choice import LABEL


class Fixed(ImageMethod):
    """One label everywhere, chosen in another file of the package."""

    name = "test-edited"

    def setup(self, vocabulary, device):
        pass

    def segment_frame(self, image):
        return torch.full(image.shape[1:], LABEL, dtype=torch.int64)
'''


def result(output):
    (path,) = (output / "cells").glob("*.json")
    return json.loads(path.read_text())


def test_editing_a_file_the_plugin_imports_recomputes_its_cell_unless_told_to_keep_it(tmp_path):
    package = tmp_path / "plugins" / "labelling"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "method.py").write_text(METHOD)
    (package / "choice.py").write_text("LABEL = 0\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "plugins")}
    run = ["run", "--plugin", "labelling.method", "--methods", "test-edited", "--datasets", "synthetic:unseen",
           "--no-tracking", "--output", tmp_path / "run"]

    run_cli(*run, check=0, env=env)
    first = result(tmp_path / "run")
    assert set(first["provenance"]["method_code"]["files"]) == {
        "labelling/__init__.py", "labelling/method.py", "labelling/choice.py"}
    assert "1 cells (1 finished already)" in run_cli(*run, check=0, env=env).stdout  # nothing changed

    (package / "choice.py").write_text("LABEL = 1\n")
    again = run_cli(*run, check=0, env=env)
    assert "1 cells (0 finished already)" in again.stdout
    assert "test-edited were computed by other code than now (labelling/choice.py changed)" in again.stdout
    second = result(tmp_path / "run")
    assert second["metrics"]["mIoU"] != first["metrics"]["mIoU"]
    assert second["provenance"]["method_code"]["sha256"] != first["provenance"]["method_code"]["sha256"]

    (package / "choice.py").write_text("LABEL = 2\n")
    kept = run_cli(*run, "--reuse-stale", check=0, env=env)
    assert "1 cells (1 finished already)" in kept.stdout and "kept, as --reuse-stale asks" in kept.stdout
    assert result(tmp_path / "run")["metrics"] == second["metrics"]


def test_a_built_in_methods_code_follows_its_imports_and_leaves_the_harness_out():
    files = method_code(registry.get("ov2vss"))["files"]
    assert {"methods/ov2vss/method.py", "methods/ov2vss/model.py", "methods/clip.py"} <= set(files)
    assert not any(name.startswith("benchmark/") for name in files)
    assert method_code(registry.get("chance"))["files"].keys() == {"methods/chance.py"}


def test_a_training_made_by_other_code_is_not_reused_unless_told(tmp_path):
    plugin = tmp_path / "trainable.py"
    plugin.write_text(TEST_METHODS.read_text())
    train = ["train", "--method", "test-trainable", "--dataset", "synthetic:seen", "--plugin", plugin,
             "--output", tmp_path / "training"]
    run_cli(*train, check=0)
    config = json.loads((tmp_path / "training" / "config.json").read_text())
    assert config["method_code"]["files"].keys() == {"trainable.py"}

    plugin.write_text(plugin.read_text() + "\n# an edit\n")
    refused = run_cli(*train)
    assert refused.returncode == 2
    assert "was made by other code of test-trainable than now (trainable.py changed since)" in refused.stderr
    assert "--fresh" in refused.stderr and "--reuse-stale" in refused.stderr
    run_cli(*train, "--reuse-stale", check=0)
    run_cli(*train, "--fresh", check=0)  # trains again, with the code of now
    trained = json.loads((tmp_path / "training" / "trained.json").read_text())
    assert trained["method_code"] == json.loads((tmp_path / "training" / "config.json").read_text())["method_code"]
    assert trained["method_code"]["sha256"] != config["method_code"]["sha256"]
    run_cli(*train, check=0)  # the same code as the folder's: its weights are taken as they are


def test_editing_a_plugin_file_recomputes_its_cell(tmp_path):
    plugin = tmp_path / "fixed.py"
    plugin.write_text(METHOD.replace("from labelling.choice import LABEL\n", "LABEL = 0\n"))
    run = ["run", "--plugin", plugin, "--methods", "test-edited", "--datasets", "synthetic:unseen", "--no-tracking",
           "--output", tmp_path / "run"]
    run_cli(*run, check=0)
    first = result(tmp_path / "run")
    assert list(first["provenance"]["method_code"]["files"]) == ["fixed.py"]
    plugin.write_text(plugin.read_text().replace("LABEL = 0", "LABEL = 1"))
    again = run_cli(*run, check=0)
    assert "1 cells (0 finished already)" in again.stdout and "(fixed.py changed)" in again.stdout
    assert result(tmp_path / "run")["metrics"]["mIoU"] != first["metrics"]["mIoU"]
