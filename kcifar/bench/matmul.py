"""The machine's matrix-multiply rate: the ceiling a network's step is held to.

A square float32 matmul is the fastest thing a CPU (or GPU) does with its
floating-point units; a training step is mostly convolutions lowered to
matmuls, so images/s x FLOPs/image over this rate is the share of the
hardware a path reaches.
"""

import time

import numpy as np


def best_seconds(fn, repeats, sync=lambda result: result):
    """Best wall time of `repeats` calls of fn(); the first call warms up."""
    sync(fn())
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        sync(fn())
        best = min(best, time.perf_counter() - start)
    return best


def numpy_rate(n=2048, repeats=5):
    """GFLOP/s of an n x n float32 matmul in NumPy (its BLAS, all cores)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    return 2 * n**3 / best_seconds(lambda: a @ b, repeats) / 1e9


def backend_rate(backend, n=2048, repeats=5):
    """GFLOP/s of an n x n float32 matmul in the backend's own library, on
    the device it trains on; None for an unknown backend."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    if backend == "torch":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        ta, tb = torch.from_numpy(a).to(device), torch.from_numpy(b).to(device)
        sync = (lambda r: torch.cuda.synchronize()) if device == "cuda" else (lambda r: r)
        seconds = best_seconds(lambda: ta @ tb, repeats, sync)
    elif backend == "tensorflow":
        import tensorflow as tf

        ta, tb = tf.constant(a), tf.constant(b)
        # One element to the host waits for the product without copying
        # all of it, which on a GPU would be timed as part of the matmul.
        seconds = best_seconds(lambda: tf.linalg.matmul(ta, tb), repeats, lambda r: r[0, 0].numpy())
    elif backend == "jax":
        import jax

        ja, jb = jax.device_put(a), jax.device_put(b)
        matmul = jax.jit(lambda x, y: x @ y)
        seconds = best_seconds(lambda: matmul(ja, jb), repeats, lambda r: r.block_until_ready())
    else:
        return None
    return 2 * n**3 / seconds / 1e9
