"""Timed windows, measured in turns so that every path sees the same noise.

A path is a function window(steps) -> (wall seconds, CPU seconds) that runs
`steps` training steps and waits for the last. The paths take turns, one
window each per round (the order rotating), so a slow spell on a shared
machine hits them all; a ratio of two paths is the median of their
per-round ratios.
"""

import statistics
import time


def clocks():
    """(wall, process CPU) time now; CPU time counts every thread."""
    return time.perf_counter(), time.process_time()


def since(start):
    wall, cpu = clocks()
    return wall - start[0], cpu - start[1]


def interleave(paths, steps, windows, warmup, log=lambda line: None):
    """Runs every path for `windows` rounds of `steps` steps, in turns.

    Args:
        paths: dict name -> window(steps) -> (wall seconds, CPU seconds).
        steps: steps per timed window.
        windows: timed windows per path.
        warmup: untimed steps per path first (compilation, caches).
        log: called with one line per finished round.

    Returns:
        dict name -> list of (wall, cpu) per window, in round order.
    """
    names = list(paths)
    for name in names:
        if warmup:
            paths[name](warmup)
    times = {name: [] for name in names}
    for r in range(windows):
        for name in names[r % len(names):] + names[: r % len(names)]:
            times[name].append(paths[name](steps))
        log(f"round {r + 1}/{windows}: " + ", ".join(f"{n} {steps / times[n][-1][0]:.2f} steps/s" for n in names))
    return times


def summary(times, steps, batch_size):
    """Median images/s (wall) and CPU ms per image of one path's windows."""
    rates = [steps * batch_size / wall for wall, _ in times]
    cpu = [1000 * c / (steps * batch_size) for _, c in times]
    return {
        "images_per_second": round(statistics.median(rates), 2),
        "windows_images_per_second": [round(r, 2) for r in rates],
        "cpu_ms_per_image": round(statistics.median(cpu), 3),
        "windows_cpu_ms_per_image": [round(c, 4) for c in cpu],
        "spread": round((max(rates) - min(rates)) / statistics.median(rates), 3),
    }


def ratio(rates, baseline):
    """Median over rounds of rates / baseline (two lists of per-window
    images/s, in round order): a ratio measured in the same spell."""
    return round(statistics.median(r / b for r, b in zip(rates, baseline)), 3)
