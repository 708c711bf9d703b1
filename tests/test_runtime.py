import numpy as np
import keras
import pytest

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
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.zeros((8, 4)), np.zeros((8, 2)), epochs=1, verbose=0)


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


def test_released_graph_gradients_lets_a_fit_run_on_every_backend():
    with runtime.released_graph_gradients():
        _fit_one_step()
