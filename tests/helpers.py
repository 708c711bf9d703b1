"""What the tests write and share: tiny CIFAR-10-like data in each on-disk
format, finished run folders, tuner summaries, a small saved model, a small
rung with every source of randomness on and the history its run writes, a
run stopped after its first epoch, and the environment of a child process.
Fixtures built on these live in conftest.py."""

import io
import os
import pickle
import tarfile

import numpy as np

from kcifar import files
from kcifar.config import Config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_ARCHIVE = os.path.join(REPO, "..", "shared", "data", "cifar10-jpg.tar.xz")
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
DATA = {
    "description": "image-folder at cifar10-jpg.tar.xz (JPEG mirror: lossy pixels), sha256:0123456789abcdef",
    "source": "cifar10-jpg.tar.xz", "format": "image-folder", "checksum": "0123456789abcdef",
    "train": 900, "val": 100, "test": 100, "notes": ["custom set: 1000 training images"],
}
# A run trained on a stratified subset of the training split (--limit-train).
SUBSET_DATA = {**DATA, "train": 400, "notes": ["training on a stratified subset of 400 images"]}
# The same data as runs recorded it before sources were named by file name.
OLD_DATA = {**DATA, "description": "image-folder at /data/cifar10-jpg.tar.xz (JPEG mirror: lossy pixels), "
                                   "sha256:0123456789abcdef", "source": "/data/cifar10-jpg.tar.xz"}


def tiny_arrays(per_class_train=12, per_class_test=4, seed=0):
    """Images whose class shows in their mean colour, so a model can learn."""
    rng = np.random.default_rng(seed)

    def make(per_class):
        y = np.repeat(np.arange(10, dtype=np.uint8), per_class)
        c = y.astype(int)
        base = np.stack([(c * 25) % 256, (c * 70) % 256, (255 - c * 25) % 256], -1)
        x = base[:, None, None, :] + rng.integers(-20, 21, (len(y), 32, 32, 3))
        return np.clip(x, 0, 255).astype(np.uint8), y

    (x_train, y_train), (x_test, y_test) = make(per_class_train), make(per_class_test)
    return x_train, y_train, x_test, y_test


def write_image_folder(root, x_train, y_train, x_test, y_test, ext="png"):
    from PIL import Image

    for split, xs, ys in (("train", x_train, y_train), ("test", x_test, y_test)):
        for i, (x, y) in enumerate(zip(xs, ys)):
            folder = os.path.join(root, split, CLASSES[y])
            os.makedirs(folder, exist_ok=True)
            Image.fromarray(x).save(os.path.join(folder, f"{i:05d}.{ext}"))
    return root


def write_py_batches(root, x_train, y_train, x_test, y_test):
    """The official cifar-10-batches-py layout: pickled dicts, CHW rows."""
    folder = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(folder)
    rows = lambda x: x.transpose(0, 3, 1, 2).reshape(len(x), -1)  # noqa: E731
    parts = np.array_split(np.arange(len(x_train)), 5)
    for i, idx in enumerate(parts, start=1):
        batch = {b"batch_label": b"training batch", b"labels": y_train[idx].tolist(),
                 b"data": rows(x_train[idx]), b"filenames": [b"f.png"] * len(idx)}
        with open(os.path.join(folder, f"data_batch_{i}"), "wb") as f:
            pickle.dump(batch, f, protocol=2)
    with open(os.path.join(folder, "test_batch"), "wb") as f:
        pickle.dump({b"labels": y_test.tolist(), b"data": rows(x_test)}, f, protocol=2)
    return folder


def tar_of(folder, path, mode="w:gz"):
    with tarfile.open(path, mode) as tar:
        tar.add(folder, arcname=os.path.basename(folder))
    return path


def png_bytes(array):
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def folder_contents(folder):
    """{relative path: bytes} of every file under `folder`."""
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, folder)] = f.read()
    return found


def write_run(root, name="baseline", seed=0, backend="jax", epochs=3, test_accuracy=0.5,
              train_accuracy=0.75, config_changes=None, folder=None, budget=None, code=None, data=None,
              clean_accuracy=None, precision="float32", best=None):
    """Writes a finished run folder as kcifar.train.train() would, with
    made-up numbers: 100 test images, 10 per class, `test_accuracy` a
    multiple of 0.1 so that the confusion matrix holds it exactly.

    Args:
        budget: recorded as the run's budget, and in the folder name unless
            "full"; None writes a run of before budgets (no budget field).
        code: the {"commit", "dirty"} recorded; None records none.
        data: the metrics' data dict (default DATA).
        best: (epoch, test accuracy) of the best validation epoch, or None
            for a run of before that read-out.
    """
    from kcifar.experiments import step
    from kcifar.results import HISTORY_COLUMNS, METRICS_FORMAT

    # A full-budget run keeps its rung's epochs in its config (a short history
    # stands for a long one); config_changes={"epochs": n} makes a custom run.
    schedule = {} if budget in (None, "full") else {"epochs": epochs}
    config = step(name).CONFIG.replace(**{**schedule, **(config_changes or {})})
    budget_part = "" if budget in (None, "full") else f"-{budget}"
    run_dir = os.path.join(root, folder or f"{name}{budget_part}-{backend}-seed{seed}")
    os.makedirs(run_dir)
    right = round(10 * test_accuracy)
    confusion = [[right if i == j else (10 - right if j == (i + 1) % 10 else 0) for j in range(10)]
                 for i in range(10)]
    history = [{
        "epoch": e, "loss": 2.0 / e, "accuracy": train_accuracy * e / epochs, "val_loss": 2.2 / e,
        "val_accuracy": (test_accuracy + 0.01) * e / epochs, "learning_rate": 1e-3 * config.lr_decay ** (e - 1),
        "train_seconds": 1.5, "seconds": 2.0,
        **({} if clean_accuracy is None else {"clean_train_accuracy": clean_accuracy * e / epochs}),
    } for e in range(1, epochs + 1)]
    metrics = {
        "format": METRICS_FORMAT, "name": config.name, "rung": config.rung, "change": config.change,
        "epochs": epochs, "batch_size": config.batch_size, "seed": seed, "precision": precision,
        "deterministic": False, "test_accuracy": right / 10, "test_loss": 1.25,
        "per_class_accuracy": [right / 10] * 10, "confusion_matrix": confusion,
        "train_accuracy": train_accuracy, "val_accuracy": history[-1]["val_accuracy"], "val_loss": 2.2 / epochs,
        "gap": train_accuracy - right / 10, "train_seconds": 1.5 * epochs, "wall_seconds": 2.0 * epochs + 0.5,
        "images_per_second": 600.0, "backend": backend, "backend_version": "1.2.3", "keras_version": "3.15.1",
        "device": "cpu: x86_64 x2", "python": "3.11.7", "data": data or DATA, "class_names": list(CLASSES),
    }
    settings = {"config": config.to_dict(), "seed": seed, "precision": precision,
                "data": {"source": DATA["source"], "checksum": DATA["checksum"], "train": DATA["train"],
                         "val": DATA["val"]}}
    if clean_accuracy is not None:
        metrics.update(clean_train_accuracy=clean_accuracy, clean_gap=clean_accuracy - right / 10)
    if best is not None:
        metrics.update(best_epoch=best[0], best_val_accuracy=history[best[0] - 1]["val_accuracy"],
                       best_test_accuracy=best[1])
    for key, value in (("budget", budget), ("code", code)):
        if value is not None:
            metrics[key] = settings[key] = value
    files.write_json(os.path.join(run_dir, "settings.json"), settings)
    files.write_csv(os.path.join(run_dir, "history.csv"), history, HISTORY_COLUMNS)
    files.write_json(os.path.join(run_dir, "metrics.json"), metrics)
    return run_dir


def write_summary(folder, fmt=1):
    """A kcifar.tune summary.json of two finished trials."""

    os.makedirs(folder, exist_ok=True)
    trials = [
        {"trial": "00", "status": "COMPLETED", "val_accuracy": 0.41, "dropout": 0.1, "l2": 1e-5,
         "learning_rate": None, "epochs": 2},
        {"trial": "01", "status": "COMPLETED", "val_accuracy": 0.47, "dropout": 0.3, "l2": 2e-4,
         "learning_rate": None, "epochs": 2},
    ]
    summary = {"format": fmt, "project": os.path.basename(folder), "tuner": "random", "seed": 0,
               "backend": "jax", "device": "cpu: x86_64 x2", "counts": {"COMPLETED": 2},
               "best": trials[1], "trials": trials}
    files.write_json(os.path.join(folder, "summary.json"), summary)
    return folder


def save_tiny_model(path, data):
    """A small untrained ladder network saved to `path` (it needs no training
    to be evaluated: the numbers just have to be the model's)."""
    import keras

    from kcifar.models import build_model

    keras.utils.set_random_seed(0)
    model = build_model(Config(widths=(4, 4, 4, 4), dense_units=8), *data.channel_stats())
    model.save(path)
    return model


def quiet(**changes):
    """A run's settings (`RunSettings`) without progress bars, with `changes`."""
    from kcifar.settings import RunSettings

    return RunSettings(verbose=0, **changes)


# Small, but with every source of randomness on: noise, dropout, flip, crop,
# rotation, BN statistics and a decaying learning rate.
SMALL = Config().replace(
    name="small", widths=(8, 8, 8, 8), dense_units=16, epochs=3, batch_size=32,
    input_noise=0.1, batch_norm=True, dropout=0.3, l2=1e-4, flip=True, crop_scale=0.7,
    rotation=10.0, lr_decay=0.5,
)


TIMING = ("train_seconds", "seconds")  # differ from run to run


def without_timing(history):
    """History rows without their timings."""
    return [{k: v for k, v in row.items() if k not in TIMING} for row in history]


def run_history(run_dir):
    """A run folder's history.csv as rows of floats."""
    return [{k: float(v) for k, v in row.items()} for row in files.read_csv(os.path.join(run_dir, "history.csv"))]


def interrupt_after_first_epoch(monkeypatch):
    """Makes kcifar.train stop with KeyboardInterrupt once its first epoch
    is saved, as Ctrl-C would there."""
    from kcifar.run_folder import Recorder

    original = Recorder.on_epoch_end

    def on_epoch_end(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 0:
            raise KeyboardInterrupt

    monkeypatch.setattr(Recorder, "on_epoch_end", on_epoch_end)


# XLA without its backend optimizations: tiny test programs compile faster.
XLA_QUICK_COMPILE = "--xla_backend_optimization_level=0"


def subprocess_env(tmp_path_factory):
    """The test's environment for a child process, with a JAX compilation
    cache shared by the session's children (trial k of a seed-0 search has
    the same values, hence the same program, in every test)."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if env.get("KERAS_BACKEND") == "jax":
        cache = tmp_path_factory.getbasetemp() / "jax-cache"
        env.update(JAX_COMPILATION_CACHE_DIR=str(cache), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
        if XLA_QUICK_COMPILE not in env.get("XLA_FLAGS", ""):  # conftest.py sets it for the tests' own process
            env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {XLA_QUICK_COMPILE}".strip()
    return env
