"""--tensorboard DIR: Keras's TensorBoard callback, read back with
TensorBoard's own event reader, on every backend."""

import os
import subprocess
import sys

import pytest
from helpers import REPO, quiet, subprocess_env
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.util import tensor_util

from kcifar import files
from kcifar import tensorboard as tensorboard_logs
from kcifar.cli import run_rung
from kcifar.config import Config
from kcifar.experiments import rung
from kcifar.run_folder import Recorder
from kcifar.train import train

# Small, with a learning rate that halves every epoch, so that a rate logged
# one epoch late shows.
SMALL = Config().replace(name="small", widths=(8, 8, 8, 8), dense_units=16, epochs=3, batch_size=32,
                         dropout=0.3, lr_decay=0.5)
# history.csv's column of each scalar the callback writes.
COLUMNS = {"train/epoch_loss": "loss", "train/epoch_accuracy": "accuracy",
           "train/epoch_learning_rate": "learning_rate", "validation/epoch_loss": "val_loss",
           "validation/epoch_accuracy": "val_accuracy",
           "train/epoch_clean_train_accuracy": "clean_train_accuracy"}


def scalars(folder):
    """{"train/epoch_loss": [(epoch, value), ...], ...}: the per-epoch scalars
    as TensorBoard reads them from `folder` (Keras writes them as tensors)."""
    found = {}
    for split in ("train", "validation"):
        reader = event_accumulator.EventAccumulator(os.path.join(folder, split),
                                                    size_guidance={event_accumulator.TENSORS: 0})
        reader.Reload()
        for tag in reader.Tags()["tensors"]:
            if tag.startswith("epoch_"):
                found[f"{split}/{tag}"] = [(e.step, float(tensor_util.make_ndarray(e.tensor_proto)))
                                           for e in reader.Tensors(tag)]
    return found


def assert_scalars_are_the_history(log_dir, run_dir):
    """One value per epoch of each scalar, the value of history.csv."""
    history = files.read_csv(os.path.join(run_dir, "history.csv"))
    found = scalars(log_dir)
    assert set(found) == set(COLUMNS)
    for tag, column in COLUMNS.items():
        assert [step for step, _ in found[tag]] == list(range(len(history))), tag
        assert [value for _, value in found[tag]] == pytest.approx([float(row[column]) for row in history],
                                                                   rel=1e-6), tag
    return found


def test_missing_tensorflow_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(ImportError) as error:
        tensorboard_logs.check()
    assert 'pip install -e ".[tensorflow]"' in str(error.value) and "\n" not in str(error.value)


def test_a_rung_without_tensorflow_stops_before_loading_data(tiny_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    config = rung("baseline").CONFIG.replace(widths=(4, 4, 4, 4), dense_units=8)
    argv = ["--data", tiny_dir, "--out", str(tmp_path / "runs"), "--tensorboard", str(tmp_path / "logs")]
    with pytest.raises(SystemExit) as stopped:
        run_rung(config, argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("python -m kcifar.experiments.baseline: error: ")
    assert 'install the tensorflow extra: pip install -e ".[tensorflow]"' in err[0]
    cache = os.environ["KCIFAR_CACHE"]
    assert not os.path.exists(cache) or not os.listdir(cache)  # the data was never loaded
    assert not (tmp_path / "runs").exists() and not (tmp_path / "logs").exists()


def test_an_interrupted_and_resumed_run_logs_each_epoch_once(tiny_data, tmp_path, monkeypatch):
    run_dir, logs = tmp_path / "runs" / "small-seed0", tmp_path / "logs"
    on_disk = {}
    original = Recorder.on_epoch_begin

    def interrupt_in_second_epoch(self, epoch, logs_=None):
        original(self, epoch, logs_)
        if epoch == 1:  # as Ctrl-C during epoch 2 would; what is on disk now is all a kill -9 leaves
            on_disk.update(scalars(logs / "small-seed0"))
            raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(Recorder, "on_epoch_begin", interrupt_in_second_epoch)
        with pytest.raises(KeyboardInterrupt):
            train(SMALL, tiny_data, str(run_dir), quiet(tensorboard=str(logs)))
    assert set(on_disk) == set(COLUMNS) and all(len(points) == 1 for points in on_disk.values())
    train(SMALL, tiny_data, str(run_dir), quiet(resume=True, tensorboard=str(logs)))

    found = assert_scalars_are_the_history(logs / "small-seed0", run_dir)
    # The rate each epoch trained with (lr0 * 0.5^epoch), as history.csv has it.
    assert [v for _, v in found["train/epoch_learning_rate"]] == pytest.approx([1e-3, 5e-4, 2.5e-4], rel=1e-6)
    assert os.listdir(logs) == ["small-seed0"]


def test_run_a_range_of_rungs_logs_each_run_in_its_own_folder(tiny_dir, tmp_path, tmp_path_factory):
    out, logs = tmp_path / "runs", tmp_path / "logs"
    command = [sys.executable, "-m", "kcifar.ladder", "--run", "baseline..trick1", "--data", tiny_dir,
               "--epochs", "2", "--batch-size", "108", "--out", str(out), "--quiet", "--tensorboard", str(logs)]
    done = subprocess.run(command, cwd=REPO, env=subprocess_env(tmp_path_factory), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = sorted(os.listdir(out))
    assert len(runs) == 2 and sorted(os.listdir(logs)) == runs
    for name in runs:
        assert_scalars_are_the_history(logs / name, out / name)


def test_a_search_logs_each_trial_in_its_own_folder(tiny_dir, tmp_path, tmp_path_factory):
    out, logs = tmp_path / "tuner", tmp_path / "logs"
    command = [sys.executable, "-m", "kcifar.tune", "--rung", "trick4", "--data", tiny_dir, "--out", str(out),
               "--project", "p", "--limit-train", "54", "--batch-size", "54", "--max-trials", "2", "--epochs", "2",
               "--quiet", "--tensorboard", str(logs)]
    done = subprocess.run(command, cwd=REPO, env=subprocess_env(tmp_path_factory), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    trials = sorted(name for name in os.listdir(out / "p") if name.startswith("trial_"))
    assert len(trials) == 2 and os.listdir(logs) == ["p"] and sorted(os.listdir(logs / "p")) == trials
    for name in trials:
        assert_scalars_are_the_history(logs / "p" / name, out / "p" / name)
