"""python -m kcifar.ladder --run FIRST..LAST [--jobs N] [--devices LIST] [rung flags]

Trains the rungs from FIRST to LAST, each in a process of its own
(`kcifar.ladder.runner`): one after another in ladder order, or with
--jobs N up to N at once, the costliest first. Rungs whose run folder is
complete are skipped and interrupted ones resumed, so rerunning the same
command carries on where it stopped; a rung that fails does not stop the
others. Other flags go to every rung (see `python -m
kcifar.experiments.baseline --help`); the --time-limit counts from this
command's start. `python -m kcifar.experiments` lists the rungs.
"""

import argparse
import sys

from kcifar.command import Parser, UsageError, error
from kcifar.experiments import RUNGS

PROG = "python -m kcifar.ladder"


def rung_range(spec):
    """The rung names of `FIRST..LAST` (or of one name), in ladder order."""
    first, _, last = spec.partition("..")
    last = last or first
    for name in (first, last):
        if name not in RUNGS:
            raise ValueError(f"--run: unknown rung {name!r}; one of {', '.join(RUNGS)}")
    i, j = RUNGS.index(first), RUNGS.index(last)
    if i > j:
        raise ValueError(f"--run {spec}: {first} comes after {last}")
    return RUNGS[i : j + 1]


def main(argv=None):
    p = Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", metavar="FIRST..LAST", required=True, help="e.g. baseline..trick4, or one rung")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="rungs trained at once, each in its own process, the costliest first (default 1)")
    p.add_argument("--devices", metavar="LIST",
                   help="GPUs to spread the rungs over, e.g. 0,1,2,3 (one per child, round robin; default: "
                        "every child sees every device)")
    from kcifar.ladder import parallel, runner

    try:
        args, rest = p.parse_known_args(argv)
        names = rung_range(args.run)
        if args.jobs < 1:
            raise ValueError(f"--jobs must be at least 1. Received: --jobs {args.jobs}")
        devices = parallel.parse_devices(args.devices) if args.devices is not None else None
        return runner.run(names, rest, jobs=args.jobs, devices=devices)
    except (ValueError, UsageError) as e:
        return error(PROG, e)


if __name__ == "__main__":
    sys.exit(main())
