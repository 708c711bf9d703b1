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


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="torch's operation table")
def test_torch_ops_are_per_step():
    import torch

    a = torch.ones(64, 64)
    rows = profiling.torch_ops(lambda steps: [a @ a for _ in range(2 * steps)], steps=3)
    assert rows["aten::mm"][1] == 2.0 and rows["aten::mm"][0] >= 0


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's operation table")
def test_tensorflow_ops_are_per_step_by_type():
    import tensorflow as tf

    a, b = tf.ones((64, 64)), tf.fill((64, 64), 2.0)

    @tf.function
    def step():
        return tf.matmul(a, a) + tf.matmul(a, b)

    step()  # traced outside the profile
    rows = profiling.tensorflow_ops(lambda steps: [step() for _ in range(steps)], steps=3)
    matmul = next(op for op in rows if "MatMul" in op)  # oneDNN's name for it where TensorFlow uses oneDNN
    assert rows[matmul][1] == 2.0 and rows[matmul][0] >= 0
    assert "IDLE" not in rows


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="torch.compile is torch's")
def test_torch_graph_breaks_counts_the_breaks_and_reports_a_failure():
    import torch

    def step(a):
        b = a * 2
        torch._dynamo.graph_break()
        return b + 1

    found = profiling.torch_graph_breaks(step, torch.ones(4))
    assert found["graphs"] == 2 and found["graph_breaks"] == 1 and sum(found["break_reasons"].values()) == 1

    def broken(a):
        raise RuntimeError("cannot trace\nmore lines")

    assert profiling.torch_graph_breaks(broken, torch.ones(4)) == {"error": "RuntimeError: cannot trace"}
