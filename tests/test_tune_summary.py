"""kcifar.tune.summary: the table, the plot and the best configuration, from
trial files written here by hand (no training)."""

import csv
import json
import os

import pytest

from kcifar import cli
from kcifar.experiments import rung
from kcifar.tune import project, summary

SPACES = {
    "trick4": [{"name": "dropout", "low": 0.0, "high": 0.6, "sampling": "linear"},
               {"name": "l2", "low": 1e-6, "high": 1e-2, "sampling": "log"}],
    "trick3": [{"name": "dropout", "low": 0.0, "high": 0.6, "sampling": "linear"}],
}


def write_project(folder, trials, rung_name="trick4"):
    """trials: (id, status, score, values) tuples; completed ones get a result file."""
    os.makedirs(folder)
    settings = {
        "rung": rung_name, "config": rung(rung_name).CONFIG.replace(epochs=2, batch_size=64).to_dict(),
        "tuner": "random", "epochs": 2, "seed": 7, "backend": "jax",
        "space": SPACES[rung_name], "data": {"description": "image-folder at /tiny", "train": 108, "val": 12},
    }
    with open(os.path.join(folder, project.SETTINGS_FILE), "w") as f:
        json.dump({"format": project.FORMAT, "keras_tuner": project.keras_tuner_version(), "settings": settings}, f)
    for trial_id, status, score, values in trials:
        trial_dir = os.path.join(folder, f"trial_{trial_id}")
        os.makedirs(trial_dir)
        state = {"trial_id": trial_id, "status": status, "score": score,
                 "hyperparameters": {"values": values},
                 "message": None if status == "COMPLETED" else "Traceback ...\nRunError: loss became NaN"}
        with open(os.path.join(trial_dir, "trial.json"), "w") as f:
            json.dump(state, f)
        if status == "COMPLETED":
            result = {"trial_id": trial_id, "tuner_id": "tuner0", "seed": 100 + int(trial_id),
                      "metrics": {"val_accuracy": score, "accuracy": 0.5}, "best_epoch": 2,
                      "last_val_accuracy": score, "epochs": values.get("tuner/epochs", 2), "trained_epochs": 2,
                      "seconds": 1.5, "rss_mb_start": 900.0, "rss_mb_end": 910.0, "device": "cpu: test"}
            with open(os.path.join(trial_dir, project.TRIAL_FILE), "w") as f:
                json.dump(result, f)


TRIALS = [
    ("0", "COMPLETED", 0.50, {"dropout": 0.1, "l2": 1e-4}),
    ("1", "FAILED", None, {"dropout": 0.5, "l2": 9e-3}),
    ("2", "COMPLETED", 0.75, {"dropout": 0.3, "l2": 2e-5}),
    ("3", "COMPLETED", 0.75, {"dropout": 0.2, "l2": 5e-6}),  # a tie: the earlier trial wins
    ("4", "RUNNING", None, {"dropout": 0.4, "l2": 1e-3}),
]


def test_rows_cover_every_trial(tmp_path):
    folder = str(tmp_path / "p")
    write_project(folder, TRIALS)
    rows = summary.collect(folder)
    assert [(r["trial"], r["status"], r["val_accuracy"]) for r in rows] == [
        ("0", "COMPLETED", 0.5), ("1", "FAILED", None), ("2", "COMPLETED", 0.75),
        ("3", "COMPLETED", 0.75), ("4", "RUNNING", None),
    ]
    assert [r["number"] for r in rows] == [1, 2, 3, 4, 5]  # keras-tuner's "Running Trial #N"
    assert rows[1]["message"] == "RunError: loss became NaN"
    assert rows[0]["seed"] == 100 and rows[0]["seconds"] == 1.5 and rows[0]["epochs"] == 2
    assert summary.best_row(rows)["trial"] == "2"


def test_files_written_and_best_config_accepted_by_the_experiment_cli(tmp_path):
    folder = str(tmp_path / "p")
    write_project(folder, TRIALS)
    result = summary.write(folder)
    assert result["counts"] == {"COMPLETED": 3, "FAILED": 1, "RUNNING": 1}
    with open(os.path.join(folder, "summary.csv")) as f:
        table = list(csv.DictReader(f))
    assert [(r["number"], r["trial"]) for r in table] == [("1", "0"), ("2", "1"), ("3", "2"), ("4", "3"), ("5", "4")]
    assert tuple(table[0]) == summary.COLUMNS
    saved = json.load(open(os.path.join(folder, "summary.json")))
    assert saved["best"]["trial"] == "2" and len(saved["trials"]) == 5
    assert saved["backend"] == "jax" and saved["device"] == "cpu: test" and saved["seed"] == 7
    with open(os.path.join(folder, "summary.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"

    best_path = os.path.join(folder, "best_config.json")
    best = json.load(open(best_path))
    # The search's batch size too: its values were chosen at it.
    assert best["rung"] == "trick4" and best["changes"] == {"dropout": 0.3, "l2": 2e-5, "batch_size": 64}
    assert (best["trial"], best["trial_number"]) == ("2", 3)
    args = cli.parser("trick4", "").parse_args(["--config", best_path])
    config = cli.configure(rung("trick4").CONFIG, args)
    assert (config.dropout, config.l2, config.batch_size) == (0.3, 2e-5, 64)
    assert config.epochs == rung("trick4").CONFIG.epochs  # retrains with the rung's own epochs


def test_dropout_only_rung(tmp_path):
    folder = str(tmp_path / "p")
    write_project(folder, [("0", "COMPLETED", 0.4, {"dropout": 0.25}), ("1", "COMPLETED", 0.3, {"dropout": 0.5})],
                  rung_name="trick3")
    summary.write(folder)
    best = json.load(open(os.path.join(folder, "best_config.json")))
    assert best == {**best, "rung": "trick3", "changes": {"dropout": 0.25, "batch_size": 64}}
    args = cli.parser("trick3", "").parse_args(["--config", os.path.join(folder, "best_config.json")])
    assert cli.configure(rung("trick3").CONFIG, args).dropout == 0.25


def test_no_completed_trial_writes_no_best_config(tmp_path):
    folder = str(tmp_path / "p")
    write_project(folder, [("0", "RUNNING", None, {"dropout": 0.2, "l2": 1e-4})])
    result = summary.write(folder)
    assert result["best"] is None
    assert not os.path.exists(os.path.join(folder, "best_config.json"))
    assert os.path.exists(os.path.join(folder, "summary.png"))
    assert summary.format_best(result) == "no completed trial yet"


@pytest.mark.parametrize("argv, status, output", [
    (["{folder}"], 0, "best: trial 3 (trial_2) val_accuracy 0.7500"),
    (["{tmp}"], 2, "not a kcifar.tune project"),
    ([], 2, "usage"),
])
def test_command_line(tmp_path, capsys, argv, status, output):
    folder = str(tmp_path / "p")
    write_project(folder, TRIALS)
    assert summary.main([a.format(folder=folder, tmp=str(tmp_path)) for a in argv]) == status
    captured = capsys.readouterr()
    assert output in (captured.out if status == 0 else captured.err)
    if status:
        assert len(captured.err.strip().splitlines()) == 1


@pytest.mark.parametrize("trial_id, number, label", [
    ("0", 1, "trial 1 (trial_0)"), ("09", 10, "trial 10 (trial_09)"), ("0003", 4, "trial 4 (trial_0003)"),
    ("abc", None, "trial_abc"),
])
def test_trials_are_numbered_from_one_as_keras_tuner_shows_them(trial_id, number, label):
    assert project.trial_number(trial_id) == number
    assert project.trial_label(trial_id) == label


def test_a_summary_written_before_the_numbers_reads_with_them(tmp_path):
    # As the committed tuner_runs/*/summary.json: rows with the id alone.
    rows = [{"trial": "0", "status": "COMPLETED", "val_accuracy": 0.4, "dropout": 0.09, "l2": 3.8e-5, "epochs": 3},
            {"trial": "1", "status": "COMPLETED", "val_accuracy": 0.3, "dropout": 0.2, "l2": 3e-6, "epochs": 3}]
    old = {"format": 1, "backend": "tensorflow", "device": "cpu: x86_64 x2", "seed": 0, "trials": rows,
           "best": rows[0]}
    assert summary.format_best(old).startswith("best: trial 1 (trial_0) val_accuracy 0.4000 (dropout 0.09, ")
