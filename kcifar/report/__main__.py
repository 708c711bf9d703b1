"""python -m kcifar.report [RUN_DIR ...] [--out DIR] [--tuner DIR ...]

Turns finished runs into figures and a Markdown page: DIR/README.md (the
ladder table) and DIR/figures/: ladder.png, and <run>-curves.png and
<run>-classes.png per run (figures of runs no longer there are removed,
other files left alone). DIR defaults to experiments/. RUN_DIR is a run
folder or a folder of them, searched recursively; by default every run under
experiments/ and every search in tuner_runs/*/summary.json. A folder that
cannot be read (missing, incomplete, unreadable, from a newer kcifar) is
skipped with one line on stderr and listed on the page; the rest is still
made, and the exit status is 0. The same files give the same bytes.
"""

import argparse
import glob
import os
import sys

from kcifar import files
from kcifar.report import figures
from kcifar.report.runs import Skipped, collect, group_runs, load_tuner, short_names
from kcifar.report.table import page

DEFAULT_ROOT = "experiments"
DEFAULT_TUNER = os.path.join("tuner_runs", "*", "summary.json")
# Only files of these shapes are ever removed from DIR/figures/.
GENERATED = ("ladder.png", "*-curves.png", "*-classes.png")


def write_report(run_paths, out_dir, tuner_dirs=()):
    """Writes out_dir/figures/*.png, then out_dir/README.md.

    Returns (runs used, (path, reason) pairs of what was skipped). PNGs of
    the report's own names that this report did not write (of runs since
    removed) are deleted.
    """
    runs, skipped = collect(run_paths)
    searches = []
    tuner_names = short_names(tuner_dirs)
    for folder in tuner_dirs:
        try:
            searches.append((tuner_names[folder], folder, load_tuner(folder)))
        except Skipped as e:
            skipped.append((folder, str(e)))
    groups = group_runs(runs)
    names = short_names([run.path for run in runs])
    figure_dir = os.path.join(out_dir, "figures")
    os.makedirs(figure_dir, exist_ok=True)
    written = {os.path.join(figure_dir, "ladder.png")}
    figures.ladder(groups, os.path.join(figure_dir, "ladder.png"))
    for run in runs:
        for kind, draw in (("curves", figures.curves), ("classes", figures.classes)):
            path = os.path.join(figure_dir, f"{names[run.path]}-{kind}.png")
            draw(run, path)
            written.add(path)
    for pattern in GENERATED:
        for stale in set(glob.glob(os.path.join(figure_dir, pattern))) - written:
            os.remove(stale)
    files.write_text(os.path.join(out_dir, "README.md"), page(groups, names, skipped, searches, out_dir))
    return runs, skipped


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m kcifar.report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dirs", nargs="*", metavar="RUN_DIR",
                   help=f"run folders or folders of them (default: {DEFAULT_ROOT}/)")
    p.add_argument("--out", default=DEFAULT_ROOT, metavar="DIR",
                   help=f"where README.md and figures/ go (default: {DEFAULT_ROOT}/)")
    p.add_argument("--tuner", action="append", default=[], metavar="DIR",
                   help="a kcifar.tune project folder: its best trial and summary.png go on the page; "
                        "may be given more than once "
                        f"(default, without RUN_DIR: every {DEFAULT_TUNER})")
    args = p.parse_args(argv)
    run_dirs, tuner_dirs = args.run_dirs, args.tuner
    if not run_dirs:
        if not os.path.isdir(DEFAULT_ROOT):
            return _fail(f"no {DEFAULT_ROOT}/ folder here; run from the repository root or name run folders")
        run_dirs = [DEFAULT_ROOT]
        if not tuner_dirs:
            tuner_dirs = sorted(os.path.dirname(path) for path in glob.glob(DEFAULT_TUNER))
    try:
        runs, skipped = write_report(run_dirs, args.out, tuner_dirs)
    except OSError as e:
        return _fail(f"cannot write the report to {args.out}: {e.strerror or e}")
    for path, reason in skipped:
        print(f"kcifar.report: skipped {path}: {reason}", file=sys.stderr)
    print(f"wrote {os.path.join(args.out, 'README.md')} and its figures in "
          f"{os.path.join(args.out, 'figures')}/ from {len(runs)} runs ({len(skipped)} skipped)")
    return 0


def _fail(message):
    print(f"kcifar.report: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
