"""One run folder as a run writes it, so that any interruption can be resumed.

`kcifar.train` trains and says what the files hold; this module reads and
writes them (and the tuner's trial folders use its `Recorder` and
checkpoint): it decides what a run may do with a folder that holds one
(`kept_run`), writes settings.json first and checks a resume against it,
writes a checkpoint and then the history after every epoch, stops a run that
a time limit would cut short, marks a stopped run (partial.json), and writes
model.keras and metrics.json last. The files and their order are
`kcifar.results`'s.

The checkpoint holds the model's variables including the random generators
of its noise, dropout and augmentation layers, the optimizer's variables (so
the step count and the learning-rate schedule), the history, the training
phase it was saved in (the step beyond the ladder trains in two), and the
weights of the best validation epoch so far (`BestEpoch`). Batches are
keyed by (seed, epoch), so a resumed run ends where an uninterrupted one
would.
"""

import dataclasses
import json
import math
import os
import time

import keras
import numpy as np

from kcifar import files
from kcifar.budgets import CUSTOM, FULL
from kcifar.results import (CHECKPOINT_FILE, CLEAN_ACCURACY, HISTORY_COLUMNS, HISTORY_FILE, METRICS_FILE, MODEL_FILE,
                            PARTIAL_FILE, RUN_FILES, SETTINGS_FILE, state)


class RunError(Exception):
    """A run that cannot start or go on; the message is one line."""


class Stopped(Exception):
    """A run that a time limit stopped between epochs, resumable; the message
    is the one line to print. Not an error: the command exits 0."""


def kept_run(run_dir, resume, overwrite):
    """What a run may do with `run_dir`, decided before it starts there.

    Returns the metrics of the complete run the folder holds when `resume`
    keeps it (it is not trained again), or None: the run trains (the folder
    holds none, `overwrite` deletes it, or `resume` continues it). Raises
    RunError, in one line saying how to go on, for a folder that holds a
    run that neither allows.
    """
    found = state(run_dir)
    if found is None or overwrite:
        return None
    if not resume:
        keep = ("to keep it (a complete run is skipped)" if found == "complete"
                else "to continue it from its last finished epoch")
        raise RunError(f"{run_dir} already holds a {found} run; run the same command with --resume {keep}, "
                       "or with --overwrite to delete it and start afresh")
    if found == "complete":
        return files.read_json(os.path.join(run_dir, METRICS_FILE))
    return None


def prepare_run_dir(run_dir, settings, overwrite):
    """Makes the folder ready for a run that `kept_run` let start: its run
    files deleted first with `overwrite`, settings.json written, or checked
    against `settings` where it is there (a resume).

    Returns:
        The checkpoint's path to resume from, or None.
    """
    try:
        os.makedirs(run_dir, exist_ok=True)
        probe = os.path.join(run_dir, f".write-test-{os.getpid()}")
        open(probe, "w").close()
        os.remove(probe)
    except OSError as e:
        raise RunError(f"cannot write to run folder {run_dir}: {e.strerror or e}")
    if overwrite:
        for f in RUN_FILES:
            if os.path.exists(os.path.join(run_dir, f)):
                os.remove(os.path.join(run_dir, f))
    settings_path = os.path.join(run_dir, SETTINGS_FILE)
    if os.path.exists(settings_path):
        try:
            saved = files.read_json(settings_path)
        except (OSError, ValueError) as e:
            raise RunError(f"{settings_path} is unreadable ({e}); use --overwrite")
        changed = changed_settings(saved, settings)
        if changed:
            raise RunError(
                f"{run_dir} was started with other settings ({', '.join(changed)} differ); "
                "use the same flags, another --out, or --overwrite"
            )
    else:
        files.write_json(settings_path, settings)
    checkpoint = os.path.join(run_dir, CHECKPOINT_FILE)
    return checkpoint if os.path.exists(checkpoint) else None


def clear_partial(run_dir):
    """Removes a stopped run's marker once its resume has restored the
    checkpoint and trains on: the marker described the stop before it."""
    marker = os.path.join(run_dir, PARTIAL_FILE)
    if os.path.exists(marker):
        os.remove(marker)


def changed_settings(saved, settings):
    """The settings that differ, for a resume. The code version may change
    between the two; folders written before a setting existed (budget,
    data checksum, data notes) are compared on what they hold, and their
    data description, which named a machine path, is not compared. A
    custom run (other epochs or training images than its rung's) recorded
    its budget as full before custom was recorded: the same."""
    saved = {"budget": FULL, **saved}
    if saved["budget"] == FULL and settings.get("budget") == CUSTOM:
        saved["budget"] = CUSTOM  # the config or the data tells a custom run from a full one
    changed = {k for k in set(saved) | set(settings) if k != "code" and saved.get(k) != settings.get(k)}
    old, new = saved.get("data", {}), settings.get("data", {})
    if "description" in old or "notes" not in old:
        common = (set(old) & set(new)) - {"description"}
        if {"train", "val"} <= common and all(old[k] == new[k] for k in common):
            changed.discard("data")
    return sorted(changed)


@dataclasses.dataclass
class BestEpoch:
    """The epoch of the highest validation accuracy so far (the earliest of
    equals) and the weights the model ended it with: what Keras's
    `ModelCheckpoint(save_best_only=True)` would keep, chosen on the
    validation split alone."""

    epoch: int = 0
    val_accuracy: float = float("-inf")
    weights: list = None  # NumPy copies of `model.weights`

    def update(self, epoch, val_accuracy, model):
        if val_accuracy > self.val_accuracy:
            self.epoch, self.val_accuracy = epoch, val_accuracy
            self.weights = [keras.ops.convert_to_numpy(w) for w in model.weights]


class Recorder(keras.callbacks.Callback):
    """Keeps the history and writes a checkpoint after every epoch.

    A NaN loss stops the run before its epoch is saved, so the last good
    checkpoint stays for a later --resume; its error starts a line of its
    own.

    Args:
        run_dir: the run folder.
        history: the epoch rows so far; appended to.
        phase: the training phase the checkpoint is saved in.
        best: a `BestEpoch` to keep up to date and checkpoint, or None to
            keep none (a tuner trial; a run resumed from a checkpoint that
            has none).
    """

    def __init__(self, run_dir, history, phase=1, best=None):
        super().__init__()
        self.run_dir, self.history, self.phase, self.best = run_dir, history, phase, best

    def on_epoch_begin(self, epoch, logs=None):
        self.start = self.test_start = time.perf_counter()
        self.lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_test_begin(self, logs=None):
        self.test_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if not all(math.isfinite(logs.get(k, 0.0)) for k in ("loss", "val_loss")):
            if self.params.get("verbose") in (1, "auto"):
                # Keras ends its progress bar's line after the callbacks: end it
                # now, or the error is printed at the end of the bar.
                print(flush=True)
            raise RunError(
                f"loss became NaN or infinite in epoch {epoch + 1}; the last good "
                f"checkpoint (epoch {epoch}) is kept in {self.run_dir}"
            )
        now = time.perf_counter()
        self.history.append({
            "epoch": epoch + 1,
            **{k: float(logs[k]) for k in ("loss", "accuracy", "val_loss", "val_accuracy", CLEAN_ACCURACY)},
            "learning_rate": self.lr,
            "train_seconds": round(self.test_start - self.start, 3),
            "seconds": round(now - self.start, 3),
        })
        if self.best is not None:
            self.best.update(epoch + 1, self.history[-1]["val_accuracy"], self.model)
        save_checkpoint(self.run_dir, self.model, self.history, self.phase, self.best)
        files.write_csv(os.path.join(self.run_dir, HISTORY_FILE), self.history, HISTORY_COLUMNS)


class TimeLimit(keras.callbacks.Callback):
    """Stops training after an epoch when the next one and the final test
    evaluation would not end by `deadline` (a `time.time()` value).

    The estimate comes from the epochs this process has timed: their mean,
    leaving out the first (it compiles) once there are others, and the last
    epoch's time outside training (its validation and clean-accuracy passes)
    scaled by `test_per_val`, which errs long. The first epoch always runs.

    Args:
        deadline: a `time.time()` value.
        history: the run's epoch rows so far (`Recorder` appends to it).
        test_per_val: the test passes still to come, in validation passes.
        epochs: the run's last epoch, after which nothing is stopped.
    """

    def __init__(self, deadline, history, test_per_val, epochs):
        super().__init__()
        self.deadline, self.history, self.test_per_val, self.epochs = deadline, history, test_per_val, epochs
        self.done_before = len(history)
        self.stopped = False

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 >= self.epochs:  # the run's last epoch, not its phase's
            return
        timed = self.history[self.done_before:]
        steady = timed[1:] or timed
        epoch_seconds = sum(row["seconds"] for row in steady) / len(steady)
        test_seconds = (timed[-1]["seconds"] - timed[-1]["train_seconds"]) * self.test_per_val
        if time.time() + epoch_seconds + test_seconds > self.deadline:
            self.model.stop_training = self.stopped = True


def save_checkpoint(run_dir, model, history, phase=1, best=None):
    """Writes the model's and the optimizer's variables, the history, the
    phase and the best epoch's weights (`best`, a `BestEpoch`, or None) to
    the folder's checkpoint (a temporary name, then a rename)."""
    arrays = {f"model_{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(model.variables)}
    arrays.update({f"opt_{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(model.optimizer.variables)})
    arrays["history"] = np.array(json.dumps(history))
    arrays["phase"] = np.array(phase)  # the optimizer's variables are this phase's
    if best is not None and best.weights is not None:
        arrays.update({f"best_{i}": w for i, w in enumerate(best.weights)})
        arrays["best_epoch"], arrays["best_val_accuracy"] = np.array(best.epoch), np.array(best.val_accuracy)
    with files.atomic_path(os.path.join(run_dir, CHECKPOINT_FILE)) as tmp:
        np.savez(tmp, **arrays)


def saved_phase(path):
    """The training phase a checkpoint was saved in (1 for one-phase runs)."""
    try:
        with np.load(path) as f:
            return int(f["phase"]) if "phase" in f.files else 1
    except (OSError, ValueError) as e:
        raise RunError(f"{path} is unreadable ({e}); use --overwrite")


def restore_checkpoint(path, model):
    """Assigns the saved state to `model` (compiled in the checkpoint's
    phase); returns the history and the `BestEpoch` (None for a checkpoint
    written before runs kept it)."""
    try:
        with np.load(path) as f:
            saved = {k: f[k] for k in f.files}
    except (OSError, ValueError) as e:
        raise RunError(f"{path} is unreadable ({e}); use --overwrite")
    model.optimizer.build(model.trainable_variables)
    for prefix, variables in (("model", model.variables), ("opt", model.optimizer.variables)):
        count = sum(k.startswith(prefix + "_") for k in saved)
        if count != len(variables):
            raise RunError(f"{path} does not match this model ({count} vs {len(variables)} {prefix} variables)")
        for i, v in enumerate(variables):
            v.assign(saved[f"{prefix}_{i}"])
    best = None
    if "best_epoch" in saved:
        best = BestEpoch(int(saved["best_epoch"]), float(saved["best_val_accuracy"]),
                         [saved[f"best_{i}"] for i in range(len(model.weights))])
    return json.loads(str(saved["history"])), best


def mark_partial(run_dir, marker):
    """Writes partial.json, the marker of a run a time limit stopped
    (`marker`: what it holds, `kcifar.results.PARTIAL_FORMAT`)."""
    files.write_json(os.path.join(run_dir, PARTIAL_FILE), marker)


def finish_run(run_dir, network, metrics):
    """Saves the trained network and metrics.json, the file that marks the
    run complete, then drops the checkpoint it no longer needs."""
    with files.atomic_path(os.path.join(run_dir, MODEL_FILE)) as tmp:
        network.save(tmp)
    files.write_json(os.path.join(run_dir, METRICS_FILE), metrics)
    if os.path.exists(os.path.join(run_dir, CHECKPOINT_FILE)):
        os.remove(os.path.join(run_dir, CHECKPOINT_FILE))
