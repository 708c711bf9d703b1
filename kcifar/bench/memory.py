"""Peak resident memory of a real training run: the project's own command
line, in a child process, watched by `kcifar.memory`."""

import math
import os
import subprocess
import sys
import tempfile
import time

from kcifar.memory import wait_peak_mb

TRAIN_SPLIT = 45000  # training images of the real split (50000 less 5000 validation)


def training_rss(env, data, batch_size=128, steps=200, train_size=TRAIN_SPLIT, cwd=None):
    """Runs `python -m kcifar.experiments.baseline` for about `steps` steps.

    The whole data set is loaded (as a run does), then a stratified subset of
    steps x batch_size images (at most the split) is trained on for as many
    epochs as the steps need, with its validation pass, test evaluation and
    model save.

    Args:
        env: the child's environment (KERAS_BACKEND set).
        data: a source for kcifar.data.load.
        batch_size: images per step.
        steps: training steps wanted.
        train_size: images in the training split of `data`.
        cwd: the child's folder (None: this process's).

    Returns:
        dict with peak_rss_mb, steps, seconds, command, and error (None or
        the last line the child wrote to stderr).
    """
    limit = min(steps * batch_size, train_size)
    epochs = math.ceil(steps * batch_size / limit)
    with tempfile.TemporaryDirectory(prefix="kcifar-rss-") as out:
        command = [
            sys.executable, "-m", "kcifar.experiments.baseline", "--data", data,
            "--epochs", str(epochs), "--batch-size", str(batch_size), "--limit-train", str(limit),
            "--out", out, "--quiet", "--overwrite",
        ]
        with tempfile.TemporaryFile() as err:
            start = time.perf_counter()
            child = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
            status, peak_mb = wait_peak_mb(child)
            seconds = time.perf_counter() - start
            err.seek(0)
            lines = err.read().decode(errors="replace").strip().splitlines()
    return {
        "peak_rss_mb": peak_mb,
        "steps": epochs * math.ceil(limit / batch_size),
        "seconds": round(seconds, 1),
        # The data by its file name, the run folder as TMP: nothing of this machine's layout.
        "command": " ".join(["python", *(os.path.basename(os.path.abspath(c)) if c == data else c
                                         for c in command[1:])]).replace(out, "TMP"),
        "error": None if status == 0 else (lines[-1] if lines else f"exit status {status}"),
    }
