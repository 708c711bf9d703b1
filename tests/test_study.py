import json
import os
import shutil

import numpy as np
import pytest

from kcifar import files, study
from kcifar.results import HISTORY_COLUMNS

PLAN = {
    "rung": "trick6", "seeds": [0, 1], "figure": {"last_epochs": 5},
    "adoption": {"each_seed": 0.005, "mean": 0.01},
    "stages": [
        {"name": "crop", "base": "current", "candidates": ["a", "b"], "references": ["ref"]},
        {"name": "batch 64", "base": "previous winner", "candidates": ["b64"]},
        {"name": "batch 32", "base": "previous winner", "candidates": ["b32"], "if_adopted": True},
    ],
    "variants": {
        "current": {"out": "crop/current"}, "a": {"out": "crop/a"}, "b": {"out": "crop/b"},
        "ref": {"out": "crop/ref"},
        "b64": {"changes": {"batch_size": 64}, "out": "batch/b64"},
        "b32": {"changes": {"batch_size": 32}, "out": "batch/b32"},
    },
}
CHANGES = {"current": {}, "a": {"crop_scale": 0.9}, "b": {"translate": 4}, "ref": {"crop_scale": 1.0}}


def make_study(root, plan=PLAN):
    files.write_json(os.path.join(root, "plan.json"), plan)
    os.makedirs(os.path.join(root, "configs"))
    for name, changes in CHANGES.items():
        files.write_json(os.path.join(root, "configs", f"{name}.json"), {"rung": "trick6", "changes": changes})
    return str(root)


def write_run(root, variant, seed, last5, early=0.99, test_accuracy=None, complete=True):
    """A run folder of 50 epochs whose last five validation accuracies
    average `last5`; the 45 before are `early`, which the figure must not see."""
    run_dir = os.path.join(root, PLAN["variants"][variant]["out"], f"trick6-tensorflow-seed{seed}")
    os.makedirs(run_dir)
    rows = [{c: 0.0 for c in HISTORY_COLUMNS} | {"epoch": e, "val_accuracy": early if e <= 45 else last5}
            for e in range(1, 51)]
    files.write_csv(os.path.join(run_dir, "history.csv"), rows, HISTORY_COLUMNS)
    files.write_json(os.path.join(run_dir, "settings.json"),
                     {"code": {"commit": f"{seed}abcdef" + "0" * 32, "dirty": variant == "b"}})
    if complete:
        files.write_json(os.path.join(run_dir, "metrics.json"),
                         {"test_accuracy": 1.0 - last5 if test_accuracy is None else test_accuracy,
                          "device": "cpu: test x2"})


def stage1(root, figures):
    for variant, by_seed in figures.items():
        for seed, value in enumerate(by_seed):
            write_run(root, variant, seed, value)


def test_pending_until_every_run_is_complete_and_the_commands_to_come(tmp_path):
    root = make_study(tmp_path)
    write_run(root, "current", 0, 0.80)
    write_run(root, "current", 1, 0.80, complete=False)  # a stopped run is no result
    decision = study.decide(json.load(open(os.path.join(root, "plan.json"))), root)
    crop = decision["stages"][0]
    assert crop["verdict"] == "pending" and crop["winner"] is None and len(decision["stages"]) == 1
    assert crop["figures"]["current"] == {0: pytest.approx(0.80), 1: None}
    assert len(decision["to_run"]) == 7  # current seed 1, and both seeds of a, b and ref
    assert (f"python -m kcifar.experiments.trick6 --config {os.path.join(root, 'configs', 'a.json')} --seed 1 "
            f"--out {os.path.join(root, 'crop', 'a')} --resume") in decision["to_run"]


def test_a_candidate_ahead_on_each_seed_and_the_mean_is_adopted_and_the_next_stage_builds_on_it(tmp_path):
    root = make_study(tmp_path)
    # a: +0.6 and +1.6 (mean +1.1); b: +2 and +0.4 (mean +1.2, one seed short); ref best of all.
    stage1(root, {"current": (0.800, 0.800), "a": (0.806, 0.816), "b": (0.820, 0.804), "ref": (0.9, 0.9)})
    decision = study.decide(study.read_plan(root), root)
    crop = decision["stages"][0]
    assert crop["verdict"] == "decided" and crop["passed"] == ["a"] and crop["winner"] == "a"
    assert decision["stages"][1]["base"] == "a" and decision["stages"][1]["verdict"] == "pending"
    # The next stage's candidate is the winner's config plus its own change.
    assert files.read_json(os.path.join(root, "configs", "b64.json")) == {
        "rung": "trick6", "changes": {"crop_scale": 0.9, "batch_size": 64}}


def test_a_reference_never_holds_up_the_decision_and_its_runs_come_last(tmp_path):
    root = make_study(tmp_path)
    stage1(root, {"current": (0.80, 0.80), "a": (0.82, 0.82), "b": (0.80, 0.80)})
    decision = study.decide(study.read_plan(root), root)
    assert decision["stages"][0]["verdict"] == "decided" and decision["stages"][0]["winner"] == "a"
    assert decision["stages"][0]["figures"]["ref"] == {0: None, 1: None}
    # Stage 2's runs first, then the reference's, which never move a decision.
    assert ["--out " + os.path.join(root, "batch", "b64") in c for c in decision["to_run"]] == [True, True, False, False]
    assert all("--out " + os.path.join(root, "crop", "ref") in c for c in decision["to_run"][2:])


def test_the_highest_mean_of_several_passing_wins(tmp_path):
    root = make_study(tmp_path)
    stage1(root, {"current": (0.80, 0.80), "a": (0.815, 0.815), "b": (0.83, 0.83), "ref": (0.80, 0.80)})
    assert study.decide(study.read_plan(root), root)["stages"][0]["winner"] == "b"


def test_a_candidate_exactly_at_the_margins_passes_despite_float32_storage(tmp_path):
    root = make_study(tmp_path)
    f32 = lambda correct: float(np.float32(correct / 5000))  # as Keras writes val_accuracy to history.csv
    # a: each seed exactly +0.5 point and the mean exactly +1 point (counts of 5000 images).
    stage1(root, {"current": (f32(4188), f32(4203)), "a": (f32(4213), f32(4278)),
                  "b": (f32(4188), f32(4203)), "ref": (f32(4188), f32(4203))})
    crop = study.decide(study.read_plan(root), root)["stages"][0]
    assert crop["passed"] == ["a"]
    # One image fewer on seed 1 and the mean falls short.
    shutil.rmtree(os.path.join(root, "crop", "a"))
    stage1(root, {"a": (f32(4213), f32(4277))})
    assert study.decide(study.read_plan(root), root)["stages"][0]["passed"] == []


def test_none_passing_keeps_the_base(tmp_path):
    root = make_study(tmp_path)
    stage1(root, {"current": (0.80, 0.80), "a": (0.809, 0.809), "b": (0.79, 0.85), "ref": (0.80, 0.80)})
    crop = study.decide(study.read_plan(root), root)["stages"][0]
    assert crop["passed"] == [] and crop["winner"] == "current"


def test_a_wider_seed_spread_becomes_the_mean_margin(tmp_path):
    root = make_study(tmp_path)
    # The base's seeds differ by 2 points: a's +1.5 on each seed is not enough.
    stage1(root, {"current": (0.79, 0.81), "a": (0.805, 0.825), "b": (0.80, 0.80), "ref": (0.80, 0.80)})
    decision = study.decide(study.read_plan(root), root)
    assert decision["noise"]["spread"] == pytest.approx(0.02) and decision["margins"]["mean"] == pytest.approx(0.02)
    assert decision["stages"][0]["winner"] == "current"


def test_the_test_set_plays_no_part(tmp_path):
    root = make_study(tmp_path)
    stage1(root, {"current": (0.80, 0.80), "a": (0.82, 0.82), "b": (0.80, 0.80), "ref": (0.80, 0.80)})
    before = study.decide(study.read_plan(root), root)
    for seed in (0, 1):  # the loser's test accuracy far above the winner's
        files.write_json(os.path.join(root, "crop", "current", f"trick6-tensorflow-seed{seed}", "metrics.json"),
                         {"test_accuracy": 0.99})
    assert study.decide(study.read_plan(root), root) == before and before["stages"][0]["winner"] == "a"


def test_a_stage_that_needs_an_adoption_is_skipped_without_one(tmp_path):
    root = make_study(tmp_path)
    stage1(root, {"current": (0.80, 0.80), "a": (0.80, 0.80), "b": (0.80, 0.80), "ref": (0.80, 0.80)})
    write_run(root, "b64", 0, 0.80)
    write_run(root, "b64", 1, 0.80)
    stages = study.decide(study.read_plan(root), root)["stages"]
    assert [s["winner"] for s in stages] == ["current", "current", "current"]
    assert stages[2]["verdict"].startswith("skipped")
    assert not os.path.exists(os.path.join(root, "configs", "b32.json"))


def test_main_prints_the_verdict_and_writes_the_decision(tmp_path, capsys):
    root = make_study(tmp_path)
    stage1(root, {"current": (0.80, 0.80), "a": (0.82, 0.82), "b": (0.80, 0.80), "ref": (0.80, 0.80)})
    assert study.main([root]) == 0
    out = capsys.readouterr().out
    assert "stage crop (base: current): decided, winner a" in out and "seed 0: 82.00%" in out
    assert files.read_json(os.path.join(root, "decision.json"))["stages"][0]["winner"] == "a"


def test_the_verdict_page_gives_each_figure_its_distance_from_the_base_and_each_runs_commit(tmp_path):
    root = make_study(tmp_path)
    stage1(root, {"current": (0.80, 0.80), "a": (0.82, 0.83), "b": (0.80, 0.80), "ref": (0.79, 0.80)})
    assert study.main([root]) == 0
    page = open(os.path.join(root, "verdict-tensorflow.md"), encoding="utf-8").read()
    assert "## Stage crop: decided: a" in page and "## Stage batch 64: pending" in page
    assert "| a | 82.00% | 83.00% | 82.50% | +2.50 | 0abcdef on cpu: test x2; 1abcdef on cpu: test x2 |" in page
    assert "| current (base) | 80.00% | 80.00% | 80.00% |  |" in page
    assert "| ref (reference) | 79.00% | 80.00% | 79.50% | -0.50 |" in page
    assert "0abcdef+changes on cpu: test x2" in page  # b ran with uncommitted changes
    assert "Stages still to come: batch 32." in page and "Runs still to come: 2" in page


def test_the_verdict_page_of_a_pending_stage_marks_what_is_not_complete(tmp_path):
    root = make_study(tmp_path)
    write_run(root, "current", 0, 0.80)
    write_run(root, "current", 1, 0.81, complete=False)
    assert study.main([root]) == 0
    page = open(os.path.join(root, "verdict-tensorflow.md"), encoding="utf-8").read()
    assert "| current (base) | 80.00% | not complete |  |  | 0abcdef on cpu: test x2 |" in page
    assert "seed spread is not known yet" in page and "Stages still to come: batch 64, batch 32." in page


def test_the_committed_verdict_page_is_what_the_committed_runs_give(tmp_path):
    committed = os.path.join("experiments", "study")
    copy = shutil.copytree(committed, tmp_path / "study")
    study.main([str(copy)])
    assert (open(os.path.join(copy, "verdict-tensorflow.md"), encoding="utf-8").read()
            == open(os.path.join(committed, "verdict-tensorflow.md"), encoding="utf-8").read())


@pytest.mark.parametrize("plan, message", [
    (None, "unreadable"),
    ({**PLAN, "rung": "trick99"}, "not a study plan"),
    ({**PLAN, "seeds": [0]}, "two seeds"),
    ({**PLAN, "stages": [{"name": "x", "base": "current", "candidates": ["nope"]}]}, "variant 'nope'"),
])
def test_a_bad_plan_is_one_line_and_exit_2(tmp_path, capsys, plan, message):
    if plan is not None:
        files.write_json(os.path.join(tmp_path, "plan.json"), plan)
    assert study.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.startswith("python -m kcifar.study: error:")
    assert not os.path.exists(os.path.join(tmp_path, "decision.json"))


def test_the_committed_plan_reads():
    plan = study.read_plan(os.path.join("experiments", "study"))
    assert plan["rung"] == "trick6" and plan["stages"][0]["base"] == "current"


def test_commands_alone_one_a_line(tmp_path, capsys):
    root = make_study(tmp_path)
    stage1(root, {"current": (0.80, 0.80), "a": (0.82, 0.82), "b": (0.80, 0.80), "ref": (0.80, 0.80)})
    assert study.main([root, "--commands"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"python -m kcifar.experiments.trick6 --config {os.path.join(root, 'configs', 'b64.json')} "
                     f"--seed {s} --out {os.path.join(root, 'batch', 'b64')} --resume" for s in (0, 1)]
