"""python -m kcifar.experiments [--run FIRST..LAST] [rung flags]

Without --run, lists the rungs and their one change. With --run, trains the
rungs from FIRST to LAST in order; rungs whose run folder is complete are
skipped and interrupted ones resumed, so rerunning the same command after an
interruption carries on where it stopped. Other flags go to every rung
(see `python -m kcifar.experiments.baseline --help`).
"""

import argparse
import sys

from kcifar.experiments import RUNGS, rung


def rung_range(spec):
    first, _, last = spec.partition("..")
    last = last or first
    for name in (first, last):
        if name not in RUNGS:
            raise ValueError(f"unknown rung {name!r}; one of {', '.join(RUNGS)}")
    i, j = RUNGS.index(first), RUNGS.index(last)
    if i > j:
        raise ValueError(f"--run {spec}: {first} comes after {last}")
    return RUNGS[i : j + 1]


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m kcifar.experiments", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", metavar="FIRST..LAST", help="e.g. baseline..trick4, or one rung")
    args, rest = p.parse_known_args(argv)
    if not args.run:
        if rest:
            p.error(f"unrecognized arguments: {' '.join(rest)}")
        for name in RUNGS:
            module = rung(name)
            print(f"{name:9} rung {module.CONFIG.rung}  lecture {module.LECTURE:.1%}  {module.CONFIG.change}")
        return 0
    try:
        names = rung_range(args.run)
    except ValueError as e:
        print(f"kcifar.experiments: error: {e}", file=sys.stderr)
        return 2
    from kcifar.cli import run_rung

    flags = rest if "--resume" in rest or "--overwrite" in rest else rest + ["--resume"]
    for name in names:
        print(f"=== {name}: {rung(name).CONFIG.change}", flush=True)
        run_rung(rung(name).CONFIG, flags)
    return 0


if __name__ == "__main__":
    sys.exit(main())
