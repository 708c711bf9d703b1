"""The bench's child processes: their environment, the patched copy of the
package they may run (`--patch`), and the one line a failed child leaves."""

import os
import shutil
import subprocess

import kcifar
from kcifar.bench.record import recorded_arg
from kcifar.command import UsageError


def backend_env(backend, root):
    """The environment of a backend's child: its backend, the package, and
    TensorFlow's C++ logs kept to errors."""
    paths = [root, os.path.dirname(os.path.dirname(kcifar.__file__)), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": os.pathsep.join(p for p in paths if p),
            "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}


def patched_root(patches, tmp):
    """A copy of the kcifar package with the diffs applied; its parent folder."""
    shutil.copytree(os.path.dirname(kcifar.__file__), os.path.join(tmp, "kcifar"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    for patch in patches:
        done = subprocess.run(["git", "apply", "--include=kcifar/*", os.path.abspath(patch)],
                              cwd=tmp, capture_output=True, text=True)
        if done.returncode != 0:
            first = (done.stderr.strip().splitlines() or ["git apply failed"])[0]
            raise UsageError(f"--patch {patch} does not apply: {first}")
    return tmp


def patch_records(patches):
    """The diffs as the results file keeps them, each with its file's name."""
    records = []
    for patch in patches:
        with open(patch) as f:
            records.append({"file": recorded_arg(patch), "diff": f.read()})
    return records


def last_line(stderr, returncode):
    """What a failed child said last, or its exit status when it said nothing."""
    lines = stderr.strip().splitlines()
    return lines[-1] if lines else f"exit status {returncode}"
