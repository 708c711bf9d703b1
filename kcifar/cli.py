"""The command line shared by every rung: `python -m kcifar.experiments.trick4`.

`run_rung` takes a rung's config from there: the flags are checked, the
config takes their changes (`configure`) and the run's settings are made
(`kcifar.settings.RunSettings`), every seed's run folder is checked, the
data is loaded, and `kcifar.train.train` trains the config once per seed
into its run folder.

Errors a user can cause end with one line on stderr and exit status 2 for
what is refused before training (bad flags, bad data, an unknown backend),
1 for a run that fails once started (a run folder that cannot be written or
resumed, a NaN loss), as in every kcifar command (`kcifar.command`).
"""

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import time

import psutil

from kcifar import budgets
from kcifar import quiet as quiet_module
from kcifar import results
from kcifar.command import Parser, UsageError, error
from kcifar.config import PRECISIONS
from kcifar.data.readers import CLASS_NAMES, DataError  # no backend: flags are checked before Keras loads

BACKENDS = ("tensorflow", "torch", "jax")
DEFAULT_OUT = "runs"  # git-ignored scratch folder; keep results in experiments/


def run_rung(config, argv=None, description=None, flags=None, trainer=None):
    """Parses the command line and trains `config` once per seed.

    Args:
        config: the rung's `kcifar.config.Config`.
        argv: the flags (default: the command line's).
        description: what --help says first (default: the config's change).
        flags: a function that declares a step's own flags on the parser.
        trainer: a function of the parsed flags that returns the function
            that trains one seed, `train(config, data, run_dir, settings)`;
            called once, before the data loads, and only when a seed has
            epochs left (default: `kcifar.train.train`). The step beyond the
            ladder gets its starting weights there.

    Returns:
        The metrics dict of every seed's run.
    """
    args = None
    try:
        p = parser(_prog(config.name), description or config.change)
        if flags is not None:
            flags(p)
        args = p.parse_args(argv)
        return _run(config, args, trainer or rung_trainer)
    except (UsageError, DataError) as e:
        _fail(config.name, e, 2)
    except KeyboardInterrupt:
        end_progress_line(args)
        _fail(config.name, "interrupted; run the same command with --resume to continue", 130)


def end_progress_line(args):
    """Ends the line a Keras progress bar may have left open on stdout, so
    that Ctrl-C's message (on stderr, the same terminal) starts a line of its
    own. Nothing before the flags are read or with --quiet (no bars).

    Args:
        args: the parsed flags, or None.
    """
    if args is not None and not args.quiet:
        print(flush=True)


def rung_trainer(args):
    """A rung's training: `kcifar.train.train`, whatever the flags."""
    from kcifar import train

    return train.train


def _run(config, args, trainer):
    # The flags that make the config first: a mistake costs no wait for Keras and the backend.
    own = config
    config, seeds = checked_flags(config, args)
    check_backend(quiet=args.quiet)
    from kcifar.run_folder import RunError, Stopped, kept_run

    settings = run_settings(args, seeds[0], recorded_budget(args, own, config))
    run_dirs = [run_dir_of(args, config, seed) for seed in seeds]
    kept = []
    for run_dir in run_dirs:  # every seed's folder before the first trains: no refusal after hours of training
        try:
            kept.append(kept_run(run_dir, settings.resume, settings.overwrite))
        except RunError as e:
            raise UsageError(str(e))  # the same command with --resume or --overwrite goes on
    data = train = None
    finished = []
    for seed, run_dir, metrics in zip(seeds, run_dirs, kept):
        if metrics is not None:
            print(f"{config.name}: skipped: complete run in {run_dir}")
            finished.append(metrics)
            continue
        try:
            if data is None:  # decoded once, and only when a seed has epochs left: resuming a done ladder is instant
                train = trainer(args)  # first: a step's weights, say, which a finished run does not need
                data = load_data(args)
            metrics = train(config, data, run_dir, dataclasses.replace(settings, seed=seed))
        except RunError as e:
            _fail(config.name, e, 1)
        except Stopped as e:
            print(f"{config.name}: {e}", flush=True)
            break  # the seeds after it would not fit either
        print(results.summary_line(metrics))
        print(f"  run folder: {run_dir}/ (metrics.json, history.csv, model.keras)")
        finished.append(metrics)
    return finished


def checked_flags(config, args):
    """The run's config and seeds from the flags, every flag that makes
    them checked (UsageError, one line) before Keras loads."""
    check_counts(args)
    try:
        config = configure(config, args)
    except ValueError as e:
        raise UsageError(str(e))
    return config, seeds_of(args)


def recorded_budget(args, own, config):
    """The budget a run records: --budget's, but custom for the full budget
    with other epochs than the rung's `own` config (--epochs, --config) or a
    training subset (--limit-train), as the report tells them apart."""
    return budgets.recorded(args.budget, config.epochs, own.epochs, subset=args.limit_train is not None)


def run_settings(args, seed, budget):
    """The settings of the run of `seed` from the flags and the `budget` it
    records (`RunSettings`, which checks them, TensorBoard's TensorFlow
    included: call after `check_backend`); UsageError (one line) for one it
    refuses."""
    from kcifar.settings import RunSettings

    try:
        return RunSettings(
            seed=seed, precision=args.precision, budget=budget, resume=args.resume,
            overwrite=args.overwrite, deterministic=args.deterministic, verbose=0 if args.quiet else 1,
            tensorboard=args.tensorboard, time_limit=args.time_limit, started=started(),
        )
    except (ValueError, ImportError) as e:
        raise UsageError(str(e))


def load_data(args):
    """The run's data: --data (default $KCIFAR_DATA, then Keras's download),
    its training split cut to --limit-train's or the budget's images."""
    from kcifar.data import load

    data = load(args.data)
    if train_images(args) is not None:
        try:
            data = data.subset(train_images(args))
        except ValueError:
            raise UsageError(f"--limit-train must be at most {len(data.y_train)}, the training split's images. "
                             f"Received: --limit-train {args.limit_train}")
    return data


def shared_flags():
    """The flags that mean the same in a rung's run and a tuner's search,
    declared once for both (argparse `parents`)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--data", metavar="SOURCE",
                   help="CIFAR-10 folder or archive (default: $KCIFAR_DATA, then Keras's download)")
    p.add_argument("--limit-train", type=int, metavar="N",
                   help="train on a fixed stratified subset of N training images (a quick run)")
    p.add_argument("--batch-size", type=int, metavar="N", help="images per training step (default: the rung's)")
    p.add_argument("--precision", choices=PRECISIONS, default="float32",
                   help="Keras dtype policy (default float32). mixed_bfloat16 is faster on GPUs and on CPUs with AMX, "
                        "slower on other CPUs: `python -m kcifar.bench --ladder --precision P` measures it")
    p.add_argument("--quiet", action="store_true", help="no progress bars, no per-trial tables")
    p.add_argument("--tensorboard", metavar="DIR",
                   help="also write TensorBoard logs (per-epoch scalars) under DIR, a subfolder per run or trial; "
                        "needs TensorFlow")
    return p


def parser(prog, description):
    p = Parser(prog=prog, description=description, parents=[shared_flags()])
    p.add_argument("--epochs", type=int, help="epochs to train (default: the rung's)")
    p.add_argument("--seed", type=int, default=0, help="seed of weights, batches, augmentation, noise, dropout (default 0)")
    p.add_argument("--seeds", help="several seeds, e.g. 0,1,2: one run each, to tell gaps from seed noise")
    p.add_argument("--budget", choices=tuple(budgets.BUDGETS), default=budgets.FULL,
                   help="the whole ladder at one cost: small trains every rung on the same 5000-image subset for "
                        "20 epochs (see kcifar/budgets.py); default full, the rung's own schedule")
    p.add_argument("--out", default=DEFAULT_OUT,
                   help=f"parent folder of run folders <rung>-<backend>-seed<S> (default: {DEFAULT_OUT}/)")
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
    return p


def check_backend(quiet=False):
    """Imports Keras and its backend; UsageError (one line) when it cannot.

    Args:
        quiet: hold back TensorFlow's start-up lines (`kcifar.quiet`),
            its search for a GPU included.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's logs after its start-up lines
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend not in BACKENDS:
        raise UsageError(f"KERAS_BACKEND must be one of {', '.join(BACKENDS)}. Received: KERAS_BACKEND={backend!r}")
    try:
        with quiet_module.stderr_held_back() if quiet else contextlib.nullcontext():
            import keras  # noqa: F401  (imports the backend)

            if quiet and backend == "tensorflow":
                # TensorFlow looks for a GPU when it places its first op and,
                # on a machine without one, says so in a line (cuInit) that no
                # log level reaches: it looks now, while stderr is held back.
                import tensorflow as tf

                tf.config.list_physical_devices("GPU")
    except ImportError as e:
        raise UsageError(f"backend {backend!r} is not installed ({e}); see README 'Install'")


def started():
    """When this command started (its process's creation), a `time.time()`
    value: the clock of --time-limit, which counts imports and data loading."""
    try:
        return psutil.Process().create_time()
    except psutil.Error:
        return time.time()


def check_tensorboard(log_dir):
    """For a search's --tensorboard DIR: TensorFlow must be importable (one
    line if not), checked before any data loads (a run's is checked by
    `RunSettings`). Call after `check_backend`."""
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
    """The rung's config with the command line's changes: --config, --epochs,
    --batch-size, then the budget's. ValueError for a change the config
    refuses; UsageError for a budget with --epochs or --limit-train."""
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
    """The run folder of `config` under --out (`kcifar.results.folder_name`).
    `backend`: Keras's (default: the one this process runs)."""
    if backend is None:
        import keras

        backend = keras.backend.backend()
    return os.path.join(args.out, results.folder_name(config.name, args.budget, backend, seed))


def _prog(name):
    return f"python -m kcifar.experiments.{name}"


def _fail(name, message, status):
    sys.exit(error(_prog(name), message, status))
