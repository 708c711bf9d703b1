"""Reading run folders and tuner summaries, and grouping runs into table rows.

A run folder is what `kcifar.train.train()` writes; the report needs its
metrics.json and history.csv (settings.json when present), never its
model.keras, which is not committed. A folder that cannot be read is skipped
with a one-line reason (`Skipped`), never half-used.
"""

import dataclasses
import json
import math
import os
import re

from kcifar import files
# FULL is also the budget of runs that record none: each rung's own schedule.
from kcifar.budgets import CUSTOM, FULL, apply, recorded
from kcifar.data.loader import SUBSET_NOTE, comparable_description
from kcifar import experiments
from kcifar.experiments import BEYOND, RUNGS
from kcifar import results
from kcifar.results import HISTORY_FILE, METRICS_FILE, METRICS_FORMAT, PARTIAL_FILE, PARTIAL_FORMAT, SETTINGS_FILE

# What the report reads from metrics.json; a file without one of these is
# not a finished run of a format this code knows.
METRICS_KEYS = (
    "format", "name", "rung", "change", "epochs", "batch_size", "seed", "precision",
    "test_accuracy", "test_loss", "per_class_accuracy", "confusion_matrix", "train_accuracy", "gap",
    "val_accuracy", "wall_seconds", "images_per_second", "backend", "backend_version",
    "keras_version", "device", "data", "class_names",
)
NUMBERS = ("rung", "epochs", "seed", "test_accuracy", "train_accuracy", "gap", "wall_seconds")
DATA_KEYS = ("description", "source", "format", "checksum", "train", "val", "test", "notes")
PARTIAL_KEYS = ("format", "name", "rung", "epochs_done", "epochs_planned", "reason", "stopped_at", "val_accuracy",
                "backend", "device")
# What settings.json records beside the config and changes what a run is:
# the pretrained step's starting weights (--weights, default ImageNet's).
RECIPE_DEFAULTS = {"weights": "imagenet"}
# Config fields that are not part of what a rung is (epochs has its own column).
NOT_VARIANT = ("name", "rung", "change", "epochs")
# Where kcifar.budgets cannot say what a budget trains, these fields belong
# to the budget (its epochs, and the learning-rate decay rescaled to them).
BUDGET_FIELDS = ("epochs", "lr_decay")
BUDGET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class Skipped(Exception):
    """A run folder or tuner summary the report leaves out; the message says why."""


@dataclasses.dataclass(frozen=True)
class Run:
    """One finished run: its folder, metrics.json, history.csv rows, settings.json."""

    path: str
    metrics: dict
    history: list
    settings: dict = None

    @property
    def recorded_budget(self):
        """The training budget the run was made with (older runs: "full")."""
        return self.metrics.get("budget") or FULL

    @property
    def budget(self):
        """The section the run belongs to (`section`)."""
        return section(self.recorded_budget, self.metrics["name"], self.config, self.metrics["data"])

    @property
    def code(self):
        """{"commit", "dirty"} of the code that ran, or None where not recorded."""
        code = self.metrics.get("code")
        return code if isinstance(code, dict) else None

    @property
    def config(self):
        """The config the run trained, as settings.json holds it; {} where
        the run has no settings.json."""
        return (self.settings or {}).get("config", {})

    @property
    def variant(self):
        """(field, value) pairs where the run's config differs from the one
        its rung (or step beyond the ladder) trains under its budget."""
        return tuple((k, v) for k, v, _ in self.differences)

    @property
    def differences(self):
        """(field, the run's value, the rung's value as the code stands), for
        each field of `variant`."""
        module = step(self.metrics["name"]) if self.settings else None
        if module is None:
            return ()
        default, ignored = budget_config(module.CONFIG, self.recorded_budget)
        default = default.to_dict()
        changed = tuple(
            (k, v, default[k]) for k, v in sorted(self.config.items())
            if k not in NOT_VARIANT + ignored and k in default and _canonical(v) != _canonical(default[k])
        )
        return changed + tuple((k, self.settings[k], v) for k, v in RECIPE_DEFAULTS.items()
                               if self.settings.get(k, v) != v)

    @property
    def series(self):
        """What it ran on: runs of one series share a colour and are one
        computation. The kind of device alone ("cpu", "gpu"): which CPU ran
        it changes the seconds, not the figures, and a run resumed on
        another CPU stays in its series."""
        m = self.metrics
        return (m["backend"], m["device"].split(":")[0], m["precision"], data_key(m["data"]))

    @property
    def ladder(self):
        """The folder that holds a full-schedule run's folder: the runs of one
        ladder, trained together, are kept in one folder (experiments/full);
        "" for the other budgets, each one section whatever the folder."""
        return os.path.dirname(self.path) if self.budget == FULL else ""

    @property
    def group(self):
        """Runs of one group differ by their seed alone."""
        m = self.metrics
        # The rung's own config first, then its variants.
        variant = (len(self.variant), _canonical(self.variant))
        return (budget_order(self.budget), self.ladder, is_beyond(m["name"]), m["rung"], m["name"], variant,
                m["epochs"], m["batch_size"]) + self.series

    @property
    def sort_key(self):
        return self.group + (self.metrics["seed"], self.path)


@dataclasses.dataclass(frozen=True)
class Partial:
    """A run that a time limit stopped: its folder, partial.json, history.csv
    rows and settings.json. It has no test accuracy (the test set is measured
    once, for complete runs) and stays out of the ladder's figures."""

    path: str
    marker: dict
    history: list
    settings: dict

    @property
    def budget(self):
        return section(self.settings.get("budget") or FULL, self.marker["name"], self.settings.get("config", {}),
                       self.settings.get("data", {}))

    @property
    def sort_key(self):
        m = self.marker
        return (budget_order(self.budget), is_beyond(m["name"]), m["rung"], m["name"], m["backend"],
                self.settings.get("seed", 0), self.path)


def section(budget, name, config, data):
    """Where a run belongs: its budget, but "custom" for a run of the full
    budget on a subset of the training split (--limit-train) or with other
    epochs than its rung's (--epochs): beside the lecture's figures it would
    read as the rung's result.

    Args:
        budget: the recorded budget.
        name: the rung's name.
        config: the run's config as settings.json holds it ({} if none).
        data: the run's data record (its notes name a subset).
    """
    module = step(name)
    rung_epochs = module.CONFIG.epochs if module is not None else config.get("epochs")
    subset = any(note.startswith(SUBSET_NOTE) for note in data.get("notes", ()))
    return recorded(budget, config.get("epochs", rung_epochs), rung_epochs, subset)


def step(name):
    """The module of a rung or of a step beyond the ladder (its CONFIG and
    LECTURE), imported by name.

    Args:
        name: a run's name (metrics.json's "name").

    Returns:
        The module, or None for a name that is neither, such as a rung of
        another version of the ladder: such a run is shown without a rung's
        config to compare with.
    """
    try:
        return experiments.step(name)
    except ValueError:
        return None


def is_beyond(name):
    """Whether `name` is a step beyond the ladder (`kcifar.experiments.BEYOND`)."""
    return name in BEYOND


def step_label(number, name):
    """How the report names a run's step: "4 trick4" for a rung, "beyond the
    ladder: pretrained" for a step after it, whose number is no rung's.

    Args:
        number: the recorded rung number.
        name: the recorded name.
    """
    return f"beyond the ladder: {name}" if is_beyond(name) else f"{number} {name}"


def _canonical(value):
    return json.dumps(value, sort_keys=True)


def budget_order(budget):
    """Sorts the full budget first, then the named ones by name, then custom runs."""
    return (budget != FULL, budget == CUSTOM, budget)


def budget_config(config, budget):
    """The config `budget` trains for a rung's `config`, and the fields left
    out of the comparison because kcifar.budgets could not say."""
    if budget == FULL:
        return config, ()
    try:
        return apply(config, budget), ()
    except ValueError:  # a budget this version of kcifar does not know
        return config, BUDGET_FIELDS


def code_text(code):
    """The code version of a run: "1a2b3c4", "1a2b3c4 + uncommitted changes" or "unknown"."""
    if not code or not isinstance(code.get("commit"), str):
        return "unknown"
    return code["commit"][:7] + (" + uncommitted changes" if code.get("dirty") else "")


def data_name(data):
    """The file or folder name of a run's data (older runs recorded a path)."""
    return os.path.basename(data["source"].rstrip("/")) or data["source"]


def data_key(data):
    return (data["checksum"], data["train"], data["val"], data["test"], comparable_description(data["description"]))


def data_label(data):
    """A short line naming a run's data: the file, its checksum, the split sizes."""
    # The loader's description says when the pixels are a lossy JPEG copy.
    lossy = ", JPEG mirror" if "JPEG mirror" in data["description"] else ""
    return (f"{data_name(data)} ({data['format']}{lossy}, "
            f"sha256:{data['checksum'][:8]}): {data['train']} train / {data['val']} val / "
            f"{data['test']} test images")


def find_runs(root):
    """Folders under `root` that hold a run, complete or not, sorted.

    A run folder is not searched further; tuner project folders (with an
    oracle.json or kcifar_tune.json), study folders (with a plan.json) and
    hidden folders are not searched.
    """
    found = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        # A study's runs (its plan.json, `kcifar.study`) are variants judged
        # on validation by its own page, never rows of a ladder.
        if "oracle.json" in names or "kcifar_tune.json" in names or "plan.json" in names:
            subfolders[:] = []
        elif any(name in names for name in results.RUN_FILES):  # a run folder, complete or not
            found.append(folder)
            subfolders[:] = []
    return sorted(found)


def load_partial(path):
    """Reads and checks a run folder a time limit stopped (no checkpoint
    needed: checkpoints do not travel); raises Skipped with the reason."""
    marker = _read_versioned(os.path.join(path, PARTIAL_FILE), PARTIAL_FORMAT, "marker")
    missing = [k for k in PARTIAL_KEYS if k not in marker]
    if missing:
        raise Skipped(f"{PARTIAL_FILE} lacks {', '.join(missing)}")
    history = read_history(path)
    if len(history) != marker["epochs_done"]:
        raise Skipped(f"{HISTORY_FILE} has {len(history)} epochs but {PARTIAL_FILE} says {marker['epochs_done']}: "
                      "the run went on after its stop and was interrupted; finish it with --resume")
    return Partial(path=os.path.normpath(path), marker=marker, history=history,
                   settings=_read_settings(path, required=True))


def load_run(path):
    """Reads and checks one run folder; raises Skipped with the reason."""
    if not os.path.isdir(path):
        raise Skipped("not a folder" if os.path.exists(path) else "no such folder")
    metrics_path = os.path.join(path, METRICS_FILE)
    if not os.path.exists(metrics_path):
        raise Skipped("no metrics.json: the run is incomplete (still training or interrupted; "
                      "finish it with --resume)")
    metrics = _read_versioned(metrics_path, METRICS_FORMAT, "results file")
    data = metrics.get("data") if isinstance(metrics.get("data"), dict) else {}
    missing = [k for k in METRICS_KEYS if k not in metrics] + [f"data.{k}" for k in DATA_KEYS if k not in data]
    if missing:
        raise Skipped(f"metrics.json lacks {', '.join(missing)}")
    wrong = [k for k in NUMBERS if isinstance(metrics[k], bool) or not isinstance(metrics[k], (int, float))]
    if wrong:
        raise Skipped(f"metrics.json has no number for {', '.join(wrong)}")
    if "budget" in metrics and not (isinstance(metrics["budget"], str) and BUDGET_NAME.fullmatch(metrics["budget"])):
        raise Skipped(f"metrics.json has budget {metrics['budget']!r}, not a budget name")
    history = read_history(path)
    if len(history) != metrics["epochs"]:
        raise Skipped(f"{HISTORY_FILE} has {len(history)} epochs but {METRICS_FILE} says {metrics['epochs']}")
    return Run(path=os.path.normpath(path), metrics=metrics, history=history, settings=_read_settings(path))


def _read_versioned(path, newest, kind):
    """A results file's JSON object, of a format this kcifar reads; raises
    Skipped with the reason. `kind` names the file in the reason."""
    name = os.path.basename(path)
    obj = _read_json(path)
    if not isinstance(obj, dict) or not isinstance(obj.get("format"), int):
        raise Skipped(f"{name} has no format number: not a kcifar {kind}")
    if obj["format"] > newest:
        raise Skipped(f"{name} has format {obj['format']}, newer than this kcifar reads ({newest}); update kcifar")
    return obj


def _read_settings(folder, required=False):
    """A run folder's settings.json, which must hold a config; None where
    there is none and it is not `required`."""
    path = os.path.join(folder, SETTINGS_FILE)
    if not os.path.exists(path):
        if required:
            raise Skipped("no settings.json")
        return None
    settings = _read_json(path)
    if not isinstance(settings, dict) or not isinstance(settings.get("config"), dict):
        raise Skipped("settings.json has no config")
    return settings


def read_history(folder):
    """`kcifar.results.read_history`, its refusal a reason to skip the run."""
    try:
        return results.read_history(folder)
    except results.RunFolderError as e:
        raise Skipped(str(e))


def _read_json(path):
    try:
        return files.read_json(path)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise Skipped(f"{os.path.basename(path)} is unreadable ({e})")


def collect(paths):
    """Loads every run under `paths` (run folders or folders of them).

    Returns (runs sorted by rung, config, backend, ... and seed; `Partial`
    runs that a time limit stopped, sorted likewise; skipped as (path,
    reason) pairs in the order met).
    """
    runs, partial, skipped = [], [], []
    for path in paths:
        found = [path] if not os.path.isdir(path) else find_runs(path)
        if os.path.isdir(path) and not found:
            skipped.append((path, "no run folders in it"))
        for folder in found:
            # A time limit's marker beside no metrics.json: a partial run.
            stopped = results.state(folder) == "partial"
            try:
                if stopped:
                    partial.append(load_partial(folder))
                else:
                    runs.append(load_run(folder))
            except Skipped as e:
                skipped.append((folder, str(e)))
    # A folder named twice counts once, and so does a seed run twice (a copy
    # of a folder, say): a row's runs differ by their seed, and a repeat
    # would count as one more seed.
    unique = {run.path: run for run in runs}
    kept, seen = [], {}
    for run in sorted(unique.values(), key=lambda run: run.sort_key):
        key = run.group + (run.metrics["seed"],)
        if key in seen:
            skipped.append((run.path, f"the same settings, data and seed {run.metrics['seed']} as {seen[key]}, "
                                      "which is used"))
        else:
            seen[key] = run.path
            kept.append(run)
    stops = {run.path: run for run in partial}
    return kept, sorted(stops.values(), key=lambda run: run.sort_key), skipped


@dataclasses.dataclass(frozen=True)
class Group:
    """Runs of one rung and config on one backend, device and data set:
    one row of the table, one bar of the ladder (mean and spread over seeds)."""

    runs: tuple

    @property
    def first(self):
        return self.runs[0].metrics

    def values(self, key):
        return [run.metrics[key] for run in self.runs]

    def mean(self, key):
        return math.fsum(self.values(key)) / len(self.runs)

    def spread(self, key):
        """Sample standard deviation over seeds; None for one seed."""
        values = self.values(key)
        if len(values) < 2:
            return None
        mean = self.mean(key)
        return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))

    @property
    def budget(self):
        return self.runs[0].budget

    @property
    def ladder(self):
        return self.runs[0].ladder

    @property
    def beyond(self):
        """Whether the group's runs are of a step beyond the ladder."""
        return is_beyond(self.first["name"])

    @property
    def label(self):
        """The name the table and figures give the group's step (`step_label`)."""
        return step_label(self.first["rung"], self.first["name"])

    @property
    def lecture(self):
        # A step beyond the ladder has a number after the last rung's, and
        # the lecture no figure for it.
        return None if self.beyond else lecture_of(self.first["rung"])


def lecture_of(number):
    """The test accuracy the lecture reports for rung `number`, or None."""
    return step(RUNGS[number]).LECTURE if 0 <= number < len(RUNGS) else None


def lecture_text(value):
    """The lecture's figure as it gives it, e.g. 0.866 -> "~86.6%"."""
    return f"~{round(100 * value, 2):g}%"


def group_runs(runs):
    """Groups sorted runs that differ by their seed alone, in order."""
    groups = {}
    for run in runs:
        groups.setdefault(run.group, []).append(run)
    return [Group(tuple(members)) for members in groups.values()]


def budget_figure(kind, budget):
    """File name of a budget's "ladder" or "epochs" figure: ladder.png for the
    full budget, ladder-small.png for the small one."""
    return f"{kind}.png" if budget == FULL else f"{kind}-{budget}.png"


def by_budget(groups):
    """{budget: its groups, in order}, the full budget first and always there
    (the lecture's figures belong to it), then the others that have runs."""
    found = {FULL: []}
    for group in groups:
        found.setdefault(group.budget, []).append(group)
    return {b: found[b] for b in sorted(found, key=budget_order)}


def by_ladder(groups):
    """{ladder folder: its groups, in order} of the full schedule's groups,
    the current ladder first (`current_ladder`); {"": []} where there are none."""
    found = {}
    for group in groups:
        found.setdefault(group.ladder, []).append(group)
    if not found:
        return {"": []}
    first = current_ladder(found)
    return {first: found[first], **{k: v for k, v in sorted(found.items()) if k != first}}


def current_ladder(ladders):
    """Which of {folder: groups} is the current ladder: the one with the most
    rungs trained with their config as the code stands (no variant), then
    the most rungs, then the last folder by name."""
    def score(folder):
        groups = [g for g in ladders[folder] if not g.beyond]
        own = {g.first["rung"] for g in groups if not g.runs[0].variant}
        return len(own), len({g.first["rung"] for g in groups}), folder

    return max(ladders, key=score)


def load_tuner(folder):
    """The summary.json of a kcifar.tune project; raises Skipped when it
    cannot be read. (kcifar.tune draws the search's own figure, summary.png.)"""
    from kcifar.tune.project import FORMAT

    if not os.path.isdir(folder):
        raise Skipped("not a folder" if os.path.exists(folder) else "no such folder")
    path = os.path.join(folder, "summary.json")
    if not os.path.exists(path):
        raise Skipped("no summary.json (not a kcifar.tune project, or no trial has ended yet)")
    summary = _read_json(path)
    if not isinstance(summary, dict) or not isinstance(summary.get("format"), int):
        raise Skipped("summary.json has no format number: not a kcifar.tune summary")
    if summary["format"] > FORMAT:
        raise Skipped(f"summary.json has format {summary['format']}, newer than this kcifar reads ({FORMAT})")
    if not isinstance(summary.get("trials"), list) or "best" not in summary:
        raise Skipped("summary.json lacks its trials or best trial")
    return summary


def short_names(paths):
    """Distinct file-name-safe names: the shortest path endings that differ.

    E.g. a/x/baseline-seed0 and b/x/baseline-seed0 become
    a_x_baseline-seed0 and b_x_baseline-seed0; lone folders keep their name.
    """
    parts = {p: [c for c in os.path.abspath(p).split(os.sep) if c] for p in paths}
    names = {}
    for path, components in parts.items():
        for k in range(1, len(components) + 1):
            ending = components[-k:]
            if sum(c[-k:] == ending for c in parts.values()) == 1:
                break
        names[path] = "_".join(ending)
    return names
