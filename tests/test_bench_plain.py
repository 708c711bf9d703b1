import importlib

import keras
import numpy as np
import pytest

from kcifar.bench import plain
from kcifar.bench.worker import PLAIN_MODULES
from kcifar.config import Config
from kcifar.experiments import rung
from kcifar.models import build_model

MEAN, STD = (125.0, 123.0, 114.0), (63.0, 62.0, 66.0)
TINY = Config(widths=(4, 8, 8, 16), dense_units=16)


def module():
    return importlib.import_module(f"kcifar.bench.{PLAIN_MODULES[keras.backend.backend()]}")


def batch(n=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8)


def keras_network(params):
    """TINY as Keras builds it, with the weights `params`; and its weighted
    layers, in the order of `params`."""
    model = build_model(TINY, MEAN, STD)
    weighted = [layer for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]
    for layer, (kernel, bias) in zip(weighted, params, strict=True):
        layer.set_weights([kernel, bias])
    return model, weighted


def weights_of(step):
    """A hand-written step's weights in Keras's layouts, in `init_params` order."""
    backend = keras.backend.backend()
    if backend == "torch":
        arrays = [p.detach().cpu().numpy() for p in step.net.parameters()]
        # OIHW conv kernels and (out, in) dense kernels back to HWIO and (in, out).
        return [a.transpose(2, 3, 1, 0) if a.ndim == 4 else a.T for a in arrays]
    if backend == "tensorflow":
        return [w.numpy() for w in step.weights]
    return [np.asarray(a) for pair in step.params for a in pair]


@pytest.mark.parametrize("name, word", [("baseline", None), ("trick1", "input noise"),
                                        ("trick2", "batch normalization"), ("trick8", "residual")])
def test_plain_steps_cover_rung_0_only(name, word):
    reason = plain.unsupported(rung(name).CONFIG)
    assert reason is None if word is None else word in reason


def test_initial_weights_are_he_normal():
    params = plain.init_params(rung("baseline").CONFIG, seed=0)
    assert [k.shape for k, _ in params[:2]] == [(3, 3, 3, 32), (3, 3, 32, 32)]
    assert params[-2][0].shape == (1024, 512) and params[-1][0].shape == (512, 10)
    kernel = params[3][0]  # 3x3x64x64: fan-in 576
    assert kernel.std() == pytest.approx(np.sqrt(2 / 576), rel=0.05)
    assert np.abs(kernel).max() <= 2 * np.sqrt(2 / 576) / 0.8796 + 1e-6  # truncated at two deviations
    assert plain.count_params(params) == build_model(rung("baseline").CONFIG, MEAN, STD).count_params()


def test_hand_written_steps_compute_the_keras_network():
    """Same weights in, same probabilities out: the same layers and shapes."""
    model, _ = keras_network(plain.init_params(TINY, seed=1))
    x, _ = batch()
    expected = model.predict(x, verbose=0)
    for name, step in module().steps(TINY, MEAN, STD, seed=1).items():
        assert module().count_params(step) == model.count_params(), name
        logits = module().logits(step, x).astype(np.float64)
        probs = np.exp(logits - logits.max(1, keepdims=True))
        np.testing.assert_allclose(probs / probs.sum(1, keepdims=True), expected, atol=2e-5, err_msg=name)


def test_hand_written_steps_learn():
    x, y = batch()
    for name, step in module().steps(TINY.replace(learning_rate=1e-2), MEAN, STD, seed=0).items():
        losses = [float(step(x, y)) for _ in range(10)]
        step.sync()
        assert losses[-1] < 0.5 * losses[0], (name, losses[0], losses[-1])


def test_hand_written_steps_take_kerass_adam_steps():
    """Same weights and batches in, same weights out after three steps, so
    that the update, its bias corrections and both betas all count (one step
    of Adam is lr * g / (|g| + eps'), whatever the betas)."""
    params = plain.init_params(TINY, seed=1)
    start = [a for pair in params for a in pair]
    model, weighted = keras_network(params)
    model.compile(optimizer=keras.optimizers.Adam(TINY.learning_rate), loss="sparse_categorical_crossentropy")
    batches = [batch(seed=s) for s in range(3)]
    for x, y in batches:
        model.train_on_batch(x, y)
    expected = [w - w0 for w, w0 in zip([w for layer in weighted for w in layer.get_weights()], start)]
    lr = TINY.learning_rate
    assert all(np.abs(d).mean() > 0.5 * lr for d in expected)  # every weight moved about lr per step
    for name, step in module().steps(TINY, MEAN, STD, seed=1).items():
        for x, y in batches:
            step(x, y)
        step.sync()
        for i, (w, w0, want) in enumerate(zip(weights_of(step), start, expected, strict=True)):
            np.testing.assert_allclose(w - w0, want, rtol=0, atol=1e-3 * lr, err_msg=f"{name}: weights {i}")
