"""Planning without the command line: a request becomes cells, trainings, weights and notes in one call."""

import pytest

from benchmark import plan, suites

SYNTHETIC = ["synthetic:unseen"]


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # training folders are planned under ./results/train


def test_a_plain_request_is_every_method_on_every_setting():
    made = plan.make(plan.Request(methods=["chance"], datasets=["synthetic:unseen", "synthetic:all"], seed=3))
    assert [(c.method, c.setting, c.seed) for c in made.cells] == [("chance", "unseen", 3), ("chance", "all", 3)]
    assert made.trainings == [] and made.notes == []
    assert set(made.weights.values()) == {"none needed"}


def test_the_main_command_uses_shipped_weights_and_leaves_out_what_has_none():
    made = plan.make(plan.Request())
    assert {c.method for c in made.cells} == {"chance", "clip-cost-volume", "sam-clip", "ov2vss", "sclip", "clearclip",
                                              "naclip", "temporal"}
    (ov2vss,) = [c for c in made.cells if c.method == "ov2vss"]
    assert made.weights[ov2vss.id] == f"shipped: {ov2vss.checkpoint}" and ov2vss.checkpoint.endswith(".pt")
    assert any(note.startswith("ov2vss: shipped weights") for note in made.notes)
    assert made.notes[-1].startswith("left out (no trained weights): ov2vss-authors")


def test_train_plans_one_training_per_configuration_and_cells_that_wait_for_it(tmp_path):
    made = plan.make(plan.Request(methods=["ov2vss"], datasets=["synthetic:unseen", "synthetic:all"], train=True))
    (training,) = made.trainings
    assert training.training.dataset == "synthetic" and training.training.setting == "seen"
    assert {c.training for c in made.cells} == {training.context.folder}
    assert training.context.folder.startswith(str(tmp_path / "results" / "train"))
    assert all(made.weights[c.id] == f"trained: {training.context.folder}" for c in made.cells)
    assert made.notes == [f"ov2vss: trains first on synthetic:seen -> {training.context.folder}"]


def test_train_alone_plans_the_training_run_train_would_reuse():
    options = {"clip-cost-volume": {"variant": "trained"}}
    evaluated = plan.make(plan.Request(methods=["clip-cost-volume"], datasets=SYNTHETIC, options=options, train=True))
    alone = plan.make(plan.Request(methods=["clip-cost-volume"], options=options, train=True, evaluate=False,
                                   train_on="synthetic:seen"))
    assert alone.cells == [] and [t.training.id for t in alone.trainings] == [evaluated.trainings[0].training.id]


def test_the_paper_suite_is_its_table_files_rows():
    made = plan.make(plan.Request(suite="paper", train=True))
    rows = {(row.method, tuple(sorted(row.options_on(stand_in=True).items())))
            for table in suites.find("paper").tables for row in table.rows if not row.needs_weights}
    assert len(made.cells) == 27 and len(made.trainings) == 14
    assert {c.setting for c in made.cells} == {"unseen", "all"} and {c.dataset for c in made.cells} == {"synthetic"}
    for cell in made.cells:  # every cell runs one row's options (stand-ins: no real dataset here)
        assert any(cell.method == method and all(cell.options[k] == v for k, v in options) for method, options in rows)
    assert "vspw not found under the data root: vspw:unseen runs on synthetic:unseen with tiny models" in made.notes


@pytest.mark.parametrize("request_, message", [
    (plan.Request(suite="table1", datasets=SYNTHETIC), "--suite table1 picks the dataset settings"),
    (plan.Request(suite="table1", methods=["ov2vss"], options={"ov2vss": {"cost_channels": 16}}), "add --train"),
    (plan.Request(methods=["chance"], options={"ov2vss": {"seed": 1}}, datasets=SYNTHETIC), "--opt names ['ov2vss']"),
    (plan.Request(methods=["ov2vss-authors"], datasets=SYNTHETIC), "ov2vss-authors needs trained weights"),
    (plan.Request(methods=["chance"], train=True, evaluate=False), "chance is not trainable"),
    (plan.Request(methods=[]), "no methods to run"),
    (plan.Request(suite="table1", train=True, checkpoints={"ov2vss": "/x.pt"}), "drop their --checkpoint"),
    (plan.Request(suite="table3", train=True, options={"ov2vss": {"variant": "rfe"}}), "drop those --opt"),
])
def test_a_request_that_cannot_be_planned_says_what_to_change(request_, message):
    with pytest.raises(ValueError, match=None) as error:
        plan.make(request_)
    assert message in str(error.value)


def test_seeds_train_and_evaluate_each_trained_configuration_once_per_seed():
    made = plan.make(plan.Request(methods=["chance", "clip-cost-volume"], datasets=SYNTHETIC, seed=5, seeds=3,
                                  options={"clip-cost-volume": {"variant": "trained"}}, train=True))
    assert sorted(t.training.seed for t in made.trainings) == [5, 6, 7]
    trained = [c for c in made.cells if c.method == "clip-cost-volume"]
    assert [c.seed for c in trained] == [5, 6, 7]
    folders = {t.training.seed: t.context.folder for t in made.trainings}
    assert all(c.training == folders[c.seed] for c in trained) and len(set(folders.values())) == 3
    assert [c.seed for c in made.cells if c.method == "chance"] == [5]  # nothing to train: evaluated once
    assert sum("(seed " in note for note in made.notes) == 3


def test_seeds_without_train_say_how_to_get_them():
    with pytest.raises(plan.PlanError, match="needs --train"):
        plan.make(plan.Request(methods=["ov2vss"], datasets=SYNTHETIC, seeds=3))


def test_a_suite_without_train_runs_the_rows_that_have_weights_and_says_which_wait():
    made = plan.make(plan.Request(suite="table3"))
    assert sorted(c.options["variant"] for c in made.cells) == ["full", "rfe", "rfe-stcf"]  # the shipped ladder
    assert all(made.weights[c.id].startswith("shipped: ") for c in made.cells)
    (note,) = [n for n in made.notes if n.startswith("left out")]
    assert "9 cells of ov2vss" in note and "add --train" in note  # 12 configurations, 3 shipped


def test_a_stand_in_row_among_real_ones_trains_on_the_synthetic_world(tmp_path):
    from dataset_fixtures import write_vspw

    write_vspw(tmp_path / "data")  # VSPW is here, Cityscapes is not: Table II's rows stand in on synthetic data
    made = plan.make(plan.Request(suite="paper", train=True, data_root=str(tmp_path / "data")))
    for cell in made.cells:
        if cell.training:
            trained_on = next(t.training for t in made.trainings if t.context.folder == cell.training)
            expected = "synthetic" if cell.dataset == "synthetic" else "vspw"
            assert (trained_on.dataset, trained_on.setting) == (expected, "seen"), cell
    assert {c.dataset for c in made.cells} == {"vspw", "synthetic"}
