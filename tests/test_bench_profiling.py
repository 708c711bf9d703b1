import keras
import pytest

from kcifar.bench import profiling


def busy(steps):
    return sum(sum(range(20000)) for _ in range(steps))


def test_python_calls_are_per_step():
    rows = profiling.python_calls(busy, steps=4)
    key = next(k for k in rows if k.endswith("(busy)"))
    assert rows[key][1] == 0.25  # one call for four steps
    # Files are named from their package root, never by this machine's folders.
    assert key.startswith("tests/test_bench_profiling.py:") and not any(k.startswith("/") for k in rows)
    assert all(ms >= 0 for ms, _ in rows.values())


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="operation tables are torch's")
def test_torch_ops_are_per_step():
    import torch

    a = torch.ones(64, 64)
    rows = profiling.torch_ops(lambda steps: [a @ a for _ in range(2 * steps)], steps=3)
    assert rows["aten::mm"][1] == 2.0 and rows["aten::mm"][0] >= 0
