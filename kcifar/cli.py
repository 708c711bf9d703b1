"""The command line shared by every rung: `python -m kcifar.experiments.trick4`.

Errors a user can cause (bad flags, bad data, an unwritable folder, a NaN
loss, an unknown backend) end with one line on stderr and exit status 2 (1
for a run that failed while training).
"""

import argparse
import json
import os
import sys
import time

import psutil

from kcifar import budgets, files
from kcifar.config import PRECISIONS
from kcifar.data.readers import CLASS_NAMES  # no backend: flags are checked before Keras loads

BACKENDS = ("tensorflow", "torch", "jax")
DEFAULT_OUT = "runs"  # git-ignored scratch folder; keep results in experiments/


def parser(prog, description):
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--data", help="CIFAR-10 folder or archive (default: $KCIFAR_DATA, then Keras's download)")
    p.add_argument("--epochs", type=int, help="epochs to train (default: the rung's)")
    p.add_argument("--batch-size", type=int, help="images per training step (default: the rung's)")
    p.add_argument("--seed", type=int, default=0, help="seed of weights, batches, augmentation, noise, dropout (default 0)")
    p.add_argument("--seeds", help="several seeds, e.g. 0,1,2: one run each, to tell gaps from seed noise")
    p.add_argument("--limit-train", type=int, metavar="N",
                   help="train on a fixed stratified subset of N training images (a quick run)")
    p.add_argument("--budget", choices=tuple(budgets.BUDGETS), default=budgets.FULL,
                   help="the whole ladder at one cost: small trains every rung on the same 5000-image subset for "
                        "20 epochs (see kcifar/budgets.py); default full, the rung's own schedule")
    p.add_argument("--out", default=DEFAULT_OUT,
                   help=f"parent folder of run folders <rung>-<backend>-seed<S> (default: {DEFAULT_OUT}/)")
    p.add_argument("--precision", choices=PRECISIONS, default="float32",
                   help="Keras dtype policy (default float32). mixed_bfloat16 is faster on GPUs and on CPUs with AMX, "
                        "slower on other CPUs: `python -m kcifar.bench --ladder --precision P` measures it")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from its last finished epoch; a complete run is skipped")
    p.add_argument("--overwrite", action="store_true", help="delete the run folder's files and start afresh")
    p.add_argument("--deterministic", action="store_true",
                   help="the backends' determinism switches: repeatable on GPU too, and slower")
    p.add_argument("--config", metavar="FILE",
                   help="JSON of config changes, e.g. the best configuration kcifar.tune exports")
    p.add_argument("--time-limit", type=float, metavar="SECONDS",
                   help="end within SECONDS of the command's start: before each epoch after the first, a run "
                        "that would not finish that epoch and its test evaluation in time stops, resumable "
                        "(partial.json, no metrics.json) and exits 0")
    p.add_argument("--quiet", action="store_true", help="no per-step progress bar")
    p.add_argument("--tensorboard", metavar="DIR",
                   help="also write TensorBoard logs (per-epoch scalars) to DIR/<run folder name>; needs TensorFlow")
    return p


class UsageError(Exception):
    """Bad input from the command line; the message is one line."""


def check_backend():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend not in BACKENDS:
        raise UsageError(f"KERAS_BACKEND must be one of {', '.join(BACKENDS)}. Received: KERAS_BACKEND={backend!r}")
    try:
        import keras  # noqa: F401  (imports the backend)
    except ImportError as e:
        raise UsageError(f"backend {backend!r} is not installed ({e}); see README 'Install'")


def started():
    """When this command started (its process's creation), a `time.time()`
    value: the clock of --time-limit, which counts imports and data loading."""
    try:
        return psutil.Process().create_time()
    except psutil.Error:
        return time.time()


def check_time_limit(seconds):
    if seconds is not None and not seconds > 0:  # NaN too
        raise UsageError(f"--time-limit must be a positive number of seconds. Received: --time-limit {seconds:g}")


def check_tensorboard(log_dir):
    """For --tensorboard DIR: TensorFlow must be importable (one line if not),
    checked before any data loads. Call after `check_backend`."""
    if log_dir is None:
        return
    from kcifar import tensorboard

    try:
        tensorboard.check()
    except ImportError as e:
        raise UsageError(str(e))


def check_counts(args):
    """The counts a user types, checked before Keras loads."""
    for flag, value, least, why in (("--epochs", args.epochs, 1, ""), ("--batch-size", args.batch_size, 1, ""),
                                    ("--limit-train", args.limit_train, len(CLASS_NAMES), " (one image per class)")):
        if value is not None and value < least:
            raise UsageError(f"{flag} must be at least {least}{why}. Received: {flag} {value}")


def seeds_of(args):
    if not args.seeds:
        return [args.seed]
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise UsageError(f"--seeds must be integers separated by commas. Received: --seeds {args.seeds}")
    if not seeds:
        raise UsageError("--seeds is empty")
    return seeds


def config_changes(path, rung_name):
    """Reads a JSON object of config changes: {"changes": {...}} or flat."""
    try:
        with open(path) as f:
            obj = json.load(f)
    except (OSError, ValueError) as e:
        raise UsageError(f"--config {path}: unreadable ({e})")
    if not isinstance(obj, dict):
        raise UsageError(f"--config {path}: expected a JSON object")
    if obj.get("rung", rung_name) != rung_name:
        raise UsageError(f"--config {path} is for rung {obj['rung']}, not {rung_name}")
    changes = obj.get("changes", obj)
    return {k: v for k, v in changes.items() if k not in ("rung",)}


def configure(config, args):
    """The rung's config with the command line's changes; ValueError if bad."""
    if args.budget != budgets.FULL and (args.epochs is not None or args.limit_train is not None):
        raise UsageError(f"--budget {args.budget} fixes the epochs and training images; "
                         "drop --epochs and --limit-train, or use --budget full")
    changes = config_changes(args.config, config.name) if args.config else {}
    if args.epochs is not None:
        changes["epochs"] = args.epochs
    if args.batch_size is not None:
        changes["batch_size"] = args.batch_size
    return budgets.apply(config.replace(**changes), args.budget)


def train_images(args):
    """How many training images the run uses: --limit-train, or the budget's."""
    return budgets.get(args.budget).train_images if args.limit_train is None else args.limit_train


def run_dir_of(args, config, seed, backend=None):
    """<rung>-<backend>-seed<S>, with the budget after the rung unless full,
    so that runs of two budgets never share a folder. `backend`: Keras's
    (default: the one this process runs)."""
    if backend is None:
        import keras

        backend = keras.backend.backend()
    budget = "" if args.budget == budgets.FULL else f"-{args.budget}"
    return os.path.join(args.out, f"{config.name}{budget}-{backend}-seed{seed}")


def run_rung(config, argv=None, description=None):
    """Parses the command line and trains `config` once per seed."""
    args = parser(f"python -m kcifar.experiments.{config.name}", description or config.change).parse_args(argv)
    try:
        return _run(config, args)
    except UsageError as e:
        _fail(config.name, e, 2)
    except KeyboardInterrupt:
        _fail(config.name, "interrupted; run the same command with --resume to continue", 130)


def _run(config, args):
    # Every flag first: a mistake costs no wait for Keras and the backend.
    check_time_limit(args.time_limit)
    check_counts(args)
    try:
        config = configure(config, args)
    except ValueError as e:
        raise UsageError(str(e))
    seeds = seeds_of(args)
    check_backend()
    check_tensorboard(args.tensorboard)
    from kcifar.data import DataError, load
    from kcifar.results import summary_line
    from kcifar.train import RunError, Stopped, is_complete, train

    try:
        data = load(args.data)
    except DataError as e:
        raise UsageError(str(e))
    if train_images(args) is not None:
        try:
            data = data.subset(train_images(args))
        except ValueError:
            raise UsageError(f"--limit-train must be at most {len(data.y_train)}, the training split's images. "
                             f"Received: --limit-train {args.limit_train}")
    results = []
    for seed in seeds:
        run_dir = run_dir_of(args, config, seed)
        if args.resume and not args.overwrite and is_complete(run_dir):
            print(f"{config.name}: skipped: complete run in {run_dir}")
            results.append(files.read_json(os.path.join(run_dir, "metrics.json")))
            continue
        try:
            metrics = train(
                config, data, run_dir, seed=seed, precision=args.precision, budget=args.budget, resume=args.resume,
                overwrite=args.overwrite, deterministic=args.deterministic, verbose=0 if args.quiet else 1,
                tensorboard=args.tensorboard, time_limit=args.time_limit, started=started(),
            )
        except RunError as e:
            _fail(config.name, e, 1)
        except Stopped as e:
            print(f"{config.name}: {e}", flush=True)
            break  # the seeds after it would not fit either
        print(summary_line(metrics))
        print(f"  run folder: {run_dir}/ (metrics.json, history.csv, model.keras)")
        results.append(metrics)
    return results


def _fail(name, message, status):
    # argparse's own prefix, so that every error of the command reads alike.
    print(f"python -m kcifar.experiments.{name}: error: {message}", file=sys.stderr)
    sys.exit(status)
