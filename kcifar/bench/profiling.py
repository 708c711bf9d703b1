"""Where a path's time goes: operations (torch, TensorFlow) and Python
functions (all).

Profilers slow what they watch; these tables say where the time goes, the
timed windows say how much there is.
"""

import cProfile
import glob
import json
import os
import pstats
import sys
import tempfile

import kcifar


def torch_ops(run, steps):
    """Self CPU time per step of each torch operation while run(steps) runs.

    Returns:
        dict op name -> [milliseconds per step, calls per step], every
        operation, the largest first.
    """
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as p:
        run(steps)
    rows = sorted(p.key_averages(), key=lambda e: -e.self_cpu_time_total)
    return {e.key: [round(e.self_cpu_time_total / 1000 / steps, 2), round(e.count / steps, 2)] for e in rows}


def torch_graph_breaks(step, *args):
    """What `torch.compile` makes of `step(*args)`, from
    `torch._dynamo.explain` (which runs it once).

    Returns:
        dict with graphs, graph_breaks and the break reasons (each once,
        with how often it came), or with error (the exception's type and
        message) where dynamo could not explain the step.
    """
    import torch._dynamo

    torch._dynamo.reset()
    try:
        explained = torch._dynamo.explain(step)(*args)
    except Exception as error:  # noqa: BLE001 - what explain raises is the finding
        return {"error": f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"}
    finally:
        torch._dynamo.reset()
    reasons = {}
    for reason in explained.break_reasons:
        text = str(getattr(reason, "reason", reason)).strip().splitlines()[0]
        reasons[text] = reasons.get(text, 0) + 1
    return {"graphs": explained.graph_count, "graph_breaks": explained.graph_break_count,
            "break_reasons": dict(sorted(reasons.items(), key=lambda kv: -kv[1]))}


def tensorflow_ops(run, steps):
    """Self time per step of each TensorFlow operation type while run(steps)
    runs, from TensorFlow's profiler (its trace, read with the converter that
    TensorBoard's profile plugin uses; the time the host sat idle is left
    out).

    Returns:
        dict op type -> [milliseconds per step, calls per step], every
        type, the largest first; None where this TensorFlow lacks the
        converter.
    """
    import tensorflow as tf

    try:
        from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as plugin
    except ImportError:
        return None
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        try:
            run(steps)
        finally:
            tf.profiler.experimental.stop()
        traces = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)
        raw, ok = plugin.xspace_to_tools_data(traces, "framework_op_stats", {})
    if not ok:
        return None
    table = json.loads(raw)[0]
    ids = [c["id"] for c in table["cols"]]
    totals = {}
    for row in table["rows"]:
        op = dict(zip(ids, [c.get("v") if c else None for c in row["c"]]))
        if op["type"] == "IDLE":
            continue
        ms, calls = totals.get(op["type"], (0.0, 0.0))
        totals[op["type"]] = (ms + op["total_self_time"] / 1000, calls + op["occurrences"])
    rows = sorted(totals.items(), key=lambda kv: -kv[1][0])
    return {op: [round(ms / steps, 2), round(calls / steps, 2)] for op, (ms, calls) in rows}


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
