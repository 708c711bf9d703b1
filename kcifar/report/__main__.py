"""python -m kcifar.report [RUN_DIR ...] [--out DIR] [--tuner DIR ...]

Turns finished runs into figures and a Markdown page: DIR/README.md (one
ladder table per training budget) and DIR/figures/: per budget ladder.png
(ladder-<budget>.png for a budget other than the full one) and epochs.png
(every rung's validation accuracy and gap per epoch), and <run>-curves.png and
<run>-classes.png per run. DIR/report-files.txt lists what the report wrote;
a later report deletes the files listed there that it no longer writes, and
never any other file. Without RUN_DIR: every run under experiments/ and every
search in tuner_runs/*/summary.json, into experiments/. With RUN_DIR (a run
folder or a folder of them, searched recursively), DIR defaults to report/ in
the folder that holds the named runs (runs/report/ for `runs/*`). A folder
that cannot be read (missing, incomplete, unreadable, from a newer kcifar) is
skipped with one line on stderr and listed on the page; the rest is still
made, and the exit status is 0. A run that --time-limit stopped (its
partial.json) is listed apart, as partial: epochs done, last validation
accuracy, no test accuracy. With nothing to report (no run, partial run or
search could be read), it writes nothing, says why in one line on stderr
and exits 2. The same files give the same bytes.
"""

import argparse
import glob
import os
import sys

from kcifar import files
from kcifar.command import Parser, UsageError, error
from kcifar.report import figures
from kcifar.report.runs import Skipped, collect, find_runs, group_runs, load_tuner, short_names
from kcifar.report.table import GENERATED_HEADER, page, sections
from kcifar.results import counted

PROG = "python -m kcifar.report"
DEFAULT_ROOT = "experiments"
DEFAULT_TUNER = os.path.join("tuner_runs", "*", "summary.json")
MANIFEST = "report-files.txt"
MANIFEST_HEADER = ("# The files python -m kcifar.report wrote in this folder, one a line. A later report\n"
                   "# deletes those it no longer writes, and no other file.\n")


class ReportError(Exception):
    """A report that cannot be written; the message is one line."""


def read_manifest(out_dir):
    """The files a report listed as written in `out_dir` (relative paths)."""
    try:
        with open(os.path.join(out_dir, MANIFEST), encoding="utf-8") as f:
            lines = [line.strip() for line in f]
    except (FileNotFoundError, NotADirectoryError):  # a first report (or no folder: refused later)
        return set()
    except (OSError, UnicodeDecodeError) as e:
        raise ReportError(f"{os.path.join(out_dir, MANIFEST)} is unreadable ({e})")
    # Only plain paths inside out_dir: a list edited by hand deletes nothing outside it.
    return {line for line in lines if line and not line.startswith("#") and not os.path.isabs(line)
            and ".." not in line.split("/")}


def _generated_page(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read(len(GENERATED_HEADER)) == GENERATED_HEADER


def write_report(run_paths, out_dir, tuner_dirs=()):
    """Writes out_dir/figures/*.png, out_dir/README.md and the list of both.

    Returns (runs used, partial runs, (path, reason) pairs of what was skipped). Files the
    previous report listed and this one did not write are deleted; nothing
    else is. A README.md that no report wrote is refused (ReportError), and
    so is a report of nothing: no file is written then.
    """
    previous = read_manifest(out_dir)
    readme = os.path.join(out_dir, "README.md")
    if os.path.isfile(readme) and "README.md" not in previous and not _generated_page(readme):
        raise ReportError(f"{readme} was not written by kcifar.report; name another --out")
    # The report's own folder named among the runs (runs/* after a first report) is no run folder.
    run_paths = [p for p in run_paths if os.path.abspath(p) != os.path.abspath(out_dir) or find_runs(p)]
    runs, partial, skipped = collect(run_paths)
    searches = []
    tuner_names = short_names(tuner_dirs)
    for folder in tuner_dirs:
        try:
            searches.append((tuner_names[folder], folder, load_tuner(folder)))
        except Skipped as e:
            skipped.append((folder, str(e)))
    if not (runs or partial or searches):
        raise ReportError(nothing_to_report(skipped))
    groups = group_runs(runs)
    names = short_names([run.path for run in runs])
    os.makedirs(os.path.join(out_dir, "figures"), exist_ok=True)
    written = []

    def draw(name, function, subject, **options):
        function(subject, os.path.join(out_dir, "figures", name), **options)
        written.append(f"figures/{name}")

    for section in sections(groups):
        draw(section.figure("ladder"), figures.ladder, section.groups, budget=section.budget)
        if section.groups:
            draw(section.figure("epochs"), figures.epochs, section.groups, budget=section.budget)
    for run in runs:
        draw(f"{names[run.path]}-curves.png", figures.curves, run)
        draw(f"{names[run.path]}-classes.png", figures.classes, run)
    files.write_text(readme, page(groups, names, skipped, searches, out_dir, partial))
    written.append("README.md")
    files.write_text(os.path.join(out_dir, MANIFEST), MANIFEST_HEADER + "".join(f"{p}\n" for p in sorted(written)))
    for stale in sorted(previous - set(written)):
        path = os.path.join(out_dir, *stale.split("/"))
        if os.path.isfile(path):
            os.remove(path)
    return runs, partial, skipped


def nothing_to_report(skipped, shown=3):
    """The one line of a report with no run to show: why each folder was
    skipped, the first `shown` of them."""
    reasons = "; ".join(f"{path}: {reason}" for path, reason in skipped[:shown])
    more = f"; {len(skipped) - shown} more skipped" if len(skipped) > shown else ""
    return f"no run to report ({reasons}{more}); nothing written" if skipped else "no run to report; nothing written"


def beside(paths):
    """Where a report of named runs goes by default: report/ in the folder
    that holds them all."""
    holders = []
    for path in paths:
        found = find_runs(path) if os.path.isdir(path) else []
        if found:
            holders += [os.path.dirname(os.path.abspath(folder)) for folder in found]
        else:
            holders.append(os.path.abspath(path) if os.path.isdir(path) else os.path.dirname(os.path.abspath(path)))
    common = os.path.commonpath(holders)
    relative = os.path.relpath(common)
    return os.path.normpath(os.path.join(common if relative.startswith("..") else relative, "report"))


def main(argv=None):
    p = Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dirs", nargs="*", metavar="RUN_DIR",
                   help=f"run folders or folders of them (default: {DEFAULT_ROOT}/)")
    p.add_argument("--out", metavar="DIR",
                   help=f"where README.md and figures/ go (default: {DEFAULT_ROOT}/ without RUN_DIR, "
                        "else report/ beside the named runs)")
    p.add_argument("--tuner", action="append", default=[], metavar="DIR",
                   help="a kcifar.tune project folder: its best trial and summary.png go on the page; "
                        "may be given more than once "
                        f"(default, without RUN_DIR: every {DEFAULT_TUNER})")
    try:
        args = p.parse_args(argv)
    except UsageError as e:
        return error(PROG, e)
    run_dirs, tuner_dirs = args.run_dirs, args.tuner
    if not run_dirs:
        if not os.path.isdir(DEFAULT_ROOT):
            return error(PROG, f"no {DEFAULT_ROOT}/ folder here; run from the repository root or name run folders")
        run_dirs = [DEFAULT_ROOT]
        if not tuner_dirs:
            tuner_dirs = sorted(os.path.dirname(path) for path in glob.glob(DEFAULT_TUNER))
        out = args.out or DEFAULT_ROOT
    else:
        out = args.out or beside(run_dirs)
    try:
        runs, partial, skipped = write_report(run_dirs, out, tuner_dirs)
    except ReportError as e:
        return error(PROG, e)
    except OSError as e:
        return error(PROG, f"cannot write the report to {out}: {e.strerror or e}")
    for path, reason in skipped:
        print(f"{PROG}: skipped {path}: {reason}", file=sys.stderr)
    print(f"wrote {os.path.join(out, 'README.md')} and its figures in "
          f"{os.path.join(out, 'figures')}/ from {counted(len(runs), 'run')}"
          + (f", {len(partial)} partial" if partial else "") + f" ({len(skipped)} skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
