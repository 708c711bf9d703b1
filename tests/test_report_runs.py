"""kcifar.report.runs: reading, checking and grouping run folders."""

import importlib
import json
import os
import statistics

import pytest
from helpers import DATA, OLD_DATA, SUBSET_DATA, write_run, write_summary

from kcifar import files
from kcifar.experiments import rung
from kcifar.report import runs
from kcifar.results import HISTORY_COLUMNS, METRICS_FORMAT


def test_load_run_reads_the_files(tmp_path):
    run_dir = write_run(tmp_path, epochs=4)
    run = runs.load_run(run_dir)
    with open(os.path.join(run_dir, "metrics.json")) as f:
        assert run.metrics == json.load(f)
    assert [row["epoch"] for row in run.history] == [1, 2, 3, 4]
    assert run.history[1]["accuracy"] == pytest.approx(0.75 * 2 / 4)
    assert run.settings["seed"] == 0
    assert run.variant == ()


def _rewrite_json(path, change):
    obj = files.read_json(path)
    change(obj)
    files.write_json(path, obj)


BREAKAGES = {
    "missing folder": (lambda d: os.rename(d, d + "-gone"), "no such folder"),
    "incomplete": (lambda d: os.remove(os.path.join(d, "metrics.json")), "incomplete"),
    "unreadable json": (lambda d: files.write_text(os.path.join(d, "metrics.json"), '{"format": 1,'),
                        "metrics.json is unreadable"),
    "not kcifar json": (lambda d: files.write_json(os.path.join(d, "metrics.json"), [1, 2]), "no format number"),
    "newer format": (lambda d: _rewrite_json(os.path.join(d, "metrics.json"),
                                             lambda m: m.update(format=METRICS_FORMAT + 1)), "newer than"),
    "missing key": (lambda d: _rewrite_json(os.path.join(d, "metrics.json"), lambda m: m.pop("test_accuracy")),
                    "lacks test_accuracy"),
    "missing data key": (lambda d: _rewrite_json(os.path.join(d, "metrics.json"), lambda m: m["data"].pop("source")),
                         "lacks data.source"),
    "text for a number": (lambda d: _rewrite_json(os.path.join(d, "metrics.json"),
                                                  lambda m: m.update(test_accuracy="0.5")), "no number for test_accuracy"),
    "settings without config": (lambda d: files.write_json(os.path.join(d, "settings.json"), [1]),
                                "settings.json has no config"),
    "no history": (lambda d: os.remove(os.path.join(d, "history.csv")), "no history.csv"),
    "empty history": (lambda d: files.write_text(os.path.join(d, "history.csv"), ",".join(HISTORY_COLUMNS) + "\n"),
                      "no epochs"),
    "history column": (lambda d: files.write_text(os.path.join(d, "history.csv"), "epoch,loss\n1,2.0\n"),
                       "lacks column(s) accuracy"),
    "history text": (lambda d: files.write_text(os.path.join(d, "history.csv"), ",".join(HISTORY_COLUMNS) + "\n"
                                                + "1,x,0.1,1,0.1,0.001,1,1\n"), "not a number"),
    "history shorter": (lambda d: _rewrite_json(os.path.join(d, "metrics.json"), lambda m: m.update(epochs=5)),
                        "has 3 epochs but metrics.json says 5"),
    "settings unreadable": (lambda d: files.write_text(os.path.join(d, "settings.json"), "{"),
                            "settings.json is unreadable"),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_broken_run_is_skipped_with_the_reason(tmp_path, breakage):
    run_dir = write_run(tmp_path)
    damage, reason = BREAKAGES[breakage]
    damage(run_dir)
    with pytest.raises(runs.Skipped, match=reason.replace("(", r"\(").replace(")", r"\)")):
        runs.load_run(run_dir)


def test_settings_are_optional(tmp_path):
    run_dir = write_run(tmp_path)
    os.remove(os.path.join(run_dir, "settings.json"))
    run = runs.load_run(run_dir)
    assert run.settings is None and run.variant == ()


def test_collect_finds_runs_sorts_them_and_reports_the_broken(tmp_path):
    write_run(tmp_path / "b", name="trick2", seed=1)
    write_run(tmp_path / "b", name="trick2", seed=0)
    write_run(tmp_path / "a" / "deeper", name="trick1", backend="torch")
    write_run(tmp_path, name="baseline", backend="torch")
    broken = write_run(tmp_path / "b", name="trick3")
    os.remove(os.path.join(broken, "metrics.json"))
    # A tuner project: its trial folders hold history.csv but are no runs.
    trial = tmp_path / "search" / "trial_00"
    trial.mkdir(parents=True)
    (tmp_path / "search" / "oracle.json").write_text("{}")
    (trial / "history.csv").write_text("epoch\n")
    (tmp_path / "empty").mkdir()

    found, _, skipped = runs.collect([str(tmp_path), str(tmp_path / "b" / "trick2-jax-seed0"), str(tmp_path / "empty")])

    assert [(r.metrics["name"], r.metrics["seed"]) for r in found] == [
        ("baseline", 0), ("trick1", 0), ("trick2", 0), ("trick2", 1)]
    assert [(os.path.basename(p), "incomplete" in why or why) for p, why in skipped] == [
        ("trick3-jax-seed0", True), ("empty", "no run folders in it")]


def test_group_runs_pools_seeds_and_keeps_backends_apart(tmp_path):
    for seed, accuracy in enumerate((0.5, 0.6, 0.8)):
        write_run(tmp_path, name="trick3", seed=seed, test_accuracy=accuracy)
    write_run(tmp_path, name="trick3", backend="torch", test_accuracy=0.7)
    write_run(tmp_path, name="trick3", seed=9, test_accuracy=0.9, config_changes={"dropout": 0.4})
    found = runs.collect([str(tmp_path)])[0]
    groups = runs.group_runs(found)

    summary = [(g.first["backend"], g.runs[0].variant, g.values("seed")) for g in groups]
    assert summary == [("jax", (), [0, 1, 2]), ("torch", (), [0]), ("jax", (("dropout", 0.4),), [9])]
    pooled = groups[0]
    assert pooled.mean("test_accuracy") == pytest.approx(statistics.mean([0.5, 0.6, 0.8]))
    assert pooled.spread("test_accuracy") == pytest.approx(statistics.stdev([0.5, 0.6, 0.8]))
    assert groups[1].spread("test_accuracy") is None
    assert pooled.lecture == rung("trick3").LECTURE


def test_a_seed_run_twice_counts_once_and_the_repeat_is_listed(tmp_path):
    # Small-budget runs form one section wherever their folders are.
    first = write_run(tmp_path / "a", name="trick3", seed=0, test_accuracy=0.5, budget="small")
    copy = write_run(tmp_path / "b", name="trick3", seed=0, test_accuracy=0.6, budget="small")
    write_run(tmp_path / "b", name="trick3", seed=1, test_accuracy=0.7, budget="small")
    write_run(tmp_path / "b", name="trick3", seed=0, backend="torch", folder="other-backend", budget="small")
    found, _, skipped = runs.collect([str(tmp_path)])

    b = os.path.join(tmp_path, "b")
    assert [(r.metrics["backend"], r.metrics["seed"], r.path) for r in found] == [
        ("jax", 0, first), ("jax", 1, os.path.join(b, "trick3-small-jax-seed1")),
        ("torch", 0, os.path.join(b, "other-backend"))]
    assert skipped == [(copy, f"the same settings, data and seed 0 as {first}, which is used")]
    assert [g.values("seed") for g in runs.group_runs(found)] == [[0, 1], [0]]


def test_a_full_schedule_run_counts_once_in_its_ladder_folder_and_in_each_folder_once(tmp_path):
    # A full-schedule ladder is a folder: a run copied into a second ladder belongs to both.
    first = write_run(tmp_path / "a", name="trick3", seed=0)
    again = write_run(tmp_path / "a", name="trick3", seed=0, folder="again")
    other = write_run(tmp_path / "b", name="trick3", seed=0)
    found, _, skipped = runs.collect([str(tmp_path)])
    assert [r.path for r in found] == [again, other]  # in path order, the first of a folder's repeats is used
    assert skipped == [(first, f"the same settings, data and seed 0 as {again}, which is used")]
    assert sorted(g.ladder for g in runs.group_runs(found)) == [os.path.join(tmp_path, "a"), os.path.join(tmp_path, "b")]


def test_epochs_are_no_variant_but_other_fields_are(tmp_path):
    run = runs.load_run(write_run(tmp_path, name="trick4", epochs=2, config_changes={"l2": 5e-4, "flip": True}))
    assert run.variant == (("flip", True), ("l2", 5e-4))


@pytest.mark.parametrize("paths, names", [
    (["x/a/run", "x/b/run", "x/c"], ["a_run", "b_run", "c"]),
    (["p/q/run", "r/q/run"], ["p_q_run", "r_q_run"]),
    (["only"], ["only"]),
])
def test_short_names_are_distinct_path_endings(paths, names):
    assert [runs.short_names(paths)[p] for p in paths] == names


@pytest.mark.parametrize("value, text", [(0.78, "~78%"), (0.866, "~86.6%"), (0.945, "~94.5%"), (0.9, "~90%")])
def test_lecture_text(value, text):
    assert runs.lecture_text(value) == text


def test_load_tuner(tmp_path):
    summary = runs.load_tuner(write_summary(str(tmp_path / "search")))
    assert summary["best"]["val_accuracy"] == 0.47 and len(summary["trials"]) == 2


@pytest.mark.parametrize("damage, reason", [
    (lambda d: os.remove(os.path.join(d, "summary.json")), "no summary.json"),
    (lambda d: os.rename(d, d + "-gone"), "no such folder"),
    (lambda d: write_summary(d, fmt=99), "newer than"),
    (lambda d: files.write_text(os.path.join(d, "summary.json"), "["), "unreadable"),
    (lambda d: files.write_json(os.path.join(d, "summary.json"), {"format": 1}), "lacks its trials"),
])
def test_broken_tuner_summary_is_skipped(tmp_path, damage, reason):
    folder = write_summary(str(tmp_path / "search"))
    damage(folder)
    with pytest.raises(runs.Skipped, match=reason):
        runs.load_tuner(folder)


def test_data_label_names_file_checksum_and_sizes():
    assert runs.data_label(DATA) == (
        "cifar10-jpg.tar.xz (image-folder, JPEG mirror, sha256:01234567): 900 train / 100 val / 100 test images")
    assert runs.lecture_of(0) == rung("baseline").LECTURE and runs.lecture_of(42) is None


def test_budget_is_read_and_older_runs_are_full(tmp_path):
    assert runs.load_run(write_run(tmp_path, name="trick1")).budget == "full"
    small = runs.load_run(write_run(tmp_path, name="trick1", budget="small"))
    assert small.budget == "small" and os.path.basename(small.path) == "trick1-small-jax-seed0"


@pytest.mark.parametrize("budget", [3, "", "../up", None])
def test_a_budget_that_is_no_name_is_skipped(tmp_path, budget):
    run_dir = write_run(tmp_path)
    _rewrite_json(os.path.join(run_dir, "metrics.json"), lambda m: m.update(budget=budget))
    with pytest.raises(runs.Skipped, match="not a budget name"):
        runs.load_run(run_dir)


def _fake_budgets(monkeypatch, epochs=4):
    """kcifar.budgets's apply as the report sees it: its "small" budget trains
    `epochs` epochs with the decay rescaled."""
    def apply(config, name):
        if name != "small":
            raise ValueError(f"budget must be one of full, small. Received: budget={name!r}")
        return config.replace(epochs=epochs, lr_decay=config.lr_decay ** (config.epochs / epochs))

    monkeypatch.setattr(runs, "apply", apply)


def test_the_budgets_decay_is_no_changed_config_but_other_changes_are(tmp_path, monkeypatch):
    _fake_budgets(monkeypatch)
    decay = 0.96 ** (50 / 4)  # what the budget trains rung 6 with
    plain = runs.load_run(write_run(tmp_path / "a", name="trick6", epochs=4, budget="small",
                                    config_changes={"lr_decay": decay}))
    assert plain.variant == ()
    changed = runs.load_run(write_run(tmp_path / "b", name="trick6", epochs=4, budget="small",
                                      config_changes={"lr_decay": 0.9, "dropout": 0.4}))
    assert changed.variant == (("dropout", 0.4), ("lr_decay", 0.9))
    # Beside each, the rung's value under the same budget: its decay rescaled.
    assert changed.differences == (("dropout", 0.4, 0.3), ("lr_decay", 0.9, pytest.approx(decay)))
    # In the full budget the rung's own decay is the reference.
    full = runs.load_run(write_run(tmp_path / "c", name="trick6", epochs=4, config_changes={"lr_decay": decay}))
    assert full.variant == (("lr_decay", decay),)


def test_the_decay_of_a_budget_kcifar_does_not_know_is_not_compared(tmp_path):
    # A run folder from another version of kcifar may name a budget this one
    # lacks: its epochs and decay belong to that budget, the rest is compared.
    run = runs.load_run(write_run(tmp_path, name="trick6", epochs=4, budget="tiny",
                                  config_changes={"lr_decay": 0.5, "l2": 2e-4}))
    assert run.variant == (("l2", 2e-4),)


def test_budgets_are_grouped_apart_full_first(tmp_path):
    write_run(tmp_path / "s", name="baseline", budget="small")
    write_run(tmp_path / "t", name="baseline", budget="tiny")
    write_run(tmp_path / "f", name="trick2", budget="full")
    write_run(tmp_path / "o", name="baseline")  # before budgets: full
    found = runs.collect([str(tmp_path)])[0]
    split = runs.by_budget(runs.group_runs(found))
    assert list(split) == ["full", "small", "tiny"]
    # Full-schedule runs in two folders are two ladders, folder by folder.
    assert [(os.path.basename(g.ladder), g.first["name"]) for g in split["full"]] == [("f", "trick2"), ("o", "baseline")]
    assert [len(g.runs) for g in split["small"]] == [1]
    assert list(runs.by_budget([])) == ["full"] and runs.by_budget([])["full"] == []


@pytest.mark.parametrize("code, text", [
    ({"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": False}, "0123456"),
    ({"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": True}, "0123456 + uncommitted changes"),
    ({"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": None}, "0123456"),
    ({"commit": None, "dirty": None}, "unknown"),
    (None, "unknown"),
])
def test_code_text(code, text):
    assert runs.code_text(code) == text


def test_runs_that_recorded_the_data_by_its_path_share_the_data_of_those_that_name_it(tmp_path):
    write_run(tmp_path, name="baseline", seed=0, data=OLD_DATA)
    write_run(tmp_path, name="baseline", seed=1)
    found = runs.collect([str(tmp_path)])[0]
    (group,) = runs.group_runs(found)
    assert group.values("seed") == [0, 1]
    assert runs.data_label(OLD_DATA) == runs.data_label(DATA)


@pytest.mark.parametrize("kind, budget, name", [
    ("ladder", "full", "ladder.png"), ("epochs", "full", "epochs.png"), ("ladder", "small", "ladder-small.png")])
def test_budget_figure(kind, budget, name):
    assert runs.budget_figure(kind, budget) == name


def test_a_step_beyond_the_ladder_is_compared_with_its_own_config(tmp_path):
    plain = runs.load_run(write_run(tmp_path / "a", name="pretrained"))
    assert plain.variant == () and plain.budget == "full"
    changed = runs.load_run(write_run(tmp_path / "b", name="pretrained", config_changes={"head_epochs": 3, "dropout": 0.5}))
    assert changed.variant == (("dropout", 0.5), ("head_epochs", 3))
    # Other epochs than its own module's: a quick check, not its result.
    assert runs.load_run(write_run(tmp_path / "c", name="pretrained", epochs=1,
                                   config_changes={"epochs": 1})).budget == "custom"


@pytest.mark.parametrize("recorded", ["custom", "full"])  # as runs record it now, and did before
def test_a_run_with_other_epochs_or_a_training_subset_is_custom_whichever_budget_it_recorded(tmp_path, recorded):
    fewer = runs.load_run(write_run(tmp_path / "a", name="trick4", epochs=1, budget=recorded,
                                    config_changes={"epochs": 1}, folder="trick4-jax-seed0"))
    subset = runs.load_run(write_run(tmp_path / "b", name="trick4", budget=recorded, data=SUBSET_DATA,
                                     folder="trick4-jax-seed0"))
    assert (fewer.budget, subset.budget) == ("custom", "custom")
    assert fewer.recorded_budget == subset.recorded_budget == recorded
    assert fewer.variant == subset.variant == ()


def test_runs_on_pngs_marked_lossy_by_an_older_version_share_the_data_of_newer_ones(tmp_path):
    marked = {**DATA, "description": "image-folder at pngs (JPEG mirror: lossy pixels), sha256:0123456789abcdef"}
    write_run(tmp_path, name="trick2", seed=0, data=marked)
    write_run(tmp_path, name="trick2", seed=1, data={**marked, "description": "image-folder at pngs, sha256:0123456789abcdef"})
    assert [g.values("seed") for g in runs.group_runs(runs.collect([str(tmp_path)])[0])] == [[0, 1]]


def test_the_pretrained_steps_starting_weights_set_its_runs_apart(tmp_path):
    for folder, weights in (("a", "imagenet"), ("b", "none"), ("c", None)):  # None: before weights were recorded
        run_dir = write_run(tmp_path / folder, name="pretrained")
        if weights:
            settings = files.read_json(os.path.join(run_dir, "settings.json"))
            files.write_json(os.path.join(run_dir, "settings.json"), {**settings, "weights": weights})
    found, _, skipped = runs.collect([str(tmp_path / "a"), str(tmp_path / "b")])
    assert [r.variant for r in found] == [(), (("weights", "none"),)] and skipped == []
    assert runs.load_run(os.path.join(tmp_path, "c", "pretrained-jax-seed0")).variant == ()


def test_a_step_beyond_the_ladder_is_grouped_after_the_rungs_with_no_lecture_figure(tmp_path):
    write_run(tmp_path, name="pretrained")
    write_run(tmp_path, name="trick9")
    write_run(tmp_path, name="baseline")
    groups = runs.group_runs(runs.collect([str(tmp_path)])[0])
    assert [(g.label, g.beyond) for g in groups] == [
        ("0 baseline", False), ("9 trick9", False), ("beyond the ladder: pretrained", True)]
    assert groups[-1].lecture is None and groups[-1].first["rung"] == 10
    assert runs.step("pretrained") is importlib.import_module("kcifar.experiments.pretrained")
    assert runs.step("trick4") is rung("trick4") and runs.step("trick99") is None
