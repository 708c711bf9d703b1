"""What a run folder's results files hold, readable without Keras.

`kcifar.train` writes them; `kcifar.report`, `kcifar.evaluate` and the tuner
read them. Nothing here imports Keras or a backend, so reading results is fast.
"""

import numpy as np

METRICS_FORMAT = 1  # of metrics.json; bump when it changes incompatibly
# Accuracy on a fixed sample of the training split in inference mode, per
# epoch (kcifar.train.CleanTrainAccuracy); "accuracy" is Keras's running one.
CLEAN_ACCURACY = "clean_train_accuracy"
HISTORY_COLUMNS = (
    "epoch", "loss", "accuracy", "val_loss", "val_accuracy", CLEAN_ACCURACY,
    "learning_rate", "train_seconds", "seconds",
)
# Columns that run folders written before them lack: read as None.
NEWER_HISTORY_COLUMNS = (CLEAN_ACCURACY,)
# The marker of a run that a time limit stopped: it has no metrics.json (that
# still means complete), and the report shows it apart, as partial.
PARTIAL_FILE = "partial.json"
PARTIAL_FORMAT = 1


def score_predictions(probs, labels):
    """Accuracy, cross-entropy, per-class accuracy and confusion matrix."""
    labels = np.asarray(labels).astype(int)
    predicted = probs.argmax(axis=1)
    confusion = np.zeros((10, 10), int)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    picked = probs[np.arange(len(labels)), labels].astype(np.float64)
    return {
        "test_accuracy": float((predicted == labels).mean()),
        "test_loss": float(-np.log(np.clip(picked, 1e-12, 1.0)).mean()),
        "per_class_accuracy": [round(float(a), 4) for a in per_class],
        "confusion_matrix": confusion.tolist(),
    }


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
    )
