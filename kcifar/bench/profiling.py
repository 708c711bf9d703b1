"""Where a path's time goes: operations (torch) and Python functions (all).

Profilers slow what they watch; these tables say where the time goes, the
timed windows say how much there is.
"""

import cProfile
import pstats


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
        f"{file.rsplit('site-packages/', 1)[-1]}:{line}({name})": [round(1000 * t / steps, 2), round(nc / steps, 2)]
        for (file, line, name), (_, nc, t, _, _) in rows
    }
