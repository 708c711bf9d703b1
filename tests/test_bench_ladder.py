import glob
import json
import math
import os

import keras
import pytest
from helpers import subprocess_env

from kcifar.ladder import parallel
from kcifar.bench import __main__ as bench
from kcifar.bench import ladder, record
from kcifar.experiments import RUNGS, rung

FIGURES = {"startup_seconds": 10.0, "first_step_seconds": 5.0, "step_seconds": 0.5,
           "validation_seconds_per_image": 0.001}


def test_projection_adds_start_up_first_step_epochs_and_test():
    splits = {"train": 1000, "val": 100, "test": 200}
    # 10 steps per epoch: 2 x (10 x 0.5 + (100 validation + 1000 clean training) x 0.001)
    # + 200 x 0.001 after 10 + 5.
    assert ladder.projected_seconds(FIGURES, 2, splits, 100) == pytest.approx(27.4)
    # A last, smaller batch is a step too: 11 steps per epoch.
    assert ladder.projected_seconds(FIGURES, 2, {**splits, "train": 1001}, 100) == pytest.approx(28.402)
    slower = {**FIGURES, "step_seconds": 1.0}
    assert ladder.projected_seconds(slower, 2, splits, 100) == pytest.approx(37.4)
    # The clean training accuracy measures 5000 images of a larger split.
    big = {"train": 45000, "val": 5000, "test": 10000}
    assert ladder.projected_seconds(FIGURES, 1, big, 100) == pytest.approx(15 + 450 * 0.5 + 10 + 10)


def test_a_step_in_phases_is_projected_phase_by_phase():
    splits = {"train": 1000, "val": 100, "test": 200}
    phases = [{"epochs": 2, "first_step_seconds": 5.0, "step_seconds": 0.5},
              {"epochs": 1, "first_step_seconds": 3.0, "step_seconds": 1.0}]
    # 10 + 0.2 test; phase 1: 5 + 2 x (5 + 1.1); phase 2: 3 + 1 x (10 + 1.1).
    assert ladder.projected_seconds({**FIGURES, "phases": phases}, 3, splits, 100) == pytest.approx(41.5)
    # One phase is a rung's projection.
    assert ladder.projected_seconds({**FIGURES, "phases": phases[:1]}, 2, splits, 100) == pytest.approx(
        ladder.projected_seconds(FIGURES, 2, splits, 100))


def test_steps_beyond_the_ladder_are_measured_when_named_and_kept_out_of_its_projection():
    assert ladder.parse_rungs(None) == list(RUNGS)
    assert ladder.parse_rungs("pretrained,trick1") == ["trick1", "pretrained"]
    splits = {"train": 1000, "val": 100, "test": 200}
    copy = {**FIGURES, "images_per_second": 8.0, "forward_flops": 100, "phases": [
        {"epochs": 2, "first_step_seconds": 5.0, "step_seconds": 0.5, "step_flops": 106},
        {"epochs": 8, "first_step_seconds": 3.0, "step_seconds": 1.0, "step_flops": 250}]}
    entry = ladder.rung_entry("pretrained", [copy, {**copy, "phases": [
        {**copy["phases"][0], "step_seconds": 0.7}, {**copy["phases"][1], "step_seconds": 1.2}]}], splits, 100)
    assert entry["training_flops"] == (2 * 106 + 8 * 250) * 1000  # counted by the children, not from the config
    assert [p["step_seconds"] for p in entry["phases"]] == [0.6, 1.1]  # the copies' medians
    assert entry["epochs"] == 2 + 8
    rungs = {"trick1": ladder.rung_entry("trick1", [{**FIGURES, "images_per_second": 8.0}], splits, 100)}
    lad = ladder.ladder_entry(rungs, 1, splits)
    assert lad["order"] == ["trick1"] and lad["sum_seconds"] == rungs["trick1"]["projected_seconds"]
    results = {"settings": {"jobs": 1, "precision": "float32", "windows": 1, "steps": 1},
               "machine": {"cpu": "cpu", "cores": 2, "load_average_at_start": [0.0]}, "data": "synthetic",
               "splits": splits, "backends": {"torch": {
                   "rungs": {}, "beyond": {"pretrained": entry}, "ladder": None,
                   "augmentation_images_per_second": {"rung": "trick5", "128": 1.0}}}}
    text = ladder.table(results)
    assert "torch      pretrained" in text and "the ladder with" not in text
    assert ("torch: pretrained, beyond the ladder: 0 MFLOP forward an image; phase 1: 2 epochs of 600 ms steps"
            in text)


# The phases are the recipe's and the timing kcifar's own: one backend, and a
# backbone a third the size at the least input size, so it takes seconds.
@pytest.mark.skipif(keras.backend.backend() != "torch", reason="backend-independent logic, run on torch")
def test_the_worker_times_each_phase_of_the_pretrained_step(monkeypatch):
    from kcifar import pretrained
    from kcifar.bench import flops, ladder_worker
    from kcifar.experiments import pretrained as module

    monkeypatch.setattr(pretrained, "BACKBONE", keras.applications.MobileNetV3Small)
    monkeypatch.setattr(module, "CONFIG", module.CONFIG.replace(image_size=32))
    spec = {"rung": "pretrained", "batch_size": 4, "precision": "float32", "seed": 0, "data": None, "steps": 1,
            "windows": 1, "warmup": 0, "slot": 0}
    figures = ladder_worker.rung_figures(spec, started=0.0)
    head, tail = figures["phases"]
    assert (head["epochs"], tail["epochs"]) == (2, 8)  # the step's 10 epochs: 2 for the head, then the top
    assert head["first_step_seconds"] == figures["first_step_seconds"] > 0 and tail["step_seconds"] > 0
    backbone = pretrained.build_backbone(module.CONFIG, None)
    forward = flops.model_flops(backbone)[0] + flops.dense_flops(backbone.output.shape[-1], 10)
    assert figures["forward_flops"] == forward
    assert head["step_flops"] == forward + 2 * flops.dense_flops(backbone.output.shape[-1], 10)
    assert forward + 2 * flops.dense_flops(backbone.output.shape[-1], 10) < tail["step_flops"] < 3 * forward


def test_list_scheduling_puts_each_rung_in_the_slot_that_frees_first():
    planned = ladder.schedule({"a": 3, "b": 3, "c": 2, "d": 2, "e": 2}, jobs=2)
    assert planned["slots"] == [["a", "c", "e"], ["b", "d"]]
    assert planned["starts"] == {"a": 0, "b": 0, "c": 3, "d": 3, "e": 5}
    assert planned["makespan_seconds"] == 7  # list scheduling's, where 6 was possible (3+3, 2+2+2)
    assert ladder.schedule({"a": 5, "b": 4, "c": 3, "d": 3}, jobs=2)["makespan_seconds"] == 8
    assert ladder.schedule({"a": 5, "b": 4, "c": 3}, jobs=1)["makespan_seconds"] == 12  # the sum
    assert ladder.schedule({"a": 5, "b": 4}, jobs=3) == {"slots": [["a"], ["b"], []], "starts": {"a": 0, "b": 0},
                                                        "makespan_seconds": 5}


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--ladder", "--jobs", "0"], "--jobs must be at least 1"),
        (["--jobs", "2"], "--jobs applies to --ladder only"),
        (["--rungs", "trick1"], "--rungs applies to --ladder only"),
        (["--ladder", "--rungs", "trick10"], "--rungs must be a comma-separated list"),
        (["--ladder", "--rung", "trick1"], "--rung does not apply to --ladder"),
        (["--ladder", "--full"], "--full does not apply to --ladder"),
        (["--ladder", "--threads", "1"], "--threads does not apply to --ladder"),
        (["--ladder", "--steps", "400"], "at most 45000 images"),
        (["--ladder", "--batch-size", "0"], "--batch-size must be at least 1"),
    ],
)
def test_bad_ladder_flags_give_one_line_and_exit_2(argv, words, capsys, tmp_path):
    with pytest.raises(SystemExit, match="^2$"):
        bench.main([*argv, "--out", str(tmp_path)])
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("python -m kcifar.bench: error: ") and words in line and not os.listdir(tmp_path)


@pytest.mark.slow  # three processes
def test_ladder_runs_end_to_end_and_writes_the_results_file(tmp_path, tmp_path_factory, capsys, monkeypatch):
    """Two copies at once of a rung with augmentation, in children on
    synthetic images (the schedule of several rungs is tested above)."""
    for name, value in subprocess_env(tmp_path_factory).items():  # the children's: JAX compiles less
        monkeypatch.setenv(name, value)
    backend = keras.backend.backend()
    argv = ["--ladder", "--backends", backend, "--rungs", "trick5", "--jobs", "2", "--batch-size", "4",
            "--steps", "1", "--out", str(tmp_path)]
    bench.main(argv)
    (path,) = glob.glob(str(tmp_path / "ladder-j2-b4-float32-*.json"))
    with open(path) as f:
        text = f.read()
    assert str(tmp_path_factory.getbasetemp()) not in text  # nor the JAX cache of the children's environment
    results = json.loads(text)
    assert results["mode"] == "ladder" and results["command"].endswith(f"--out {tmp_path.name}")
    assert results["settings"]["data"] is None and results["data"].startswith("synthetic")
    assert results["splits"] == ladder.FULL_SPLITS == {"train": 45000, "val": 5000, "test": 10000}
    mine = results["backends"][backend]
    assert mine["backend"] == backend and list(mine["rungs"]) == ["trick5"]
    entry = mine["rungs"]["trick5"]
    assert entry["steps_per_epoch"] == 11250 and entry["epochs"] == rung("trick5").CONFIG.epochs
    assert [c["slot"] for c in entry["copies"]] == [0, 1]
    for figures in [entry, *entry["copies"]]:
        for key in ladder.FIGURES:
            assert math.isfinite(figures[key]) and figures[key] > 0, key
    for copy in entry["copies"]:
        assert copy["projected_seconds"] == pytest.approx(
            ladder.projected_seconds(copy, entry["epochs"], results["splits"], 4), abs=0.1)
        assert copy["validation_images"] == 4
        assert copy["cpus"] == len(parallel.cpu_share(2, copy["slot"]))  # pinned to its share
    assert entry["projected_minutes"] == round(entry["projected_seconds"] / 60, 1)
    assert mine["ladder"] == {"jobs": 2, "order": ["trick5"], "slots": [["trick5"], []],
                              "starts_seconds": {"trick5": 0.0}, "makespan_seconds": entry["projected_seconds"],
                              "makespan_minutes": entry["projected_minutes"], "sum_seconds": entry["projected_seconds"]}
    assert set(mine["augmentation_images_per_second"]) == {"rung", "128", "512"}
    out = capsys.readouterr().out
    assert f"wrote {path}" in out and f"{backend}: the ladder with --jobs 2:" in out


def test_the_recorded_environment_names_folders_by_their_name(monkeypatch):
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", os.path.join(os.sep, "any", "where", "jax-cache"))
    monkeypatch.setenv("XLA_FLAGS", f"--xla_backend_optimization_level=0 --xla_dump_to={os.sep}d{os.sep}dump")
    environment = record.machine()["environment"]
    assert environment["JAX_COMPILATION_CACHE_DIR"] == "jax-cache"
    assert environment["XLA_FLAGS"] == "--xla_backend_optimization_level=0 --xla_dump_to=dump"
