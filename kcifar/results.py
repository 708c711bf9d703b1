"""A run folder: its name, its files, what they hold, and whether the run
is complete, partial or only started. Readable without Keras.

`kcifar.run_folder` writes the folder as `kcifar.train` trains, in this order:
  settings.json   what was asked: config, seed, precision, data (written first)
  checkpoint.npz  the state after the last finished epoch (deleted at the end)
  history.csv     one row per finished epoch
  model.keras     the model after the last epoch (never one chosen on test;
                  metrics.json also scores the best validation epoch's weights)
  metrics.json    final metrics; written last, so its presence means complete
  partial.json    only while a time limit has stopped the run: epochs done and
                  planned, why and when (the checkpoint stays for --resume)
  run.log         under `kcifar.ladder`, the rung's whole output (never committed)

Every file is written under a temporary name and renamed. The command line,
the ladder runner, the report and the tuner read them through this module;
nothing here imports Keras or a backend, so reading results is fast.
"""

import csv
import os

from kcifar import files
from kcifar.budgets import CUSTOM, FULL

SETTINGS_FILE = "settings.json"
CHECKPOINT_FILE = "checkpoint.npz"
HISTORY_FILE = "history.csv"
MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
# The marker of a run that a time limit stopped: it has no metrics.json (that
# still means complete), and the report shows it apart, as partial.
PARTIAL_FILE = "partial.json"
LOG_FILE = "run.log"
RUN_FILES = (SETTINGS_FILE, CHECKPOINT_FILE, HISTORY_FILE, MODEL_FILE, METRICS_FILE, PARTIAL_FILE)

METRICS_FORMAT = 1  # of metrics.json; bump when it changes incompatibly
# Accuracy on a fixed sample of the training split in inference mode, per
# epoch (kcifar.train.CleanTrainAccuracy); "accuracy" is Keras's running one.
CLEAN_ACCURACY = "clean_train_accuracy"
# The second read-out of metrics.json: the epoch of the highest validation
# accuracy, and the test accuracy of its weights (kcifar.run_folder.BestEpoch);
# None in runs made before it was kept. The last epoch's test accuracy stays
# the figure set beside the lecture's.
BEST_FIELDS = ("best_epoch", "best_val_accuracy", "best_test_accuracy")
HISTORY_COLUMNS = (
    "epoch", "loss", "accuracy", "val_loss", "val_accuracy", CLEAN_ACCURACY,
    "learning_rate", "train_seconds", "seconds",
)
# Columns that run folders written before them lack: read as None.
NEWER_HISTORY_COLUMNS = (CLEAN_ACCURACY,)
PARTIAL_FORMAT = 1


class RunFolderError(ValueError):
    """A results file that cannot be read as this code writes it; the
    message is one line."""


def folder_name(rung, budget, backend, seed):
    """<rung>-<backend>-seed<S>, with the budget after the rung unless it is
    the full schedule (a custom run's included), so that runs of two budgets
    never share a folder."""
    return f"{rung}{'' if budget in (FULL, CUSTOM) else '-' + budget}-{backend}-seed{seed}"


def state(run_dir):
    """"complete" (metrics.json), "partial" (a time limit's marker), "started"
    (some other run file) or None (no run here)."""
    if os.path.exists(os.path.join(run_dir, METRICS_FILE)):
        return "complete"
    if os.path.exists(os.path.join(run_dir, PARTIAL_FILE)):
        return "partial"
    if any(os.path.exists(os.path.join(run_dir, f)) for f in RUN_FILES):
        return "started"
    return None


def read_history(run_dir):
    """history.csv as a list of dicts of floats (epoch an int; a column of
    NEWER_HISTORY_COLUMNS that the file lacks is None); RunFolderError if
    it is missing, empty or not as written here."""
    path = os.path.join(run_dir, HISTORY_FILE)
    if not os.path.exists(path):
        raise RunFolderError(f"no {HISTORY_FILE}")
    try:
        rows = files.read_csv(path)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise RunFolderError(f"{HISTORY_FILE} is unreadable ({e})")
    if not rows:
        raise RunFolderError(f"{HISTORY_FILE} has no epochs")
    missing = [c for c in HISTORY_COLUMNS if c not in rows[0] and c not in NEWER_HISTORY_COLUMNS]
    if missing:
        raise RunFolderError(f"{HISTORY_FILE} lacks column(s) {', '.join(missing)}")
    try:
        history = [{c: float(row[c]) if row.get(c) not in (None, "") else None for c in HISTORY_COLUMNS}
                   for row in rows]
        if any(row[c] is None for row in history for c in HISTORY_COLUMNS if c not in NEWER_HISTORY_COLUMNS):
            raise ValueError
    except (TypeError, ValueError):
        raise RunFolderError(f"{HISTORY_FILE} holds a value that is not a number")
    for row in history:
        row["epoch"] = int(row["epoch"])
    return history


def counted(n, noun):
    """"1 epoch", "2 epochs": a count with its noun in the right number."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def summary_line(metrics):
    clean = metrics.get(CLEAN_ACCURACY)  # None in runs made before it was recorded
    return (
        f"{metrics['name']} [{metrics['backend']}, {metrics['device']}, seed {metrics['seed']}]: "
        f"test {metrics['test_accuracy']:.4f}  train {metrics['train_accuracy']:.4f}  "
        f"gap {metrics['gap']:+.4f}  "
        + ("" if clean is None else f"clean train {clean:.4f}  ")
        + f"val {metrics['val_accuracy']:.4f}  {counted(metrics['epochs'], 'epoch')} in {metrics['wall_seconds']:.0f} s"
        + ("" if metrics.get("best_epoch") is None else
           f"; best on validation: epoch {metrics['best_epoch']}, test {metrics['best_test_accuracy']:.4f}")
    )
