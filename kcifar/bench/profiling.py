"""Where a path's time goes: operations (torch) and Python functions (all).

Profilers slow what they watch; these tables say where the time goes, the
timed windows say how much there is.
"""

import cProfile
import os
import pstats
import sys

import kcifar


def torch_ops(run, steps, top=15):
    """Self CPU time per step of each torch operation while run(steps) runs.

    Returns:
        dict op name -> [milliseconds per step, calls per step], the `top`
        largest.
    """
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as p:
        run(steps)
    rows = sorted(p.key_averages(), key=lambda e: -e.self_cpu_time_total)[:top]
    return {e.key: [round(e.self_cpu_time_total / 1000 / steps, 2), round(e.count / steps, 2)] for e in rows}


def python_calls(run, steps, top=12):
    """Own time per step of the Python functions that take most.

    Returns:
        dict "file:line(function)" -> [milliseconds per step, calls per step].
    """
    profiler = cProfile.Profile()
    profiler.runcall(run, steps)
    stats = pstats.Stats(profiler).stats  # (file, line, name) -> (cc, nc, tottime, cumtime, callers)
    rows = sorted(stats.items(), key=lambda item: -item[1][2])[:top]
    return {
        f"{_module_path(file)}:{line}({name})": [round(1000 * t / steps, 2), round(nc / steps, 2)]
        for (file, line, name), (_, nc, t, _, _) in rows
    }


def _module_path(file):
    """A source file's path from its package root (keras/..., kcifar/...,
    threading.py): where this machine keeps it is not part of the figures."""
    roots = sorted((os.path.join(p, "") for p in sys.path if p and os.path.isabs(p)), key=len, reverse=True)
    for root in [os.path.join(os.path.dirname(os.path.dirname(kcifar.__file__)), "")] + roots:
        if file.startswith(root):
            return file[len(root):]
    return file.rsplit("site-packages/", 1)[-1]
