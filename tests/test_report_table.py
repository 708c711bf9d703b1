"""kcifar.report.table: the Markdown table and page hold the files' numbers."""

import importlib
import os

import pytest
from helpers import DATA, OLD_DATA, SUBSET_DATA, write_run, write_summary

from kcifar import files, results
from kcifar.report import runs, table


def rows_of(markdown):
    """The first table's body rows as lists of cells (header and rule dropped)."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| "))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[start + 2:end]]


def summary(budget, groups):
    """A section's summary as one text, sentence after sentence."""
    return " ".join(table.budget_summary(budget, groups))


def groups_under(root):
    found = runs.collect([str(root)])[0]
    return runs.group_runs(found)


def test_table_numbers_equal_the_files_numbers(tmp_path):
    paths = [write_run(tmp_path, name="trick3", seed=seed, test_accuracy=acc, train_accuracy=0.9,
                       clean_accuracy=clean, best=(2, best))
             for seed, acc, clean, best in ((0, 0.5, 0.75, 0.55), (1, 0.6, 0.8, 0.6), (2, 0.7, 0.85, 0.65))]
    paths.append(write_run(tmp_path, name="baseline", backend="torch", epochs=2, test_accuracy=0.4,
                           train_accuracy=0.8125))
    metrics = {p: files.read_json(os.path.join(p, "metrics.json")) for p in paths}
    groups = groups_under(tmp_path)

    header = [name for name, _ in table.COLUMNS]
    baseline, trick3 = (dict(zip(header, row)) for row in rows_of(table.table(groups)))
    details = [name for name, _ in table.DETAIL_COLUMNS]
    baseline_how, trick3_how = (dict(zip(details, row)) for row in rows_of(table.details_table(groups)))
    m = metrics[paths[3]]
    assert baseline == {
        "rung": "0 baseline", "change": m["change"], "lecture": "~78%", "ours (test)": "40.00%",
        "ours, best val. epoch": "", "train": "81.25%", "gap": "+41.25 pp",
    }
    assert baseline_how == {
        "rung": "0 baseline", "train (clean)": "", "clean gap": "", "epochs": "2", "seeds": "0",
        "backend": "torch 1.2.3", "device": "cpu: x86_64 x2", "seconds": "4",
        "data": "cifar10-jpg.tar.xz, 900 train [1]", "code": "unknown",
    }
    # Three seeds: mean ± sample standard deviation of 50, 60, 70 %.
    assert trick3["lecture"] == "~86.6%"
    assert trick3["ours (test)"] == "60.00% ± 10.00"
    assert trick3["ours, best val. epoch"] == "60.00% ± 5.00 (epoch 2, 2, 2)"
    assert trick3["train"] == "90.00% ± 0.00"
    assert trick3["gap"] == "+30.00 pp ± 10.00"
    # The clean figures, recorded by these runs and not by the baseline's (an older folder: blank).
    assert trick3_how["train (clean)"] == "80.00% ± 5.00"
    assert trick3_how["clean gap"] == "+20.00 pp ± 5.00"
    assert trick3_how["seeds"] == "0, 1, 2"
    assert [metrics[p]["test_accuracy"] for p in paths[:3]] == [0.5, 0.6, 0.7]


def test_the_step_table_sets_each_step_beside_the_lectures(tmp_path):
    for name, acc in (("baseline", 0.5), ("trick1", 0.7), ("trick2", 0.6)):
        write_run(tmp_path, name=name, test_accuracy=acc)
    write_run(tmp_path, name="trick4", test_accuracy=0.8)  # no rung 3: no step to rung 4
    rows = rows_of(table.step_table(groups_under(tmp_path)))
    header = [name for name, _ in table.STEP_COLUMNS]
    got = [{k: row[header.index(k)] for k in ("rung", "our step", "lecture's step")} for row in rows]
    assert got == [
        {"rung": "0 baseline", "our step": "-", "lecture's step": ""},
        {"rung": "1 trick1", "our step": "+20.00 pp", "lecture's step": "+2.00 pp"},
        {"rung": "2 trick2", "our step": "-10.00 pp", "lecture's step": "+4.00 pp"},
        {"rung": "4 trick4", "our step": "-", "lecture's step": "+0.90 pp"},
    ]


def test_a_run_in_another_precision_says_so_in_its_own_row(tmp_path):
    write_run(tmp_path, name="trick2", folder="f32")
    write_run(tmp_path, name="trick2", folder="bf16", precision="mixed_bfloat16", test_accuracy=0.6)

    groups = groups_under(tmp_path)
    tests = [row[3] for row in rows_of(table.table(groups))]
    backends = [row[5] for row in rows_of(table.details_table(groups))]
    assert sorted(zip(backends, tests)) == [("jax 1.2.3", "50.00%"), ("jax 1.2.3, mixed_bfloat16", "60.00%")]
    # The change column, where a student reads the rows, names it too.
    changes = sorted(row[1] for row in rows_of(table.table(groups)))
    assert changes == [runs.step("trick2").CONFIG.change, runs.step("trick2").CONFIG.change + " (in mixed_bfloat16)"]


def test_change_names_the_changed_fields_and_escapes_pipes(tmp_path):
    run_dir = write_run(tmp_path, name="trick4", config_changes={"l2": 5e-4, "change": "a | b"})
    text = table.table(groups_under(tmp_path))
    # Both values: what the run trained with, and what the rung has as the code stands.
    assert "a \\| b (trained with l2=0.0005; the rung has 5e-06)" in text
    assert len(rows_of(text)[0]) == len(table.COLUMNS)
    assert os.path.isdir(run_dir)


@pytest.mark.parametrize("value, spread, text", [
    (0.8123, None, "81.23%"), (0.5, 0.0123, "50.00% ± 1.23"), (1.0, None, "100.00%")])
def test_percent(value, spread, text):
    assert table.percent(value, spread) == text


@pytest.mark.parametrize("value, text", [(0.1234, "+12.34 pp"), (-0.05, "-5.00 pp"), (0.0, "+0.00 pp")])
def test_points(value, text):
    assert table.points(value) == text


def test_page_links_figures_lists_data_skipped_and_searches(tmp_path):
    out = tmp_path / "experiments"
    write_run(out, name="baseline", seed=0)
    write_run(out, name="baseline", seed=1)
    search = write_summary(str(tmp_path / "tuner_runs" / "trick4-random"))
    (tmp_path / "tuner_runs" / "trick4-random" / "summary.png").write_bytes(b"png")
    found = runs.collect([str(out)])[0]
    names = runs.short_names([r.path for r in found])
    summary = runs.load_tuner(search)

    text = table.page(runs.group_runs(found), names, [("experiments/half", "no metrics.json")],
                      [("trick4-random", search, summary)], str(out))

    assert "## The ladder: full schedule\n" in text and "(figures/ladder.png)" in text
    assert "(figures/epochs.png)" in text and "small budget" not in text
    for name in ("baseline-jax-seed0", "baseline-jax-seed1"):
        assert f"### {name}\n" in text
        assert f"(figures/{name}-curves.png)" in text and f"(figures/{name}-classes.png)" in text
        assert f"]({name}/)" in text
    assert f"1. `{DATA['description']}`: 900 train / 100 validation / 100 test images; {DATA['notes'][0]}" in text
    assert "- `experiments/half`: no metrics.json" in text
    assert "beyond the ladder" not in text  # no such step among the runs
    assert "### trick4-random" in text and "val_accuracy 0.4700" in text
    assert "(../tuner_runs/trick4-random/summary.png)" in text


def test_page_without_runs(tmp_path):
    text = table.page([], {}, [], [], str(tmp_path))
    assert text.startswith(table.GENERATED_HEADER)
    assert "No finished runs yet." in text and "(figures/ladder.png)" in text
    assert "## Runs" not in text and "## Skipped" not in text and "epochs.png" not in text


def test_page_has_a_table_and_charts_per_budget_and_each_runs_code(tmp_path):
    out = tmp_path / "experiments"
    commit = "89abcdef0123456789abcdef0123456789abcdef"
    write_run(out / "small", name="baseline", epochs=4, budget="small", code={"commit": commit, "dirty": True})
    write_run(out / "small", name="trick1", epochs=4, budget="small", code={"commit": commit, "dirty": False})
    write_run(out, name="baseline", epochs=2, data=OLD_DATA)  # before budgets and code versions
    found = runs.collect([str(out)])[0]
    names = runs.short_names([r.path for r in found])
    text = table.page(runs.group_runs(found), names, [], [], str(out))

    full, small = text.split("## The ladder: full schedule\n")[1].split("## The ladder: small budget\n")
    small, rest = small.split("Columns:\n")
    assert "(figures/ladder.png)" in full and "(figures/epochs.png)" in full
    assert "(figures/ladder-small.png)" in small and "(figures/epochs-small.png)" in small
    assert "`small` budget (4 epochs)" in small and "not counted as a changed config" in small
    assert [row[0] for row in rows_of(full)] == ["0 baseline"] and rows_of(full)[0][2] == "~78%"
    assert [(row[0], row[2]) for row in rows_of(small)] == [("0 baseline", "-"), ("1 trick1", "-")]
    # One data set: the old run's path is shown by its file name, as the new runs name it.
    assert f"1. `{DATA['description']}`" in rest and "/data/" not in text
    assert "Folder [baseline-jax-seed0](baseline-jax-seed0/): full budget, code unknown," in rest
    assert ("Folder [small/baseline-small-jax-seed0](small/baseline-small-jax-seed0/): small budget, "
            "code 89abcde + uncommitted changes,") in rest
    assert "small budget, code 89abcde, float32" in rest


def test_search_data_is_shown_by_file_name(tmp_path):
    search = write_summary(str(tmp_path / "s"))
    summary = {**runs.load_tuner(search), "data": OLD_DATA["description"]}
    text = table.page([], {}, [], [("s", search, summary)], str(tmp_path))
    assert f"data: {DATA['description']}." in text


def test_a_budgets_table_numbers_its_data_as_the_pages_list_does(tmp_path):
    # Two budgets on two training subsets: the small budget's rows must point
    # at the second entry of the page's one data list, not restart at [1].
    write_run(tmp_path, name="baseline", budget="full")
    write_run(tmp_path, name="baseline", budget="small", data={**DATA, "train": 500})
    groups = groups_under(tmp_path)
    names = {run.path: os.path.basename(run.path) for group in groups for run in group.runs}
    text = table.page(groups, names, [], [], str(tmp_path))
    listed = [line for line in text.splitlines() if line[:3] in ("1. ", "2. ")]
    assert " 900 train / " in listed[0] and " 500 train / " in listed[1]
    small = text[text.index("## The ladder: small budget"):]
    assert "500 train [2]" in rows_of(small[small.index("How it was run:"):])[0][-2]


def test_runs_on_a_subset_of_the_training_split_are_custom_runs_after_the_budgets(tmp_path):
    out = tmp_path / "experiments"
    write_run(out, name="trick4", epochs=2)
    write_run(out / "small", name="trick4", epochs=2, budget="small")
    write_run(out / "quick", name="trick4", epochs=1, data=SUBSET_DATA)  # --limit-train 400 --epochs 1
    found = runs.collect([str(out)])[0]
    assert [run.budget for run in found] == ["full", "small", "custom"]
    text = table.page(runs.group_runs(found), runs.short_names([r.path for r in found]), [], [], str(out))

    full, rest = text.split("## The ladder: full schedule\n")[1].split("## The ladder: small budget\n")
    small, custom = rest.split("## The ladder: custom runs\n")
    custom = custom.split("Columns:\n")[0]
    assert [(row[0], row[2]) for row in rows_of(full)] == [("4 trick4", "~87.5%")]
    # Never beside the lecture's figure: a quick run would read as the rung's result.
    assert [(row[0], row[2]) for row in rows_of(custom)] == [("4 trick4", "-")]
    assert [row[3] for row in rows_of(custom[custom.index("How it was run:"):])] == ["1"]  # its epochs
    assert "not results of the rungs" in custom and "(figures/ladder-custom.png)" in custom


def test_a_full_budget_run_with_other_epochs_is_a_custom_run(tmp_path):
    write_run(tmp_path, name="trick4", epochs=1, config_changes={"epochs": 1})  # --epochs 1
    found = runs.collect([str(tmp_path)])[0]
    assert [run.budget for run in found] == ["custom"]
    assert rows_of(table.table(runs.group_runs(found)))[0][2] == "-"


def test_each_budget_opens_with_a_paragraph_written_from_its_runs(tmp_path):
    write_run(tmp_path, name="baseline", test_accuracy=0.8, train_accuracy=0.99)
    write_run(tmp_path, name="trick1", test_accuracy=0.7, train_accuracy=0.75)
    write_run(tmp_path, name="trick2", test_accuracy=0.9, train_accuracy=0.95)
    groups = runs.group_runs(runs.collect([str(tmp_path)])[0])
    text = summary("full", groups)
    assert text.startswith("3 runs of 3 rungs, 900 training images, 3 epochs.")
    assert "Test accuracy rises at 1 of 2 steps from one rung to the next; it falls at rung 1 (-10.00 pp)." in text
    assert "ranges from +5.00 pp to +19.00 pp" in text
    assert "Best on validation after the last epoch: rung 2 trick2 (91.00%)." in text
    # Against the lecture (78%, 80%, 84%): rungs 0 and 2 reach it, rung 1 falls 10 points short.
    assert "At or above the lecture's figure: rung 0, 2. Below the lecture's figure: rung 1 (-10.00 pp)." in text
    assert "What this cannot show: with one seed" in text
    assert text.endswith("The data here is a JPEG copy of CIFAR-10, which scores a little lower than the original images.")
    assert "what the tricks do at full scale" in summary("small", groups)
    assert "The gap (running training minus test accuracy) is +19.00 pp." in summary("full", groups[:1])


def test_lossless_data_is_not_called_a_jpeg_copy(tmp_path):
    from helpers import DATA

    png = {**DATA, "description": "image-folder at cifar10-png, sha256:0123456789abcdef", "source": "cifar10-png"}
    write_run(tmp_path, name="baseline", data=png)
    text = summary("full", runs.group_runs(runs.collect([str(tmp_path)])[0]))
    assert "What this cannot show: with one seed" in text and "JPEG" not in text


def test_steps_are_counted_within_a_backend_never_across_though_the_device_changes(tmp_path):
    for backend, accuracies in (("jax", (0.5, 0.6)), ("torch", (0.7, 0.6))):
        for name, accuracy in zip(("baseline", "trick1"), accuracies):
            write_run(tmp_path, name=name, backend=backend, test_accuracy=accuracy)
    # The jax ladder's rung 1 ran on another CPU (after a resume): still a step of that ladder.
    path = tmp_path / "trick1-jax-seed0" / "metrics.json"
    files.write_json(path, {**files.read_json(path), "device": "cpu: another CPU x2"})
    groups = runs.group_runs(runs.collect([str(tmp_path)])[0])
    assert ("Test accuracy rises at 1 of 2 steps from one rung to the next; it falls at rung 1 (-10.00 pp)."
            in summary("full", groups))


def test_seeds_run_on_two_cpus_are_one_row_that_names_both(tmp_path):
    write_run(tmp_path, name="trick1", seed=0, test_accuracy=0.5)
    write_run(tmp_path, name="trick1", seed=1, test_accuracy=0.7)
    path = tmp_path / "trick1-jax-seed1" / "metrics.json"
    files.write_json(path, {**files.read_json(path), "device": "cpu: another CPU x2"})
    groups = groups_under(tmp_path)
    assert len(groups) == 1 and groups[0].values("seed") == [0, 1]
    (row,) = rows_of(table.details_table(groups))
    assert row[6] == f"{files.read_json(tmp_path / 'trick1-jax-seed0' / 'metrics.json')['device']}; cpu: another CPU x2"


def test_a_step_between_backends_is_left_out_and_named(tmp_path):
    write_run(tmp_path, name="baseline", backend="tensorflow", test_accuracy=0.5)
    write_run(tmp_path, name="trick1", backend="tensorflow", test_accuracy=0.6)
    write_run(tmp_path, name="trick2", backend="jax", test_accuracy=0.8)
    write_run(tmp_path, name="trick3", backend="jax", test_accuracy=0.7)
    text = summary("full", runs.group_runs(runs.collect([str(tmp_path)])[0]))
    assert ("Test accuracy rises at 1 of 2 steps from one rung to the next; it falls at rung 3 (-10.00 pp). "
            "The step from rung 1 to 2 is not counted: its runs differ in backend (tensorflow and jax).") in text


def test_the_full_schedule_says_what_each_rungs_validation_curve_shows(tmp_path):
    overfits = write_run(tmp_path, name="baseline", epochs=5)
    write_run(tmp_path, name="trick1", epochs=5)  # the helper's curves: still improving at the end
    rows = [{**row, "val_accuracy": acc, "val_loss": vl, "loss": tl} for row, acc, vl, tl in zip(
        results.read_history(overfits), [0.5, 0.7, 0.74, 0.73, 0.72], [1.0, 0.8, 0.9, 1.4, 1.8],
        [1.6, 0.9, 0.5, 0.2, 0.1])]
    files.write_csv(os.path.join(overfits, "history.csv"), rows, results.HISTORY_COLUMNS)
    found = runs.collect([str(tmp_path)])[0]
    text = table.page(runs.group_runs(found), runs.short_names([r.path for r in found]), [], [], str(tmp_path))
    assert ("What the validation curves show:\n\n"
            "- rung 0 baseline peaks at 74.00% on validation in epoch 3 and ends "
            "at 72.00%; its validation loss rises from 0.80 in epoch 2 to 1.80 while the training loss falls: "
            "it overfits from about epoch 2\n- rung 1 trick1 peaks at 51.00% on validation in epoch 5 and ends at "
            "51.00%\n") in text


def test_a_step_beyond_the_ladder_has_its_own_row_after_the_rungs_and_no_lecture_figure(tmp_path):
    out = tmp_path / "experiments"
    write_run(out, name="pretrained", test_accuracy=0.9, train_accuracy=0.95)
    write_run(out, name="trick8", test_accuracy=0.6)
    write_run(out, name="trick9", test_accuracy=0.7)
    write_run(out / "small", name="pretrained", budget="small", epochs=2)
    found = runs.collect([str(out)])[0]
    text = table.page(runs.group_runs(found), runs.short_names([r.path for r in found]), [], [], str(out))

    full, small = text.split("## The ladder: full schedule\n")[1].split("## The ladder: small budget\n")
    small, rest = small.split("Columns:\n")
    change = importlib.import_module("kcifar.experiments.pretrained").CONFIG.change
    assert [(row[0], row[2]) for row in rows_of(full)] == [
        ("8 trick8", "~93%"), ("9 trick9", "~94.5%"), ("beyond the ladder: pretrained", "")]
    assert rows_of(full)[2][1] == change and len(rows_of(full)[2]) == len(table.COLUMNS)
    # Empty in every budget, not "-": the lecture has no such step at all.
    assert [row[:3] for row in rows_of(small)] == [["beyond the ladder: pretrained", change, ""]]
    # From rung 9 to the step beyond is no step of the ladder; its runs are counted apart.
    assert "- 3 runs of 2 rungs and of pretrained (beyond the ladder), 900 training images, 3 epochs.\n" in full
    assert "- Test accuracy rises at 1 of 1 step from one rung to the next.\n" in full
    assert "Best on validation after the last epoch: pretrained, beyond the ladder (91.00%)." in full
    assert "1 run of pretrained (beyond the ladder), 900 training images, 2 epochs." in small
    assert "- **beyond the ladder**: a step after the ladder's last rung" in rest and "(`pretrained`;" in rest
    assert "### pretrained-jax-seed0\n" in rest and "(figures/pretrained-jax-seed0-curves.png)" in rest


def test_a_stopped_run_of_a_step_beyond_the_ladder_is_named_so(tmp_path):
    marker = {"name": "pretrained", "rung": 10, "epochs_done": 3, "epochs_planned": 10, "val_accuracy": 0.8,
              "reason": "time-limit", "stopped_at": "2026-01-01T00:00:00+00:00", "backend": "jax",
              "device": "cpu: x86_64 x2"}
    stopped = runs.Partial(path=str(tmp_path / "pretrained-jax-seed0"), marker=marker, history=[],
                           settings={"config": {}})
    assert rows_of(table.partial_section([stopped], str(tmp_path)))[0][:3] == [
        "beyond the ladder: pretrained", "full", "3/10"]


def test_each_ladder_folder_is_a_section_the_current_first_and_earlier_ones_named_by_folder(tmp_path):
    out = tmp_path / "experiments"
    code = {"commit": "1234567" + "0" * 33, "dirty": False}
    # The earlier ladder trained rung 4 with a lambda the code has since changed; the new one with the rung's own.
    write_run(out / "full", name="trick3", test_accuracy=0.7, code=code)
    write_run(out / "full", name="trick4", test_accuracy=0.8, config_changes={"l2": 1e-4}, code=code)
    write_run(out / "ladder2", name="trick4", test_accuracy=0.9, code=code)
    write_run(out / "ladder2", name="trick5", test_accuracy=0.9, code=code)
    found = runs.collect([str(out)])[0]
    found_sections = table.sections(runs.group_runs(found), str(out))
    assert [(s.title, s.figure("ladder")) for s in found_sections] == [
        ("The ladder: full schedule (`ladder2`)", "ladder.png"),
        ("An earlier ladder: full schedule (`full`)", "full-ladder.png")]
    text = table.page(runs.group_runs(found), runs.short_names([r.path for r in found]), [], [], str(out))
    assert text.split("\n")[4].startswith("**The current ladder** is the one in `ladder2`, trained at code 1234567.")
    earlier = text[text.index("## An earlier ladder"):]
    assert [row[1] for row in rows_of(earlier)] == [
        runs.step("trick3").CONFIG.change, "+ L2 on conv kernels (lambda 5e-6) (trained with l2=0.0001; the rung has 5e-06)"]
    # Within the earlier ladder the step from 3 to 4 counts, though rung 4's config has changed since.
    steps = rows_of(earlier[earlier.index("Step by step"):])
    assert [row[4] for row in steps] == ["-", "+10.00 pp"]


def test_a_study_folder_is_no_part_of_the_report(tmp_path):
    out = tmp_path / "experiments"
    write_run(out / "full", name="trick6")
    write_run(out / "study" / "crop" / "pad4", name="trick6", config_changes={"translate": 4})
    files.write_json(out / "study" / "plan.json", {"rung": "trick6"})
    assert [os.path.relpath(p, out) for p in runs.find_runs(str(out))] == [os.path.join("full", "trick6-jax-seed0")]


def test_a_partial_run_that_a_complete_one_superseded_is_counted_not_listed(tmp_path):
    write_run(tmp_path, name="trick2", backend="tensorflow")
    marker = {"name": "trick2", "rung": 2, "epochs_done": 1, "epochs_planned": 50, "val_accuracy": 0.4,
              "reason": "time-limit", "stopped_at": "2026-01-01T00:00:00+00:00", "backend": "torch",
              "device": "cuda: a GPU"}
    old = runs.Partial(path=str(tmp_path / "trick2-torch-seed0"), marker=marker, history=[],
                       settings={"config": {}, "seed": 0})
    other_seed = runs.Partial(path=str(tmp_path / "trick2-torch-seed1"), marker=marker, history=[],
                              settings={"config": {}, "seed": 1})
    done = runs.collect([str(tmp_path)])[0]
    text = table.partial_section([old, other_seed], str(tmp_path), done)
    assert "1 partial run of a rung, budget and seed that a complete run has since superseded" in text
    assert "`trick2-torch-seed0`" in text
    assert [row[-1] for row in rows_of(text)] == ["[trick2-torch-seed1](trick2-torch-seed1/)"]
