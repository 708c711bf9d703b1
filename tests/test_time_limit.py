"""--time-limit: the estimate that stops a run, the marker it leaves, and
the resume that finishes it."""

import os
import subprocess
import sys

import keras
import pytest
from helpers import quiet, subprocess_env

from kcifar import files
from kcifar.config import Config
from kcifar.results import PARTIAL_FILE
from kcifar.run_folder import Stopped, TimeLimit
from kcifar.train import train

SMALL = Config().replace(name="small", widths=(4, 4, 4, 4), dense_units=8, epochs=3, batch_size=54)


def row(seconds, train_seconds):
    return {"seconds": seconds, "train_seconds": train_seconds}


class FakeModel:
    stop_training = False


@pytest.mark.parametrize("history, done_before, left, stops", [
    # This process timed 30 s (compiling) then 10 s: the next epoch is 10 s, the test pass 2 x 4 s.
    ([row(30, 26), row(10, 6)], 0, 17.9, True),
    ([row(30, 26), row(10, 6)], 0, 18.1, False),
    # One epoch timed: it stands for the next (compile time and all).
    ([row(30, 26)], 0, 37.9, True),
    ([row(30, 26)], 0, 38.1, False),
    # Epochs of an earlier process (resumed) are not this machine's timing.
    ([row(1, 0.5), row(1, 0.5), row(30, 26)], 2, 37.9, True),
])
def test_the_next_epoch_and_the_test_pass_must_fit(history, done_before, left, stops, monkeypatch):
    monkeypatch.setattr("kcifar.run_folder.time.time", lambda: 1000.0)
    live = history[:done_before]  # the Recorder's list, as the run starts
    limit = TimeLimit(1000.0 + left, live, test_per_val=2.0, epochs=50)
    live.extend(history[done_before:])  # the epochs this process then trains
    limit.set_model(FakeModel())
    limit.on_epoch_end(len(history) - 1)
    assert limit.stopped is stops and limit.model.stop_training is stops


def test_no_stop_after_the_last_epoch(monkeypatch):
    monkeypatch.setattr("kcifar.run_folder.time.time", lambda: 1000.0)
    live = []
    limit = TimeLimit(1000.0, live, test_per_val=2.0, epochs=1)
    live.append(row(30, 26))
    limit.set_model(FakeModel())
    limit.on_epoch_end(0)
    assert not limit.stopped


def test_a_stopped_run_leaves_its_marker_and_a_resume_finishes_it(tiny_data, tmp_path):
    run_dir = str(tmp_path / "run")
    with pytest.raises(Stopped, match=r"^stopped by --time-limit after 1 of 3 epochs; --resume continues$"):
        train(SMALL, tiny_data, run_dir, quiet(time_limit=1e-6))  # the first epoch always runs
    assert sorted(os.listdir(run_dir)) == ["checkpoint.npz", "history.csv", PARTIAL_FILE, "settings.json"]
    marker = files.read_json(os.path.join(run_dir, PARTIAL_FILE))
    assert (marker["epochs_done"], marker["epochs_planned"], marker["reason"]) == (1, 3, "time-limit")
    assert marker["val_accuracy"] == float(files.read_csv(os.path.join(run_dir, "history.csv"))[0]["val_accuracy"])
    assert marker["backend"] == keras.backend.backend() and marker["time_limit_seconds"] == 1e-6
    assert "time_limit" not in str(files.read_json(os.path.join(run_dir, "settings.json")))

    metrics = train(SMALL, tiny_data, run_dir, quiet(resume=True, time_limit=3600))
    assert metrics["epochs"] == 3
    assert sorted(os.listdir(run_dir)) == ["history.csv", "metrics.json", "model.keras", "settings.json"]


@pytest.mark.parametrize("limit_train, section", [(None, "full"), (60, "custom")])
def test_a_stopped_run_on_a_training_subset_is_reported_as_a_custom_run(tiny_data, tmp_path, limit_train, section):
    from kcifar.experiments import baseline
    from kcifar.report import runs

    data = tiny_data if limit_train is None else tiny_data.subset(limit_train)
    config = baseline.CONFIG.replace(widths=(4, 4, 4, 4), dense_units=8, batch_size=54)  # its own 50 epochs
    with pytest.raises(Stopped):
        train(config, data, str(tmp_path / "run"), quiet(time_limit=1e-6))
    _, (stopped,), _ = runs.collect([str(tmp_path)])
    assert stopped.budget == section  # beside the lecture's figures only when it trains on the whole split


def test_the_rung_command_stops_exits_0_and_resumes_under_another_limit(tiny_dir, tmp_path, tmp_path_factory):
    env = subprocess_env(tmp_path_factory)
    command = [sys.executable, "-m", "kcifar.experiments.baseline", "--data", tiny_dir, "--epochs", "2",
               "--batch-size", "108", "--out", str(tmp_path), "--quiet", "--config", str(tmp_path / "small.json")]
    files.write_json(tmp_path / "small.json", {"widths": [4, 4, 4, 4], "dense_units": 8})
    first = subprocess.run(command + ["--time-limit", "0.001"], capture_output=True, text=True, env=env, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.stdout.strip().splitlines()[-1] == (
        "baseline: stopped by --time-limit after 1 of 2 epochs; --resume continues")
    run_dir = tmp_path / f"baseline-{keras.backend.backend()}-seed0"
    assert (run_dir / PARTIAL_FILE).exists() and not (run_dir / "metrics.json").exists()

    again = subprocess.run(command + ["--resume", "--time-limit", "3600"], capture_output=True, text=True,
                           env=env, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert files.read_json(run_dir / "metrics.json")["epochs"] == 2 and not (run_dir / PARTIAL_FILE).exists()


def test_a_bad_limit_is_one_line(tiny_dir, tmp_path, capsys):
    from kcifar.experiments import baseline

    with pytest.raises(SystemExit) as stop:
        baseline.run_rung(baseline.CONFIG, ["--data", tiny_dir, "--out", str(tmp_path), "--time-limit", "-3"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "python -m kcifar.experiments.baseline: error: --time-limit must be a positive number of seconds. "
        "Received: --time-limit -3"]
    assert os.listdir(tmp_path) == []
