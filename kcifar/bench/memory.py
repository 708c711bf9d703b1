"""Resident memory: of a process, and the peak of a real training run.

psutil reads what each system offers (`/proc` on Linux, the task info on
macOS, the working set on Windows), so figures are in MiB everywhere; the
tuner's per-trial figures and the bench's peak of a training run both come
from here. The peak run is the project's own command line, in a child.
"""

import math
import os
import subprocess
import sys
import tempfile
import time

import psutil

MIB = 2**20
TRAIN_SPLIT = 45000  # training images of the real split (50000 less 5000 validation)


def resident_mb(pid=None):
    """Resident memory of a process in MiB, or None when it cannot be read.

    Args:
        pid: the process (default: this one).
    """
    try:
        return round(psutil.Process(pid).memory_info().rss / MIB, 1)
    except psutil.Error:
        return None


def wait_peak_mb(child, interval=0.05):
    """Waits for `child` to exit and returns its peak resident memory in MiB.

    Windows keeps the peak itself (`peak_wset`); Linux and macOS only give the
    current figure, so it is sampled every `interval` seconds and a spike
    shorter than that can be missed (a training run grows and stays high, so
    its peak is not).

    Args:
        child: a `subprocess.Popen`.
        interval: seconds between samples.

    Returns:
        (exit status, peak MiB); the peak is None when the process could not
        be read at all (it exited at once, or belongs to another user).
    """
    peak = None
    try:
        process = psutil.Process(child.pid)
    except psutil.Error:
        process = None
    while True:
        if process is not None:
            try:
                info = process.memory_info()
                rss = getattr(info, "peak_wset", info.rss)
                peak = rss if peak is None else max(peak, rss)
            except psutil.Error:  # exited between two samples
                pass
        try:
            status = child.wait(timeout=interval)
            break
        except subprocess.TimeoutExpired:
            continue
    return status, None if peak is None else round(peak / MIB, 1)


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
