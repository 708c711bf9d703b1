"""Every trial of a search in one table, a plot, and the best configuration.

    python -m kcifar.tune.summary tuner_runs/trick4-random-jax

rewrites summary.csv, summary.json, summary.png and best_config.json of a
project folder from its trial files alone (keras-tuner's trial.json and our
kcifar_trial.json), so it works on a folder copied from another machine and
while a search is still running.
"""

import math
import os
import sys

from kcifar import files
from kcifar.results import counted
from kcifar.tune import project

# number: keras-tuner's "Trial #N" (`project.trial_number`); trial: the id it
# stores, which names the folder trial_<id> (summaries written before the
# number have the id alone).
COLUMNS = (
    "number", "trial", "status", "val_accuracy", "best_epoch", "last_val_accuracy", "train_accuracy",
    "clean_train_accuracy", "dropout", "l2", "learning_rate", "epochs", "trained_epochs", "seconds", "seed",
    "from_trial", "worker", "rss_mb_start", "rss_mb_end", "message",
)
TUNABLE = ("dropout", "l2", "learning_rate")
LABELS = {"dropout": "dropout rate", "l2": "L2 lambda", "learning_rate": "learning rate"}


def _last_line(text):
    lines = [line.strip() for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def collect(project_dir):
    """One row per trial, in trial order (see COLUMNS)."""
    rows = []
    for trial_id in project.trial_ids(project_dir):
        state, result = project.load_trial(project_dir, trial_id)
        values = state.get("hyperparameters", {}).get("values", {})
        result = result or {}
        completed = state.get("status") == "COMPLETED"
        rows.append({
            "number": project.trial_number(trial_id),
            "trial": trial_id,
            "status": state.get("status"),
            "val_accuracy": state.get("score") if completed else None,
            "best_epoch": result.get("best_epoch"),
            "last_val_accuracy": result.get("last_val_accuracy"),
            "train_accuracy": result.get("metrics", {}).get("accuracy"),
            # In inference mode on a fixed training sample; None in trials written before it.
            "clean_train_accuracy": result.get("metrics", {}).get("clean_train_accuracy"),
            **{name: values.get(name) for name in TUNABLE},
            "epochs": result.get("epochs", values.get("tuner/epochs")),
            "trained_epochs": result.get("trained_epochs"),
            "seconds": result.get("seconds"),
            "seed": result.get("seed"),
            "from_trial": values.get("tuner/trial_id"),
            "worker": result.get("tuner_id"),
            "rss_mb_start": result.get("rss_mb_start"),
            "rss_mb_end": result.get("rss_mb_end"),
            "message": "" if completed else _last_line(state.get("message")),
        })
    return rows


def best_row(rows):
    """The completed trial with the highest validation accuracy (the
    earliest on ties), or None."""
    done = [r for r in rows if r["status"] == "COMPLETED" and r["val_accuracy"] is not None]
    return max(done, key=lambda r: (r["val_accuracy"], -rows.index(r))) if done else None


def best_config(best, settings, about):
    """The best trial as `python -m kcifar.experiments.<rung> --config FILE` reads it."""
    names = [r["name"] for r in settings["space"]]
    # The values were chosen at the search's batch size: the rung trains at it too.
    changes = {**{name: best[name] for name in names}, "batch_size": settings["config"]["batch_size"]}
    return {
        "rung": settings["rung"],
        "changes": changes,
        "val_accuracy": best["val_accuracy"],
        "trial": best["trial"],
        "trial_number": project.trial_number(best["trial"]),
        "search_epochs": best["epochs"],
        "note": "chosen on the validation split carved from the training set; the test set was not used",
        **about,
    }


def _about(project_dir, settings):
    """Where the figures come from: backend, device, data, seed."""
    first = None
    for trial_id in project.trial_ids(project_dir):
        _, result = project.load_trial(project_dir, trial_id)
        if result:
            first = result
            break
    return {
        "project": os.path.basename(os.path.abspath(project_dir)),
        "tuner": settings["tuner"],
        "seed": settings["seed"],
        "backend": settings["backend"],
        "device": first.get("device") if first else None,
        "keras_version": first.get("keras_version") if first else None,
        "data": settings["data"]["description"],
        "train_images": settings["data"]["train"],
        "val_images": settings["data"]["val"],
    }


def write(project_dir, plot=True):
    """Writes summary.csv, summary.json, best_config.json (once a trial has
    completed) and summary.png; returns the summary dict."""
    settings = project.read_settings(project_dir)
    rows = collect(project_dir)
    best = best_row(rows)
    about = _about(project_dir, settings)
    counts = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    summary = {
        "format": project.FORMAT,
        **about,
        "rung": settings["rung"],
        "search_epochs": settings["epochs"],
        "space": settings["space"],
        "objective": project.OBJECTIVE,
        "counts": counts,
        "best": best,
        "trials": rows,
    }
    files.write_csv(os.path.join(project_dir, "summary.csv"), rows, COLUMNS)
    files.write_json(os.path.join(project_dir, "summary.json"), summary)
    if best is not None:
        files.write_json(os.path.join(project_dir, "best_config.json"), best_config(best, settings, about))
    if plot:
        plot_trials(summary, os.path.join(project_dir, "summary.png"))
    return summary


def plot_trials(summary, path):
    """Validation accuracy against each searched value, and dropout against
    lambda coloured by validation accuracy when both are searched."""
    import matplotlib

    matplotlib.use("Agg")  # files only, also on machines without a display
    import matplotlib.pyplot as plt

    names = [r["name"] for r in summary["space"]]
    logs = {r["name"]: r["sampling"] == "log" for r in summary["space"]}
    limits = {r["name"]: _padded(r["low"], r["high"], logs[r["name"]]) for r in summary["space"]}
    done = [r for r in summary["trials"] if r["val_accuracy"] is not None]
    pair = "dropout" in names and "l2" in names
    panels = len(names) + pair
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.8), squeeze=False)
    axes = axes[0]
    acc = [r["val_accuracy"] for r in done]
    best = summary["best"]
    for ax, name in zip(axes, names):
        ax.scatter([r[name] for r in done], acc, s=22, c="tab:blue")
        if best:
            ax.scatter([best[name]], [best["val_accuracy"]], marker="*", s=180, c="tab:red", label="best")
            ax.legend(loc="best", fontsize=8)
        ax.set_xscale("log" if logs[name] else "linear")
        ax.set_xlim(*limits[name])  # the whole searched range: where it looked, and where not
        ax.set_xlabel(LABELS[name])
        ax.set_ylabel("best validation accuracy")
        ax.grid(alpha=0.3)
    if pair:
        ax = axes[-1]
        points = ax.scatter([r["dropout"] for r in done], [r["l2"] for r in done], c=acc, cmap="viridis", s=40)
        if best:
            ax.scatter([best["dropout"]], [best["l2"]], marker="*", s=220, facecolors="none", edgecolors="tab:red")
        ax.set_yscale("log" if logs["l2"] else "linear")
        ax.set_xlim(*limits["dropout"])
        ax.set_ylim(*limits["l2"])
        ax.set_xlabel(LABELS["dropout"])
        ax.set_ylabel(LABELS["l2"])
        fig.colorbar(points, ax=ax, label="validation accuracy")
    epochs = sorted({r["epochs"] for r in done if r["epochs"]})
    epochs_text = "/".join(map(str, epochs)) if epochs else str(summary["search_epochs"])
    fig.suptitle(
        f"{summary['rung']} {summary['tuner']} search: {counted(len(done), 'trial')}, {epochs_text} epochs, "
        f"seed {summary['seed']}, {summary['backend']} on {summary['device']}\n"
        f"{_short(summary['data'])}, {summary['train_images']} train / {summary['val_images']} val images",
        fontsize=8,
    )
    fig.tight_layout()
    with files.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def _padded(low, high, log):
    if log:
        return low / 1.5, high * 1.5
    pad = 0.03 * (high - low)
    return low - pad, high + pad


def _short(description, width=110):
    return description if len(description) <= width else description[: width - 3] + "..."


def format_best(summary):
    best = summary["best"]
    if best is None:
        return "no completed trial yet"
    values = ", ".join(
        f"{name} {best[name]:.4g}" for name in TUNABLE if best.get(name) is not None and not math.isnan(best[name])
    )
    return (
        f"best: {project.trial_label(best['trial'])} val_accuracy {best['val_accuracy']:.4f} ({values}; "
        f"{counted(best['epochs'], 'epoch')}) [{summary['backend']}, {summary['device']}, seed {summary['seed']}]"
    )


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0].startswith("-"):
        print("usage: python -m kcifar.tune.summary PROJECT_DIR", file=sys.stderr)
        return 2
    project_dir = argv[0]
    if not os.path.exists(os.path.join(project_dir, project.SETTINGS_FILE)):
        print(f"kcifar.tune.summary: error: {project_dir} is not a kcifar.tune project "
              f"(no {project.SETTINGS_FILE})", file=sys.stderr)
        return 2
    try:
        summary = write(project_dir)
    except (OSError, ValueError, KeyError) as e:
        print(f"kcifar.tune.summary: error: {project_dir}: unreadable trial files ({e})", file=sys.stderr)
        return 2
    print(f"{counted(len(summary['trials']), 'trial')} ({', '.join(f'{n} {k.lower()}' for k, n in summary['counts'].items())})")
    print(format_best(summary))
    print(f"wrote {project_dir}/summary.csv, summary.json, summary.png"
          + (", best_config.json" if summary["best"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
