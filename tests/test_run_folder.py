"""The run folder: a resume ends where an uninterrupted run would, a NaN loss
keeps the last good checkpoint, and the folder's guards."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from helpers import SMALL, interrupt_after_first_epoch, quiet, run_history, without_timing

from kcifar.run_folder import Recorder, RunError, changed_settings
from kcifar.settings import RunSettings
from kcifar.train import train


def test_resumed_run_ends_exactly_like_an_uninterrupted_one(tiny_data, tmp_path, monkeypatch):
    whole = train(SMALL, tiny_data, str(tmp_path / "whole"), quiet(seed=3))
    with monkeypatch.context() as m:
        interrupt_after_first_epoch(m)
        with pytest.raises(KeyboardInterrupt):
            train(SMALL, tiny_data, str(tmp_path / "cut"), quiet(seed=3))
    assert len(run_history(tmp_path / "cut")) == 1
    resumed = train(SMALL, tiny_data, str(tmp_path / "cut"), quiet(seed=3, resume=True))
    assert without_timing(run_history(tmp_path / "cut")) == without_timing(run_history(tmp_path / "whole"))
    assert "clean_train_accuracy" in run_history(tmp_path / "cut")[0]
    for key in ("test_accuracy", "test_loss", "train_accuracy", "val_accuracy", "clean_train_accuracy",
                "confusion_matrix"):
        assert resumed[key] == whole[key], key


def test_killed_run_resumes_to_one_continuous_history(tiny_dir, tmp_path):
    out = tmp_path / "runs"
    command = [sys.executable, "-m", "kcifar.experiments.trick1", "--data", tiny_dir, "--epochs", "5",
               "--batch-size", "16", "--out", str(out), "--quiet"]
    env = dict(os.environ, KCIFAR_CACHE=str(tmp_path / "cache"))
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run_dir = out / f"trick1-{keras.backend.backend()}-seed0"
    # history.csv is written after the checkpoint, so once it is there both are
    # (waiting for the checkpoint alone could kill between the two writes).
    deadline = time.time() + 300
    while not (run_dir / "history.csv").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "metrics.json").exists(), "the run ended before it could be killed"
    assert 1 <= len(run_history(run_dir)) < 5
    result = subprocess.run(command + ["--resume"], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"resuming {run_dir} after epoch" in result.stdout
    assert [row["epoch"] for row in run_history(run_dir)] == list(range(1, 6))
    assert not (run_dir / "checkpoint.npz").exists() and (run_dir / "metrics.json").exists()


def on_epoch_begin_also(monkeypatch, action):
    """Runs action(recorder, epoch from 1) after Recorder.on_epoch_begin."""
    original = Recorder.on_epoch_begin

    def on_epoch_begin(self, index, logs=None):
        original(self, index, logs)
        action(self, index + 1)

    monkeypatch.setattr(Recorder, "on_epoch_begin", on_epoch_begin)


def poison_weights(recorder, epoch):
    """Every trainable weight NaN as epoch 2 begins: its loss is NaN on every
    backend (the L2 penalty alone is)."""
    if epoch == 2:
        for v in recorder.model.trainable_variables:
            v.assign(np.full(v.shape, np.nan, dtype=v.dtype))


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny_data, tmp_path, monkeypatch, capsys):
    two = SMALL.replace(epochs=2)
    run_dir = tmp_path / "nan"
    with monkeypatch.context() as m:
        on_epoch_begin_also(m, poison_weights)
        with pytest.raises(RunError, match=r"NaN or infinite in epoch 2; the last good checkpoint \(epoch 1\)"):
            train(two, tiny_data, str(run_dir), quiet())
    assert not (run_dir / "metrics.json").exists()
    with np.load(run_dir / "checkpoint.npz") as f:
        saved = {k: f[k] for k in f.files}
    assert [row["epoch"] for row in json.loads(str(saved.pop("history")))] == [1]
    assert int(saved.pop("phase")) == 1  # a rung trains in one phase
    assert all(np.isfinite(a).all() for a in saved.values())  # epoch 1's state, not the NaN one
    best = {k: saved.pop(k) for k in list(saved) if k.startswith("best_")}
    assert int(best["best_epoch"]) == 1  # the best epoch so far, the only one
    first = run_history(run_dir)
    assert [row["epoch"] for row in first] == [1]

    starts = []
    with monkeypatch.context() as m:
        on_epoch_begin_also(m, lambda recorder, epoch: starts.append((epoch, [
            keras.ops.convert_to_numpy(v) for v in recorder.model.variables + recorder.model.optimizer.variables
        ])))
        capsys.readouterr()
        metrics = train(two, tiny_data, str(run_dir), quiet(resume=True))
    assert f"resuming {run_dir} after epoch 1 of 2" in capsys.readouterr().out
    # Epoch 2 starts from the checkpoint: model and optimizer state, step count included.
    ((epoch, state),) = starts
    assert epoch == 2 and len(state) == len(saved)
    model_count = sum(k.startswith("model_") for k in saved)
    for i, a in enumerate(state):
        want = saved[f"model_{i}"] if i < model_count else saved[f"opt_{i - model_count}"]
        np.testing.assert_array_equal(a, want, err_msg=f"variable {i}")
    history = run_history(run_dir)
    assert history[:1] == first and [row["epoch"] for row in history] == [1, 2]
    assert metrics["epochs"] == 2 and not (run_dir / "checkpoint.npz").exists()


def test_a_nan_loss_ends_the_progress_bars_line_before_its_error_is_shown(tiny_data, tmp_path, monkeypatch,
                                                                          capsys):
    with monkeypatch.context() as m:
        on_epoch_begin_also(m, poison_weights)
        with pytest.raises(RunError, match="NaN or infinite in epoch 2"):
            train(SMALL.replace(epochs=2), tiny_data, str(tmp_path / "nan"), RunSettings(verbose=1))
    out = capsys.readouterr().out
    assert "━" in out.splitlines()[-1] and out.endswith("\n")  # epoch 2's bar, its line ended


@pytest.mark.parametrize("setup, flags, message", [
    ("complete", {}, r"already holds a complete run; run the same command with --resume to keep it"),
    ("other-settings", {"resume": True}, "was started with other settings"),
])
def test_run_folder_guards(tiny_data, tmp_path, setup, flags, message):
    one = SMALL.replace(epochs=1)
    run_dir = str(tmp_path / "run")
    train(one, tiny_data, run_dir, quiet())
    if setup == "other-settings":
        os.remove(os.path.join(run_dir, "metrics.json"))
        one = one.replace(dropout=0.5)
    with pytest.raises(RunError, match=message):
        train(one, tiny_data, run_dir, quiet(**flags))


def test_overwrite_starts_afresh(tiny_data, tmp_path):
    run_dir = str(tmp_path / "run")
    train(SMALL.replace(epochs=1), tiny_data, run_dir, quiet())
    metrics = train(SMALL.replace(epochs=2), tiny_data, run_dir, quiet(overwrite=True))
    assert metrics["epochs"] == 2 and len(run_history(run_dir)) == 2


def test_unwritable_run_folder(tiny_data, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(RunError, match="cannot write to run folder"):
        train(SMALL, tiny_data, str(blocker / "run"), quiet())


def test_resume_accepts_settings_written_before_budgets_and_code_versions(tiny_data):
    now = {"config": SMALL.to_dict(), "seed": 0, "precision": "float32", "budget": "full",
           "data": {"source": "cifar", "checksum": "abc", "train": 108, "val": 12, "notes": []},
           "code": {"commit": "1" * 40, "dirty": False}}
    old = {"config": SMALL.to_dict(), "seed": 0, "precision": "float32",
           "data": {"description": "image-folder at /somewhere/cifar, sha256:abc", "train": 108, "val": 12}}
    assert changed_settings(old, now) == []
    assert changed_settings({**now, "code": {"commit": "2" * 40, "dirty": True}}, now) == []
    assert changed_settings({**old, "data": {**old["data"], "train": 50}}, now) == ["data"]
    before_notes = {**now, "data": {k: v for k, v in now["data"].items() if k != "notes"}}
    assert changed_settings(before_notes, now) == []
    assert changed_settings({**before_notes, "data": {**before_notes["data"], "checksum": "abd"}}, now) == ["data"]
    assert changed_settings({**now, "data": {**now["data"], "notes": ["custom set: ..."]}}, now) == ["data"]
    assert changed_settings({**now, "budget": "small"}, now) == ["budget"]
    # A custom run recorded its budget as full before custom was recorded; not the other way round.
    custom = {**now, "budget": "custom"}
    assert changed_settings(now, custom) == changed_settings(old, custom) == []
    assert changed_settings(custom, now) == ["budget"]
    assert changed_settings({**old, "config": SMALL.replace(dropout=0.5).to_dict()}, now) == ["config"]


def fake_validation(monkeypatch, accuracies):
    """Makes the run see these validation accuracies, epoch by epoch, so
    that its best epoch is known beforehand."""
    original = Recorder.on_epoch_end

    def on_epoch_end(self, epoch, logs=None):
        logs["val_accuracy"] = accuracies[epoch]
        original(self, epoch, logs)

    monkeypatch.setattr(Recorder, "on_epoch_end", on_epoch_end)


def test_the_best_validation_epochs_weights_give_its_recorded_test_figure(tiny_data, tmp_path, monkeypatch):
    # Epoch 2 of 3 is the best on validation (ties keep the earlier epoch):
    # its weights are those that a run of 2 epochs ends with.
    with monkeypatch.context() as m:
        fake_validation(m, [0.3, 0.9, 0.9])
        whole = train(SMALL, tiny_data, str(tmp_path / "whole"), quiet(seed=3))
    two = train(SMALL.replace(epochs=2), tiny_data, str(tmp_path / "two"), quiet(seed=3))
    assert whole["best_epoch"] == 2 and whole["best_val_accuracy"] == 0.9
    assert whole["best_test_accuracy"] == two["test_accuracy"]
    # The last epoch's figure and the saved model are still the last epoch's.
    plain = train(SMALL, tiny_data, str(tmp_path / "plain"), quiet(seed=3))
    assert whole["test_accuracy"] == plain["test_accuracy"]
    saved = keras.saving.load_model(tmp_path / "whole" / "model.keras")
    probs = saved.predict(tiny_data.x_test, verbose=0)
    assert float((probs.argmax(axis=1) == tiny_data.y_test).mean()) == whole["test_accuracy"]


def test_the_best_epoch_being_the_last_reads_the_last_figure(tiny_data, tmp_path, monkeypatch):
    with monkeypatch.context() as m:
        fake_validation(m, [0.3, 0.5, 0.9])
        metrics = train(SMALL, tiny_data, str(tmp_path / "run"), quiet(seed=3))
    assert metrics["best_epoch"] == 3 and metrics["best_test_accuracy"] == metrics["test_accuracy"]


def test_a_resume_keeps_the_best_epochs_weights(tiny_data, tmp_path, monkeypatch):
    # The best epoch is the first, before the interruption: only the checkpoint still holds its weights.
    with monkeypatch.context() as m:
        fake_validation(m, [0.9, 0.3, 0.5])
        whole = train(SMALL, tiny_data, str(tmp_path / "whole"), quiet(seed=3))
        interrupt_after_first_epoch(m)
        with pytest.raises(KeyboardInterrupt):
            train(SMALL, tiny_data, str(tmp_path / "cut"), quiet(seed=3))
    with monkeypatch.context() as m:
        fake_validation(m, [0.9, 0.3, 0.5])
        resumed = train(SMALL, tiny_data, str(tmp_path / "cut"), quiet(seed=3, resume=True))
    assert resumed["best_epoch"] == whole["best_epoch"] == 1
    assert resumed["best_test_accuracy"] == whole["best_test_accuracy"]
    assert resumed["test_accuracy"] == whole["test_accuracy"]


def test_a_checkpoint_from_before_the_best_epoch_was_kept_leaves_its_fields_empty(tiny_data, tmp_path, monkeypatch):
    with monkeypatch.context() as m:
        interrupt_after_first_epoch(m)
        with pytest.raises(KeyboardInterrupt):
            train(SMALL, tiny_data, str(tmp_path / "old"), quiet(seed=3))
    path = tmp_path / "old" / "checkpoint.npz"
    with np.load(path) as f:
        older = {k: f[k] for k in f.files if not k.startswith("best_")}
    np.savez(path, **older)
    metrics = train(SMALL, tiny_data, str(tmp_path / "old"), quiet(seed=3, resume=True))
    assert [metrics[k] for k in ("best_epoch", "best_val_accuracy", "best_test_accuracy")] == [None] * 3
    assert metrics["epochs"] == 3 and metrics["test_accuracy"] is not None
