"""The CPU a result was measured on, for every results file: its model
name and the instruction sets that decide which precision is fast on it.

Imports no backend, so the bench's parent and the report can use it.
"""

import functools
import os
import platform

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
