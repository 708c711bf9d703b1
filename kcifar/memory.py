"""Resident memory of a process, the same way on Linux, macOS and Windows.

psutil reads what each system offers (`/proc` on Linux, the task info on
macOS, the working set on Windows), so figures are in MiB everywhere; the
tuner's per-trial figures and the bench's peak of a training run both come
from here.
"""

import subprocess

import psutil

MIB = 2**20


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
