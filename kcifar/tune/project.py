"""A search's project folder `<out>/<project>/`: what is in it, and whether
a command may continue it.

keras-tuner's own files: oracle.json, <tuner id>.json, trial_<id>/trial.json,
trial_<id>/checkpoint.weights.h5 (weights of the trial's best epoch).
Ours:

  kcifar_tune.json              format, keras-tuner version, search settings;
                                written first, compared on every later run
  trial_<id>/history.csv        one row per finished epoch of the trial
  trial_<id>/checkpoint.npz     the trial's state after its last finished
                                epoch (deleted when the trial ends)
  trial_<id>/kcifar_trial.json  the trial's result (written last)
  summary.csv, summary.json, summary.png, best_config.json

Nothing here imports Keras, so reading a folder is quick.
"""

import importlib.metadata
import json
import os
import re
import shutil
import subprocess

from kcifar import files
from kcifar.data.loader import comparable_description

FORMAT = 1  # of kcifar_tune.json and kcifar_trial.json; bump on incompatible changes
SETTINGS_FILE = "kcifar_tune.json"
TRIAL_FILE = "kcifar_trial.json"
OBJECTIVE = "val_accuracy"
TUNERS = ("random", "bayesian", "hyperband")
# Settings that may change between runs of one search: more trials extend it.
EXTENSIBLE = ("max_trials",)
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class SearchError(Exception):
    """A search that cannot start or go on; the message is one line."""


def keras_tuner_version():
    return importlib.metadata.version("keras-tuner")


def check_name(name, what="--project"):
    """A project or worker name: one folder or file name, nothing more."""
    if not NAME.fullmatch(name or ""):
        raise SearchError(
            f"{what} must be letters, digits, '_', '.' or '-', not starting with '.' or '-'. Received: {name!r}"
        )
    return name


def _series(version):
    return ".".join(str(version).split(".")[:2])


def committed(folder):
    """Whether git tracks a file in `folder` (False outside a git checkout,
    or where git is not installed)."""
    try:
        listed = subprocess.run(["git", "ls-files", "--", "."], cwd=folder, capture_output=True, text=True,
                                timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return bool(listed.strip())


def advice(project_dir):
    """What a refused search folder leaves to do. --overwrite is named only
    where it would act, with what it deletes: never for committed results."""
    if committed(project_dir):
        return "choose another --project or --out (its files are committed to git)"
    return "choose another --project or --out; --overwrite deletes this search"


def prepare(project_dir, settings, overwrite=False, create=True):
    """Checks (or writes) the project's kcifar_tune.json.

    Args:
        project_dir: `<out>/<project>`.
        settings: the search settings (a JSON-able dict).
        overwrite: delete the project first; only a folder that holds a tuner
            project and no file git tracks is ever deleted.
        create: write kcifar_tune.json when the folder is new. A worker
            passes False: it must find the chief's folder.

    Returns:
        True when an existing search is continued.
    """
    settings = json.loads(json.dumps(settings))  # as it reads back: tuples become lists
    settings_path = os.path.join(project_dir, SETTINGS_FILE)
    present = os.path.isdir(project_dir) and bool(os.listdir(project_dir))
    searched = present and any(os.path.exists(os.path.join(project_dir, f)) for f in (SETTINGS_FILE, "oracle.json"))
    if present and overwrite:
        if not searched:
            raise SearchError(f"{project_dir} does not hold a tuner project; --overwrite deletes only those")
        if committed(project_dir):
            # A search worth keeping is committed (tuner_runs/ holds one): git, not --overwrite, lets it go.
            raise SearchError(f"{project_dir} holds files committed to git, which --overwrite never deletes; "
                              "choose another --project or --out")
        shutil.rmtree(project_dir)
        present = False
    if not present:
        if not create:
            raise SearchError(
                f"{settings_path} not found: a worker needs the chief's folder on a shared filesystem "
                "(same --out and --project), and the chief started first"
            )
        os.makedirs(project_dir, exist_ok=True)
        files.write_json(settings_path, {"format": FORMAT, "keras_tuner": keras_tuner_version(), "settings": settings})
        return False
    try:
        saved = files.read_json(settings_path)
    except FileNotFoundError:
        # A keras-tuner project (oracle.json) is a search --overwrite may delete; other folders are not.
        raise SearchError(f"{project_dir} is not a kcifar.tune project (no {SETTINGS_FILE}); "
                          + (advice(project_dir) if searched else "choose another --project or --out"))
    except (OSError, ValueError) as e:
        raise SearchError(f"{settings_path} is unreadable ({e}); {advice(project_dir)}")
    found = saved.get("format") if isinstance(saved, dict) else None
    if found != FORMAT or not isinstance(saved.get("settings"), dict):
        raise SearchError(
            f"{project_dir} was written by kcifar.tune format {found} (this is format {FORMAT}); "
            f"{advice(project_dir)}"
        )
    if _series(saved.get("keras_tuner")) != _series(keras_tuner_version()):
        raise SearchError(
            f"{project_dir} was written by keras-tuner {saved.get('keras_tuner')} (this is "
            f"{keras_tuner_version()}); use that version, or {advice(project_dir)}"
        )
    old = {k: v for k, v in saved["settings"].items() if k not in EXTENSIBLE}
    new = {k: v for k, v in settings.items() if k not in EXTENSIBLE}
    for both in (old, new):
        if isinstance(both.get("data"), dict) and isinstance(both["data"].get("description"), str):
            # Older searches hold a full path, or the lossy mark on a folder of PNGs.
            both["data"] = {**both["data"], "description": comparable_description(both["data"]["description"])}
    if old != new:
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise SearchError(
            f"{project_dir} holds a search with other settings ({', '.join(changed)} differ); "
            f"use the same flags, or {advice(project_dir)}"
        )
    if create and settings.get("max_trials") != saved["settings"].get("max_trials"):
        saved["settings"]["max_trials"] = settings.get("max_trials")
        files.write_json(settings_path, saved)
    return True


def read_settings(project_dir):
    return files.read_json(os.path.join(project_dir, SETTINGS_FILE))["settings"]


def trial_number(trial_id):
    """The number keras-tuner shows for a trial ("Running Trial #3", "Trial 3
    Complete"): its id, counted from 0, plus one; None for an id that is no
    count. The id itself, as keras-tuner stores it ("2", "02", "0002"), names
    the trial's folder trial_<id> and the rows of summary.json."""
    return int(trial_id) + 1 if str(trial_id).isdigit() else None


def trial_label(trial_id):
    """A trial as kcifar's messages name it, e.g. "trial 3 (trial_02)":
    keras-tuner's number, then the trial's folder."""
    number = trial_number(trial_id)
    return f"trial_{trial_id}" if number is None else f"trial {number} (trial_{trial_id})"


def trial_ids(project_dir):
    """Ids of the trials in a project folder, in trial order."""
    ids = []
    for name in os.listdir(project_dir) if os.path.isdir(project_dir) else ():
        if name.startswith("trial_") and os.path.exists(os.path.join(project_dir, name, "trial.json")):
            ids.append(name[len("trial_"):])
    return sorted(ids, key=lambda t: (0, int(t), t) if t.isdigit() else (1, 0, t))


def load_trial(project_dir, trial_id):
    """(keras-tuner's trial state, our result or None) of one trial."""
    folder = os.path.join(project_dir, f"trial_{trial_id}")
    with open(os.path.join(folder, "trial.json")) as f:
        state = json.load(f)
    path = os.path.join(folder, TRIAL_FILE)
    return state, (files.read_json(path) if os.path.exists(path) else None)
