"""python -m kcifar.study [FOLDER]: applies a study's rule to its runs.

A study (experiments/study/ holds rung 6's) is a folder with plan.json: the
rung, the seeds, the figure, the adoption margins, the stages and their
variants, each a config of the rung trained once per seed into a folder of
its own. The rule, written before any run (README.md beside plan.json):

- the figure of a run is its mean validation accuracy over its last
  `last_epochs` epochs (history.csv; nothing here reads a test figure);
- the first stage's base runs first: if its seeds' figures differ by more
  than the mean margin, that difference becomes the mean margin, for the
  whole study;
- a candidate replaces its stage's base when each of its seeds beats the
  base's same seed by `each_seed` and its mean beats the base's by the mean
  margin; of several, the highest mean wins; references are never adopted,
  so a stage is decided without them and their runs come last.

A stage's base may be the stage before's winner; a stage marked
`if_adopted` runs only when the stage before adopted a candidate. A variant
is a config file of the rung's changes (`configs/NAME.json`, what `--config`
reads), or changes on top of its stage's base, whose config file is written
once that base is known.

It prints each stage's figures and verdict, and the command of every run
still to come (with --commands, those alone, one a line: `... --commands |
xargs -P 10 -I{} sh -c "{} --quiet"` runs ten at once); it writes
decision.json beside plan.json, and verdict-<backend>.md, the same as a
page with each run's commit and machine. A stage whose base's and
candidates' runs are not all complete is "pending". Exit status 0, or 2 with
one line for a plan it cannot read.
"""

import argparse
import os
import statistics
import sys

from kcifar import files, results
from kcifar.cli import BACKENDS
from kcifar.command import Parser, UsageError, error
from kcifar.experiments import rung

PROG = "python -m kcifar.study"
PLAN_FILE = "plan.json"
DECISION_FILE = "decision.json"
VERDICT_FILE = "verdict-{backend}.md"  # the decision as a page, with each run's commit and machine
PREVIOUS_WINNER = "previous winner"  # a stage base that is the stage before's winner
# Validation accuracy is a count over the held-out images, stored as float32:
# two figures exactly at a margin differ from it by float noise (about 1e-8),
# and "at least" must count that tie. Real differences are 1/50000 apart or more.
TIE = 1e-6


def main(argv=None):
    p = Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", nargs="?", default=os.path.join("experiments", "study"),
                   help="the study's folder, holding plan.json (default experiments/study)")
    p.add_argument("--backend", choices=BACKENDS, default="tensorflow",
                   help="the backend whose runs are judged; runs of two backends are never compared "
                        "(default tensorflow)")
    p.add_argument("--commands", action="store_true",
                   help="print only the commands of the runs still to come, one a line (for xargs -P)")
    try:
        args = p.parse_args(argv)
        plan = read_plan(args.folder)
    except UsageError as e:
        return error(PROG, e)
    decision = decide(plan, args.folder, args.backend)
    print("\n".join(decision["to_run"]) if args.commands else describe(decision))
    files.write_json(os.path.join(args.folder, DECISION_FILE), decision)
    files.write_text(os.path.join(args.folder, VERDICT_FILE.format(backend=args.backend)),
                     verdict_page(plan, decision, args.folder))
    return 0


def read_plan(folder):
    """plan.json, checked: every stage's variants are defined, each once."""
    path = os.path.join(folder, PLAN_FILE)
    try:
        plan = files.read_json(path)
        rung(plan["rung"])
        seeds, figure, adoption = plan["seeds"], plan["figure"], plan["adoption"]
        if len(seeds) < 2 or figure["last_epochs"] < 1 or min(adoption.values()) < 0:
            raise ValueError("needs two seeds or more, last_epochs >= 1 and margins >= 0")
        for i, stage in enumerate(plan["stages"]):
            if stage["base"] == PREVIOUS_WINNER and i == 0:
                raise ValueError(f"the first stage's base cannot be the {PREVIOUS_WINNER}")
            for name in variant_names(stage):
                if name not in plan["variants"]:
                    raise ValueError(f"stage {stage['name']!r} names variant {name!r}, which variants lacks")
    except OSError as e:
        raise UsageError(f"{path}: unreadable ({e.strerror or e})")
    except (KeyError, TypeError, ValueError) as e:
        raise UsageError(f"{path}: not a study plan ({e})")
    return plan


def variant_names(stage):
    named = [stage["base"]] if stage["base"] != PREVIOUS_WINNER else []
    return named + stage["candidates"] + stage.get("references", [])


def figure(run_dir, last_epochs):
    """A complete run's mean validation accuracy over its last epochs, or
    None while it is not complete."""
    if results.state(run_dir) != "complete":
        return None
    history = results.read_history(run_dir)
    return statistics.fmean(row["val_accuracy"] for row in history[-last_epochs:])


def config_path(plan, folder, name):
    variant = plan["variants"][name]
    return os.path.join(folder, variant.get("config", os.path.join("configs", f"{name}.json")))


def write_config(plan, folder, name, base):
    """A variant given as changes on top of its stage's base: its config
    file, the base's changes and its own (written where it is missing)."""
    path = config_path(plan, folder, name)
    if "changes" in plan["variants"][name] and not os.path.exists(path):
        changes = {**files.read_json(config_path(plan, folder, base))["changes"], **plan["variants"][name]["changes"]}
        files.write_json(path, {"rung": plan["rung"], "changes": changes})


def adopted(candidate, base, each_seed, mean_margin):
    """The rule: every seed ahead by at least `each_seed` and the mean by at
    least `mean_margin` (a tie at a margin passes)."""
    return (all(candidate[s] - base[s] >= each_seed - TIE for s in base)
            and statistics.fmean(candidate.values()) - statistics.fmean(base.values()) >= mean_margin - TIE)


def decide(plan, folder, backend="tensorflow"):
    """Every stage's figures and verdict, as decision.json holds them, and
    the commands of the runs still to come (`to_run`)."""
    margins = dict(plan["adoption"])
    last = plan["figure"]["last_epochs"]
    decision = {"rung": plan["rung"], "backend": backend, "figure": plan["figure"], "stages": [], "to_run": []}
    references_to_run = []  # never move a decision, so they come after every run that does
    winner, adopted_before = None, False
    for i, stage in enumerate(plan["stages"]):
        base = winner if stage["base"] == PREVIOUS_WINNER else stage["base"]
        entry = {"name": stage["name"], "base": base, "verdict": "pending", "winner": None}
        decision["stages"].append(entry)
        if i and winner is None:
            break  # the stage before is pending
        if stage.get("if_adopted") and not adopted_before:
            entry.update(verdict="skipped: the stage before adopted nothing", winner=winner)
            continue
        judged = [base, *stage["candidates"]]
        figures = {}
        for name in judged + stage.get("references", []):
            write_config(plan, folder, name, base)
            run_dirs = {seed: run_dir(plan, folder, name, seed, backend) for seed in plan["seeds"]}
            figures[name] = {seed: figure(run_dir, last) for seed, run_dir in run_dirs.items()}
            (decision["to_run"] if name in judged else references_to_run).extend(
                run_command(plan, folder, name, seed) for seed, f in figures[name].items() if f is None)
        entry["figures"] = figures
        if i == 0 and None not in figures[base].values():
            spread = max(figures[base].values()) - min(figures[base].values())
            margins["mean"] = max(margins["mean"], spread)
            decision["noise"] = {"spread": spread, "mean_margin": margins["mean"]}
        if any(None in figures[name].values() for name in judged):
            break
        passed = [c for c in stage["candidates"]
                  if adopted(figures[c], figures[base], margins["each_seed"], margins["mean"])]
        winner = max(passed, key=lambda c: statistics.fmean(figures[c].values())) if passed else base
        adopted_before = bool(passed)
        entry.update(passed=passed, winner=winner, verdict="decided")
    decision["margins"] = margins
    decision["to_run"] += references_to_run
    return decision


def run_dir(plan, folder, name, seed, backend):
    return os.path.join(folder, plan["variants"][name]["out"], results.folder_name(plan["rung"], "full", backend, seed))


def run_record(path):
    """A complete run's commit (short, "+changes" when uncommitted changes
    were present) and machine, from its settings.json and metrics.json."""
    code = files.read_json(os.path.join(path, results.SETTINGS_FILE)).get("code") or {}
    commit = (code.get("commit") or "unknown")[:7] + ("+changes" if code.get("dirty") else "")
    return commit, files.read_json(os.path.join(path, results.METRICS_FILE)).get("device", "unknown")


def verdict_page(plan, decision, folder):
    """The decision as a Markdown page: per stage, each variant's figure per
    seed, its mean and its distance from the base, and the commit and
    machine of each complete run. Written from the run folders alone, so a
    rerun on the same runs writes the same page."""
    seeds = plan["seeds"]
    margins = decision["margins"]
    lines = [
        "# The study's verdict",
        "",
        f"Written by `{PROG}` from the runs' history.csv (validation accuracy only), settings.json "
        "(commit) and metrics.json (machine); the test set plays no part. The rule is in "
        "[README.md](README.md).",
        "",
        f"Rung `{decision['rung']}`, backend {decision['backend']}. The figure: mean validation accuracy over "
        f"the last {decision['figure']['last_epochs']} epochs. Adoption: each seed at least "
        f"{100 * margins['each_seed']:.2f} points above the base's same seed, and the mean "
        f"{100 * margins['mean']:.2f} above the base's"
        + (f" (the base's seeds differ by {100 * decision['noise']['spread']:.2f} points)." if "noise" in decision
           else " (the base's seed spread is not known yet)."),
    ]
    for planned, stage in zip(plan["stages"], decision["stages"]):
        verdict = stage["verdict"] + (f": {stage['winner']}" if stage["verdict"] == "decided" else "")
        lines += ["", f"## Stage {stage['name']}: {verdict}", ""]
        figures = stage.get("figures")
        if not figures:
            lines.append("Waits for the stage before." if stage["verdict"] == "pending" else "No runs.")
            continue
        base = figures[stage["base"]]
        head = ["variant", *[f"seed {s}" for s in seeds], "mean", "mean - base", "runs (commit, machine)"]
        lines += ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
        for name, by_seed in figures.items():
            done = None not in by_seed.values()
            mean = statistics.fmean(by_seed.values()) if done else None
            ahead = (mean - statistics.fmean(base.values())) if done and None not in base.values() else None
            role = (" (base)" if name == stage["base"] else " (reference)" if name not in planned["candidates"] else "")
            runs = sorted({"{} on {}".format(*run_record(run_dir(plan, folder, name, s, decision["backend"])))
                           for s, f in by_seed.items() if f is not None})
            cells = [f"{name}{role}", *[("not complete" if by_seed[s] is None else f"{100 * by_seed[s]:.2f}%")
                                        for s in seeds],
                     "" if mean is None else f"{100 * mean:.2f}%",
                     "" if ahead is None or name == stage["base"] else f"{100 * ahead:+.2f}",
                     "; ".join(runs)]
            lines.append("| " + " | ".join(cells) + " |")
    later = [stage["name"] for stage in plan["stages"][len(decision["stages"]):]]
    if later:
        lines += ["", "Stages still to come: " + ", ".join(later) + "."]
    if decision["to_run"]:
        lines += ["", f"Runs still to come: {len(decision['to_run'])} (`{PROG} --commands` lists them)."]
    return "\n".join(lines) + "\n"


def run_command(plan, folder, name, seed):
    return (f"python -m kcifar.experiments.{plan['rung']} --config {config_path(plan, folder, name)} "
            f"--seed {seed} --out {os.path.join(folder, plan['variants'][name]['out'])} --resume")


def describe(decision):
    """The decision as lines of text: per stage, each variant's figures and verdict."""
    lines = [f"{decision['rung']}, {decision['backend']}: mean validation accuracy over the last "
             f"{decision['figure']['last_epochs']} epochs, per seed"]
    if "noise" in decision:
        lines.append(f"noise: the base's seeds differ by {100 * decision['noise']['spread']:.2f} points; "
                     f"mean margin {100 * decision['margins']['mean']:.2f}")
    for stage in decision["stages"]:
        lines.append(f"stage {stage['name']} (base: {stage['base'] or 'the stage before'}): {stage['verdict']}"
                     + (f", winner {stage['winner']}" if stage["winner"] else ""))
        for name, by_seed in stage.get("figures", {}).items():
            shown = "  ".join(f"seed {s}: " + ("not complete" if f is None else f"{100 * f:.2f}%")
                              for s, f in by_seed.items())
            lines.append(f"  {name:10} {shown}")
    if decision["to_run"]:
        lines.append("runs to come (with KERAS_BACKEND set to the backend above):")
        lines += [f"  {command}" for command in decision["to_run"]]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
