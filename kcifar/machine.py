"""What every results file says of where it was made: the CPU (its model
name and the instruction sets that decide which precision is fast on it)
and the commit of the code.

Imports no backend, so the bench's parent and the report can use it.
"""

import functools
import os
import platform
import subprocess

import cpuinfo

# bfloat16 matrix units: a CPU with AMX trains a mixed_bfloat16 rung up to
# twice as fast as float32; with avx512_bf16 alone, bfloat16 measured slower
# than float32 (experiments/bench/README.md has both).
BF16_FLAGS = ("amx_bf16", "amx_tile", "avx512_bf16")


@functools.lru_cache(maxsize=None)
def cpu():
    """{"model", "cores", "amx", "avx512_bf16", "flags"} of this machine's CPU
    (py-cpuinfo: the same on Linux, macOS and Windows)."""
    info = cpuinfo.get_cpu_info()
    flags = set(info.get("flags", ()))
    return {
        "model": info.get("brand_raw") or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "amx": "amx_bf16" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "flags": [f for f in BF16_FLAGS if f in flags],
    }


def cpu_text():
    """One line, e.g. "Intel(R) Xeon(R) Processor x2, AMX"."""
    c = cpu()
    kind = "AMX" if c["amx"] else "avx512_bf16, no AMX" if c["avx512_bf16"] else "no bfloat16 units"
    return f"{c['model']} x{c['cores']}, {kind}"


def code_version():
    """The git commit of the kcifar package, and whether it had uncommitted
    changes; both None where the package is not a git checkout."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        git = lambda *args: subprocess.run(  # noqa: E731
            ["git", *args], cwd=here, capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--", "."))
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}
