import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from helpers import quiet

from kcifar import runtime


def test_describe_names_backend_versions_and_device():
    info = runtime.describe()
    assert info["backend"] == keras.backend.backend()
    assert info["keras_version"] == keras.__version__
    assert info["backend_version"] not in ("", "unknown")
    assert info["device"].startswith(("cpu:", "cuda:", "gpu:"))


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "float32"])
def test_set_precision(policy):
    runtime.set_precision(policy)
    assert keras.config.dtype_policy().name == policy
    runtime.set_precision("float32")


def test_unknown_precision():
    with pytest.raises(ValueError, match="Received: precision='float8'"):
        runtime.set_precision("float8")


def _fit_one_step():
    """The weights of a small seeded model after one step of fit."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).normal(size=(8, 4))
    model.fit(x, x[:, :2] + 1.0, batch_size=8, epochs=1, verbose=0)
    return [keras.ops.convert_to_numpy(w) for w in model.weights]


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's gradient registry")
def test_released_graph_gradients_drops_what_a_fit_registered():
    from tensorflow.python.framework import ops

    registry = ops._gradient_registry._registry
    before = set(registry)
    with runtime.released_graph_gradients():
        _fit_one_step()
        # The leak the helper exists for: if TensorFlow stops registering
        # these, this fails and the helper can go.
        assert {n for n in set(registry) - before if n.startswith("CustomGradient")}
    assert set(registry) - before == set()


def test_released_graph_gradients_changes_nothing_a_fit_computes_on_any_backend():
    outside = _fit_one_step()
    with runtime.released_graph_gradients():
        inside = _fit_one_step()
    assert len(inside) == 2
    for a, b in zip(inside, outside):
        np.testing.assert_array_equal(a, b)
    keras.utils.set_random_seed(0)
    fresh = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    assert not np.array_equal(keras.ops.convert_to_numpy(fresh.weights[1]), inside[1])  # the step moved the bias


def switches():
    """The current backend's determinism switches, as they stand now."""
    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        return {"algorithms": torch.are_deterministic_algorithms_enabled(),
                "cudnn_benchmark": torch.backends.cudnn.benchmark,
                "cublas": os.environ.get("CUBLAS_WORKSPACE_CONFIG")}
    if backend == "tensorflow":
        from tensorflow.python.framework import config

        return {"op_determinism": config.is_op_determinism_enabled()}
    return {"xla_flags": os.environ.get("XLA_FLAGS")}


ON = {
    "torch": {"algorithms": True, "cudnn_benchmark": False, "cublas": ":4096:8"},
    "tensorflow": {"op_determinism": True},
    "jax": {"xla_flags": "--xla_gpu_deterministic_ops=true"},
}


@pytest.fixture
def switches_off(monkeypatch):
    """The switches off, as in a fresh process."""
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    off = switches()
    assert off != ON[keras.backend.backend()]
    return off


def test_deterministic_is_on_inside_the_block_and_as_before_after_it(switches_off, monkeypatch):
    with runtime.deterministic():
        assert switches() == ON[keras.backend.backend()]
    assert switches() == switches_off
    # XLA flags the process had stay, before the one added, and come back alone.
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=0")
    with runtime.deterministic():
        if keras.backend.backend() == "jax":
            assert os.environ["XLA_FLAGS"] == "--xla_backend_optimization_level=0 --xla_gpu_deterministic_ops=true"
    assert os.environ["XLA_FLAGS"] == "--xla_backend_optimization_level=0"
    monkeypatch.delenv("XLA_FLAGS")
    with pytest.raises(KeyError):
        with runtime.deterministic():
            raise KeyError("a failed run")
    assert switches() == switches_off
    with runtime.deterministic(False):
        assert switches() == switches_off


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="torch's cuDNN benchmark switch")
def test_deterministic_puts_back_a_benchmark_that_was_on(switches_off):
    import torch

    torch.backends.cudnn.benchmark = True
    try:
        with runtime.deterministic():
            assert torch.backends.cudnn.benchmark is False
        assert torch.backends.cudnn.benchmark is True
    finally:
        torch.backends.cudnn.benchmark = False


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="XLA's flags, read by JAX")
def test_xla_knows_the_flag_deterministic_sets(tmp_path):
    # XLA aborts a process whose XLA_FLAGS hold a flag it does not know; a
    # renamed flag would only show on the GPU run it was meant for.
    with runtime.deterministic():
        env = dict(os.environ)
    result = subprocess.run([sys.executable, "-c", "import jax.numpy as jnp; print(float(jnp.ones(3).sum()))"],
                            env=env, capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert "xla_gpu_deterministic_ops" in env["XLA_FLAGS"]
    assert result.returncode == 0 and result.stdout.strip() == "3.0", result.stderr[-2000:]


def test_deterministic_runs_repeat_with_the_switches_on_for_the_run_only(tiny_data, tmp_path, monkeypatch,
                                                                         switches_off):
    from kcifar import files, train as train_module
    from kcifar.experiments import rung

    # Every trick of the ladder, small: each kernel they use must have a
    # deterministic implementation (torch raises where it has none).
    config = rung("trick9").CONFIG.replace(widths=(4, 4, 8, 8), dense_units=8, epochs=2, batch_size=36)
    inside, compile_model = [], train_module.compile_model

    def compile_and_look(*args, **kwargs):
        inside.append(switches())
        return compile_model(*args, **kwargs)

    monkeypatch.setattr(train_module, "compile_model", compile_and_look)
    histories = []
    for i in range(2):
        metrics = train_module.train(config, tiny_data, str(tmp_path / str(i)), quiet(deterministic=True))
        assert metrics["deterministic"] is True
        assert switches() == switches_off
        rows = files.read_csv(os.path.join(tmp_path / str(i), "history.csv"))
        histories.append([{k: v for k, v in row.items() if k not in ("train_seconds", "seconds")} for row in rows])
    assert inside == [ON[keras.backend.backend()]] * 2
    assert len(histories[0]) == 2 and histories[0] == histories[1]


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_seeding_on_another_backend_prints_no_tensorflow_start_up_lines(backend):
    code = ("import sys, numpy as np; from kcifar import runtime; runtime.set_seed(3); a = np.random.rand()\n"
            "np.random.seed(3); print(a == np.random.rand(), 'tensorflow' in sys.modules)\n"
            "print('still here', file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, KERAS_BACKEND=backend),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    seeded, tensorflow_loaded = result.stdout.split()
    assert seeded == "True"
    if tensorflow_loaded == "True":  # installed: Keras seeded it, and its lines were held back
        assert "oneDNN" not in result.stderr and "cuda drivers" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "still here"
