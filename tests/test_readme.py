"""What the README promises a newcomer, checked as they would do it: from outside the repository."""

import json
import re
import shlex
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import REPO, run_cli
from PIL import Image

from benchmark.data import synthetic
from benchmark.data.cards import load_card
from benchmark.data.records import read_mask

README = (REPO / "README.md").read_text()


def test_the_quick_start_commands_are_the_ones_ci_runs():
    commands = re.findall(r"```bash\n(pip install .*?)\n```", README)
    assert commands[:2] == ["pip install -e . && python -m benchmark run --methods all",
                            "pip install -e '.[test]' && python -m pytest"]
    assert "python -m pytest" in (REPO / ".ci" / "run").read_text()


#: Unseen mIoU every method of the main command must reach with the shipped toy weights (they
#: measure 30-65, README "The miniature world"), and the chance method must stay under (it measures 6).
UNSEEN_BOUND, CHANCE_BOUND = 20.0, 10.0


def test_main_command_runs_from_any_folder_and_names_unseen_classes_far_above_chance(tmp_path):
    done = run_cli("run", "--methods", "all", cwd=tmp_path, check=0)
    assert "using the embedded synthetic dataset" in done.stdout
    left_out = [line for line in done.stdout.splitlines() if "left out" in line]
    assert "ov2vss: shipped weights" in done.stdout
    assert left_out == ["left out (no trained weights): ov2vss-authors; train ov2vss-authors with `python -m "
                        "benchmark train --method ov2vss-authors`, then pass --checkpoint ov2vss-authors=PATH (or "
                        "add --train)"]
    results = [json.loads(p.read_text()) for p in (tmp_path / "results/runs/default/cells").glob("*.json")]
    results = {result["cell"]["method"]: result for result in results}
    assert set(results) == {"chance", "clip-cost-volume", "sam-clip", "ov2vss", "sclip", "clearclip", "naclip",
                            "temporal"}
    assert 0 < results["chance"]["metrics"]["mIoU"] < CHANCE_BOUND
    for method, result in results.items():
        assert result["status"] == "done" and result["cell"]["setting"] == "unseen", method
        if method != "chance":
            assert result["metrics"]["mIoU"] > UNSEEN_BOUND, (method, result["metrics"])
            assert not result["provenance"]["method"].get("warnings"), method  # no random weights anywhere
    assert results["sam-clip"]["method_counts"].get("frames_without_masks", 0) == 0  # the toy SAM finds regions
    assert "OV2VSS" in done.stdout and "(stand-in)" in done.stdout  # the Table I-style table


def test_the_readme_example_method_runs_as_a_plugin(tmp_path):
    example = re.search(r"<!-- readme-example:start -->\n```python\n(.*?)```", README, re.S).group(1)
    plugin = tmp_path / "my_method.py"
    plugin.write_text(example)
    out = tmp_path / "run"
    run_cli("run", "--plugin", plugin, "--methods", "brightness", "--opt", "brightness.threshold=80",
            "--datasets", "synthetic:unseen", "--output", out, check=0)
    result = json.loads(next((out / "cells").glob("brightness__*.json")).read_text())
    # The same pixel accuracy straight from the files: dark unseen-class-0 pixels are hits.
    seen, total = load_card("synthetic")["num_seen"], len(load_card("synthetic")["classes"])
    hits = scored = 0
    for video in synthetic.SyntheticReader().read_videos(synthetic.ensure(), "val"):
        for index, mask_path in video.masks.items():
            raw = read_mask(mask_path)
            grey = np.asarray(Image.open(video.frames[index]).convert("RGB"), dtype=np.float32).mean(2)
            unseen = (raw > seen) & (raw <= total)
            scored += unseen.sum()
            hits += (unseen & (raw == seen + 1) & (grey <= 80)).sum()
    assert result["status"] == "done"
    assert result["metrics"]["pAcc"] == pytest.approx(100 * hits / scored)


def test_an_oracle_written_from_the_readme_scores_100(tmp_path):
    # Only what the README says: the VSPW layout of masks, the class list in datasets/<name>.json,
    # names with underscores read as spaces, and ABSTAIN for "none of these".
    plugin = tmp_path / "oracle.py"
    plugin.write_text(textwrap.dedent(f"""
        import json
        import numpy as np
        import torch
        from PIL import Image
        from benchmark import ABSTAIN, Method

        CLASSES = json.load(open({str(REPO / "datasets" / "synthetic.json")!r}))["classes"]

        class Oracle(Method):
            name = "readme-oracle"

            def setup(self, vocabulary, device):
                self.lookup = np.full(256, ABSTAIN)
                for raw, name in enumerate(CLASSES, start=1):
                    if name.replace("_", " ") in vocabulary:
                        self.lookup[raw] = vocabulary.index(name.replace("_", " "))

            def segment(self, video):
                for i in video.annotated:
                    frame = video.path(i)
                    mask = Image.open(frame.parent.parent / "mask" / (video.frame_id(i) + ".png"))
                    yield torch.from_numpy(self.lookup[np.asarray(mask)])
    """))
    out = tmp_path / "run"
    run_cli("run", "--plugin", plugin, "--methods", "readme-oracle", "--datasets", "synthetic:unseen",
            "--output", out, check=0)
    result = json.loads(next((out / "cells").glob("readme-oracle__*.json")).read_text())
    assert result["metrics"]["mIoU"] == 100


def test_every_local_link_of_the_docs_resolves():
    pages = [REPO / "README.md", REPO / "suites" / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    for page in pages:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"


def test_the_architecture_page_names_every_module_of_the_harness():
    tree = (REPO / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"^\s+(\w+\.py)\s", tree, re.M))
    modules = {p.name for p in (REPO / "benchmark").rglob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    assert modules <= named, sorted(modules - named)
    everywhere = {p.name for p in REPO.rglob("*.py")}
    assert named <= everywhere, sorted(named - everywhere)


def test_the_readme_fault_table_lists_every_fault_of_the_suite_all_survived():
    """The table comes from the suite's own output (`--faults-table`); a fault added to the suite
    must be added to it."""
    table = README.split("<!-- faults-table -->")[1].split("<!-- /faults-table -->")[0]
    rows = dict(re.findall(r"^\| (.+?) \| (\d+/\d+) \|$", table, re.M))
    faults = {name for path in (REPO / "tests" / "faults").glob("test_*.py")
              for name in re.findall(r'pytest\.mark\.fault\(\s*"([^"]+)"', path.read_text())}
    assert faults and set(rows) == faults
    assert all(count.split("/")[0] == count.split("/")[1] for count in rows.values()), rows


def test_the_readme_predict_example_runs_on_a_video_it_makes(tmp_path):
    script = re.search(r"<!-- readme-predict:start -->\n```python\n(.*?)```", README, re.S).group(1)
    (tmp_path / "street.py").write_text(script)
    subprocess.run([sys.executable, "street.py"], cwd=tmp_path, check=True, timeout=300)
    command = re.search(r"^python -m benchmark (predict street\.mp4 .*)$", README, re.M).group(1)
    run_cli(*shlex.split(command), cwd=tmp_path, check=0)
    out = tmp_path / "results" / "predict" / "street"
    summary = json.loads((out / "predictions.json").read_text())
    assert summary["overlay"]["frames"] == len(summary["frames"]) == len(list((out / "labels").glob("*.png"))) > 0
    assert summary["footage"]["kind"] == "video"


@pytest.mark.parametrize("example, method", [("methods-clip-example", "clip-patches"), ("methods-wrap-example", "steady")])
def test_the_method_docs_examples_run_as_plugins(tmp_path, example, method):
    docs = (REPO / "docs" / "methods.md").read_text()
    code = re.search(rf"<!-- {example}:start -->\n```python\n(.*?)```", docs, re.S).group(1)
    (tmp_path / f"{method}.py").write_text(code)
    out = tmp_path / "run"
    run_cli("run", "--plugin", tmp_path / f"{method}.py", "--methods", method, "--datasets", "synthetic:unseen",
            "--output", out, "--no-tracking", check=0)
    result = json.loads(next((out / "cells").glob(f"{method}__*.json")).read_text())
    assert result["status"] == "done" and result["metrics"]["mIoU"] is not None


def test_the_readme_dry_run_is_what_the_command_prints_with_both_datasets(tmp_path):
    from dataset_fixtures import write_cityscapes, write_vspw

    shown = re.search(r"<!-- readme-dry-run:start -->\n```text\n(.*?)```", README, re.S).group(1)
    write_vspw(tmp_path / "data")
    write_cityscapes(tmp_path / "data")
    printed = run_cli("run", "--suite", "paper", "--train", "--dry-run", "--executor", "slurm", "--data-root",
                      tmp_path / "data", check=0).stdout
    assert printed == shown, "the README's --dry-run output is out of date: paste the command's output in"
