"""python -m kcifar.tune --rung trick4 [--tuner random|bayesian|hyperband] [--max-trials N] [--epochs E]

Searches the dropout rate and the L2 lambda of a rung (the learning rate too
with --learning-rate-range; --hold keeps one at the rung's value) with keras-tuner, on the validation split carved
from the training set; the test set is never used. Writes
<out>/<project>/: keras-tuner's trial files, summary.csv, summary.json,
summary.png and best_config.json, which

    python -m kcifar.experiments.trick4 --config <out>/<project>/best_config.json

trains. Running the same command again continues an interrupted search;
--overwrite starts afresh. --chief and --worker ID spread one search over
processes or machines (keras-tuner's distributed mode; see docs/tuning.md).
"""

import argparse
import dataclasses
import os
import sys

# kcifar.cli imports no backend: the flags are checked before Keras loads.
from kcifar.cli import check_counts, end_progress_line, shared_flags
from kcifar.command import Parser, UsageError, error
from kcifar.data.readers import DataError

PROG = "python -m kcifar.tune"
DEFAULT_OUT = "tuner_runs"
DEFAULT_TRIALS = 10
DEFAULT_ORACLE = "127.0.0.1:8000"


def parser():
    p = Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
               parents=[shared_flags()])
    p.add_argument("--rung", required=True, metavar="RUNG",
                   help="the rung to tune: trick3 (dropout) or trick4..trick9 (dropout and L2)")
    p.add_argument("--tuner", default="random", metavar="NAME",
                   help="random (default), bayesian (needs scipy and scikit-learn: the 'bayesian' extra) or hyperband")
    p.add_argument("--max-trials", type=int, metavar="N",
                   help=f"trials to run with random or bayesian (default {DEFAULT_TRIALS}); rerun with a larger N to "
                        "extend a search. Hyperband sets its own count from --epochs and --factor")
    p.add_argument("--epochs", type=int, default=10, metavar="E",
                   help="epochs per trial; with hyperband the most epochs one model gets (default 10)")
    p.add_argument("--factor", type=int, default=3, metavar="F",
                   help="hyperband: keep 1/FACTOR of the models and give them FACTOR times the epochs (default 3)")
    p.add_argument("--hyperband-iterations", type=int, default=1, metavar="N",
                   help="hyperband: times to run the whole schedule (default 1)")
    p.add_argument("--dropout-range", metavar="LOW,HIGH", help="dropout rates to try, linear scale (default 0.0,0.6)")
    p.add_argument("--l2-range", metavar="LOW,HIGH", help="L2 lambdas to try, log scale (default 1e-6,1e-2)")
    p.add_argument("--hold", action="append", default=[], choices=("dropout", "l2"), metavar="NAME",
                   help="keep dropout or l2 at the rung's own value instead of searching it (repeatable)")
    p.add_argument("--learning-rate-range", metavar="LOW,HIGH",
                   help="also search Adam's learning rate, log scale, e.g. 1e-4,1e-2 (default: the rung's, fixed)")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="search seed: drives the sampling and each trial's seed (derived from it and the trial id)")
    p.add_argument("--project", metavar="NAME",
                   help="name of the search, the folder under --out (default <rung>-<tuner>-<backend>)")
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                   help=f"parent folder of projects (default {DEFAULT_OUT}/)")
    p.add_argument("--overwrite", action="store_true",
                   help="delete the project folder and start afresh (nothing is deleted without it; never a "
                        "folder with files committed to git)")
    d = p.add_argument_group("distributed search (keras-tuner's chief and workers over gRPC)")
    role = d.add_mutually_exclusive_group()
    role.add_argument("--chief", action="store_true",
                      help="serve the search's oracle at --oracle; runs no trials, writes the summary")
    role.add_argument("--worker", metavar="ID",
                      help="run trials for the chief at --oracle under ID (unique per worker; restart a "
                           "killed worker under the same ID to resume its trial)")
    d.add_argument("--oracle", metavar="HOST:PORT", default=DEFAULT_ORACLE,
                   help=f"the chief's address: where it listens (0.0.0.0:PORT for every interface) and "
                        f"where workers call (default {DEFAULT_ORACLE})")
    d.add_argument("--chief-timeout", type=float, default=300.0, metavar="S",
                   help="a worker gives up on a chief that does not answer within S seconds (default 300)")
    d.add_argument("--status-every", type=float, default=60.0, metavar="S",
                   help="the chief says what it waits for every S seconds (default 60)")
    return p


def parse_range(name, text):
    from kcifar.tune.space import DEFAULT_RANGES, Range

    parts = (text or "").split(",")
    try:
        low, high = (float(x) for x in parts)
    except ValueError:
        flag = "--" + name.replace("_", "-") + "-range"
        raise UsageError(f"{flag} must be LOW,HIGH (two numbers). Received: {flag} {text}")
    return Range(name, low, high, DEFAULT_RANGES[name].sampling)


def check_args(args):
    """Everything that needs no backend: one line per mistake."""
    from kcifar.experiments import RUNGS, rung
    from kcifar.tune import distributed, project
    from kcifar.tune.space import search_space

    if args.rung not in RUNGS:
        raise UsageError(f"unknown rung {args.rung!r}; one of {', '.join(RUNGS)}")
    if args.tuner not in project.TUNERS:
        raise UsageError(f"unknown tuner {args.tuner!r}; one of {', '.join(project.TUNERS)}")
    if args.tuner == "hyperband":
        if args.max_trials is not None:
            raise UsageError("hyperband takes no --max-trials: it schedules its trials from --epochs "
                             "(the most epochs per model) and --factor")
        if args.factor < 2:
            raise UsageError(f"--factor must be at least 2. Received: --factor {args.factor}")
        if args.hyperband_iterations < 1:
            raise UsageError("--hyperband-iterations must be at least 1. "
                             f"Received: --hyperband-iterations {args.hyperband_iterations}")
    elif args.max_trials is None:
        args.max_trials = DEFAULT_TRIALS
    elif args.max_trials < 1:
        raise UsageError(f"--max-trials must be at least 1. Received: --max-trials {args.max_trials}")
    check_counts(args)
    flags = {"dropout": args.dropout_range, "l2": args.l2_range, "learning_rate": args.learning_rate_range}
    config = rung(args.rung).CONFIG
    try:
        ranges = {name: parse_range(name, text) for name, text in flags.items() if text is not None}
        space = search_space(config, ranges, hold=args.hold)
        if args.project is not None:
            project.check_name(args.project)
        if args.worker is not None:
            project.check_name(args.worker, "--worker")
            distributed.check_worker_id(args.worker)
        address = distributed.parse_address(args.oracle)
    except (ValueError, project.SearchError, distributed.DistributedError) as e:
        raise UsageError(str(e))
    if args.worker is not None and args.overwrite:
        raise UsageError("only the chief may --overwrite: a worker that deletes the project folder "
                         "deletes the chief's files")
    for name in ("chief_timeout", "status_every"):
        if not getattr(args, name) > 0:  # NaN too
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} must be a positive number of seconds. Received: {flag} {getattr(args, name):g}")
    return config, space, address


def run(args):
    config, space, (host, port) = check_args(args)
    from kcifar.tune import distributed

    if args.chief or args.worker:
        distributed.share_gpu_memory(chief=args.chief)
    elif distributed.ambient_settings():
        raise UsageError(
            f"{', '.join(distributed.ambient_settings())} set in the environment would make this a "
            "distributed search; use --chief or --worker ID (they set them) or unset them"
        )
    if args.chief:
        distributed.check_port_free(host, port)  # before the slow imports

    from kcifar.cli import check_backend, check_tensorboard

    check_backend(quiet=args.quiet)
    check_tensorboard(args.tensorboard)
    import keras

    from kcifar.data import load
    from kcifar.results import counted
    from kcifar.tune import project, search, summary
    from kcifar.tune.hypermodel import RungHyperModel

    if args.worker:
        distributed.set_call_timeout(args.chief_timeout)
        distributed.wait_for_chief(host, port, args.chief_timeout)
    data = load(args.data, limit_train=args.limit_train)
    # The search never sees the test set: it is not even handed over.
    data = dataclasses.replace(data, x_test=data.x_test[:0], y_test=data.y_test[:0])
    changes = {"epochs": args.epochs}
    if args.batch_size is not None:
        changes["batch_size"] = args.batch_size
    config = config.replace(**changes)
    name = args.project or f"{config.name}-{args.tuner}-{keras.backend.backend()}"
    project_dir = os.path.join(args.out, name)
    settings = search.settings_of(
        config=config, space=space, tuner=args.tuner, epochs=args.epochs, seed=args.seed,
        precision=args.precision, data=data, limit_train=args.limit_train, max_trials=args.max_trials,
        factor=args.factor, iterations=args.hyperband_iterations,
    )
    continued = project.prepare(project_dir, settings, overwrite=args.overwrite and not args.worker,
                                create=not args.worker)
    if args.chief:
        distributed.set_role(distributed.CHIEF_ID, host, port)
    elif args.worker:
        distributed.set_role(args.worker, host, port)
    who = "chief" if args.chief else f"worker {args.worker}" if args.worker else "search"
    if args.tuner == "hyperband":
        trials, epochs = search.hyperband_budget(args.epochs, args.factor, args.hyperband_iterations)
        plan = f"hyperband, {trials} trials, {epochs} epochs in all, at most {args.epochs} per model"
    else:
        plan = f"{args.tuner}, {counted(args.max_trials, 'trial')} of {counted(args.epochs, 'epoch')}"
    verb = "joining" if args.worker else "continuing" if continued else "starting"
    print(f"{who}: {verb} {project_dir} ({config.name}, {plan}; "
          f"searching {', '.join(f'{r.name} {r.low:g}..{r.high:g} ({r.sampling})' for r in space)}; "
          f"{len(data.y_train)} train / {len(data.y_val)} validation images)", flush=True)

    def write_summary(trial_id=None):
        result = summary.write(project_dir)
        if args.chief and trial_id is not None:
            row = next((r for r in result["trials"] if r["trial"] == trial_id), None)
            if row:
                acc = f"val_accuracy {row['val_accuracy']:.4f}" if row["val_accuracy"] is not None else row["message"]
                print(f"chief: {project.trial_label(trial_id)} {row['status']} on {row['worker']}: {acc}",
                      flush=True)
        return result

    oracle = search.make_oracle(args.tuner, seed=args.seed, max_trials=args.max_trials, epochs=args.epochs,
                                factor=args.factor, iterations=args.hyperband_iterations)
    try:
        tuner = search.RungTuner(
            oracle, RungHyperModel(config, data, space), seed=args.seed, precision=args.precision,
            verbose=0 if args.quiet else 2, on_trial_end=None if args.worker else write_summary,
            directory=args.out, project_name=name,
            tensorboard=args.tensorboard and os.path.join(args.tensorboard, name),
        )
    except (RuntimeError, KeyError, ValueError) as e:
        raise project.SearchError(f"cannot reload {project_dir} ({str(e).splitlines()[0]}); "
                                  f"{project.advice(project_dir)}")
    try:
        if args.chief:
            oracle.verbose = 0  # the chief prints one line per trial instead
            tuner.save()
            distributed.serve(oracle, host, port, project_dir, on_trial_end=write_summary,
                              status_every=args.status_every, log=lambda line: print(line, flush=True))
        else:
            tuner.search(verbose=0 if args.quiet else 1)
    except _rpc_error() as e:
        raise distributed.DistributedError(distributed.describe_rpc_error(e, host, port, args.chief_timeout))
    except RuntimeError as e:  # the tuner stops after MAX_FAILED_IN_A_ROW failed trials in a row
        if not args.worker:
            write_summary()
        raise project.SearchError(f"search stopped: {str(e).splitlines()[0]}; see {project_dir}/summary.csv "
                                  "(the same command goes on with new values)")
    if args.worker:
        print(f"worker {args.worker}: no trial left; the chief writes the summary")
        return 0
    result = write_summary()
    print(summary.format_best(result))
    print(f"wrote {project_dir}/ (summary.csv, summary.json, summary.png"
          + (", best_config.json)" if result["best"] else ")"))
    if result["best"]:
        print(f"train it: python -m kcifar.experiments.{config.name} --config "
              f"{os.path.join(project_dir, 'best_config.json')}")
    return 0


def _rpc_error():
    try:
        import grpc
    except ImportError:  # keras-tuner needs grpcio; without it no distributed mode either
        return ()
    return grpc.RpcError


def main(argv=None):
    from kcifar.tune.distributed import DistributedError
    from kcifar.tune.project import SearchError

    args = None
    try:
        args = parser().parse_args(argv)
        return run(args)
    except SystemExit as e:  # --help
        return e.code
    except (UsageError, DataError, SearchError, DistributedError) as e:
        return error(PROG, e)
    except KeyboardInterrupt:
        end_progress_line(args)
        print(f"{PROG}: interrupted; run the same command again to continue (finished trials are kept)",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
