"""Mixed precision on every rung, on the CPU: `--precision mixed_bfloat16` is
offered for GPUs, and a failure found there would cost GPU time."""

import os

import keras
import numpy as np
import pytest
from helpers import interrupt_after_first_epoch, quiet

from kcifar import runtime
from kcifar.experiments import RUNGS, rung
from kcifar.train import compile_model, train

POLICIES = ("mixed_bfloat16", "mixed_float16")
COMPUTE = {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}


def narrow(config):
    """The rung with the same few channels at every rung: the same layers,
    policies and code paths at a fraction of the CPU time (rung 9 is 1024
    wide), and one set of shapes, so that JAX compiles the initializers once."""
    return config.replace(widths=(4, 8, 8, 16), dense_units=16)


@pytest.fixture(autouse=True)
def _float32_after():
    """The global dtype policy back to float32 for the tests that follow."""
    yield
    keras.backend.clear_session()
    runtime.set_precision("float32")


def assert_probabilities(probs, n):
    probs = keras.ops.convert_to_numpy(probs)
    assert probs.dtype == np.float32 and probs.shape == (n, 10)
    assert np.isfinite(probs).all() and probs.min() >= 0.0
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def weighted_layers(model):
    """The convolutions and dense layers of `model` and of the models in it."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from weighted_layers(layer)
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            yield layer


def assert_computes_in(model, policy):
    """Every convolution and hidden dense layer computes in the policy's
    half type on float32 weights; the output layer stays float32."""
    layers = list(weighted_layers(model))
    assert len(layers) >= 10
    for layer in layers:
        want = "float32" if layer.name == "probs" else COMPUTE[policy]
        assert (layer.compute_dtype, layer.variable_dtype) == (want, "float32"), layer.name


# mixed_bfloat16, the GPU ladder's, on every rung; mixed_float16 on rung 8's
# run below, which has every kind of layer the rungs combine (float16 costs
# most on a CPU: rung 9 alone takes a minute there at full width).
@pytest.mark.parametrize("name", RUNGS)
def test_every_rung_trains_a_step(tiny_data, name, policy="mixed_bfloat16"):
    keras.backend.clear_session()
    runtime.set_precision(policy)
    keras.utils.set_random_seed(0)
    model = compile_model(narrow(rung(name).CONFIG), tiny_data, steps_per_epoch=1, seed=0)
    assert_computes_in(model, policy)
    x, y = tiny_data.x_train[::27], tiny_data.y_train[::27]  # 4 images of 4 classes
    logs = model.train_on_batch(x, y, return_dict=True)
    assert np.isfinite(logs["loss"]) and logs["loss"] > 0
    assert_probabilities(model.predict_on_batch(x), len(x))


@pytest.mark.parametrize("policy", POLICIES)
def test_a_run_resumes_and_saves_under_the_policy(tiny_data, tmp_path, monkeypatch, policy):
    # Rung 8 has every layer the ladder uses; the run goes through the
    # checkpoint (mixed_float16 adds the loss-scale optimizer's state to it)
    # and the saved model, as the GPU ladder's runs do.
    config = narrow(rung("trick8").CONFIG).replace(epochs=2, batch_size=18)
    data = tiny_data.subset(36)
    run_dir = str(tmp_path / "run")
    with monkeypatch.context() as m:
        interrupt_after_first_epoch(m)
        with pytest.raises(KeyboardInterrupt):
            train(config, data, run_dir, quiet(precision=policy))
    metrics = train(config, data, run_dir, quiet(precision=policy, resume=True))
    assert metrics["precision"] == policy and metrics["epochs"] == 2
    assert np.isfinite([metrics["test_loss"], metrics["val_loss"]]).all()
    keras.backend.clear_session()
    runtime.set_precision("float32")  # the saved model keeps its layers' policies
    model = keras.saving.load_model(os.path.join(run_dir, "model.keras"))
    assert_computes_in(model, policy)
    assert_probabilities(model.predict(data.x_test, verbose=0), len(data.y_test))
