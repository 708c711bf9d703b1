import keras
import numpy as np
import pytest

from kcifar.config import Config
from kcifar.experiments import RUNGS, rung
from kcifar.models import build_model, preferred_data_format

MEAN, STD = (125.0, 123.0, 114.0), (63.0, 62.0, 66.0)
WIDTHS = {  # the lecture's feature maps after each stage
    "baseline": (32, 64, 128, 256), "trick7": (64, 128, 256, 512),
    "trick8": (64, 128, 256, 512), "trick9": (128, 256, 512, 1024),
}


def stage_shapes(model):
    """Output shapes (height, width, channels) of the four stages (pooling,
    or the residual's last ReLU), whatever the model's data format."""
    last = "pool" if model.get_layer("stage1_conv1").strides == (1, 1) else "out"
    shapes = [tuple(model.get_layer(f"stage{i}_{last}").output.shape[1:]) for i in range(1, 5)]
    if model.get_layer("stage1_conv1").data_format == "channels_first":
        shapes = [(h, w, c) for c, h, w in shapes]
    return shapes


@pytest.mark.parametrize("name", ["baseline", "trick7", "trick8", "trick9"])
def test_feature_maps_match_the_lecture(name):
    model = build_model(rung(name).CONFIG, MEAN, STD)
    widths = WIDTHS[name]
    assert stage_shapes(model) == [(16, 16, widths[0]), (8, 8, widths[1]), (4, 4, widths[2]), (2, 2, widths[3])]
    assert model.get_layer("dense").units == 512 and tuple(model.output.shape) == (None, 10)


@pytest.mark.parametrize("name", RUNGS)
def test_each_rung_has_its_layers(name):
    config = rung(name).CONFIG
    model = build_model(config, MEAN, STD)
    kinds = {type(layer).__name__ for layer in model.layers}
    assert ("GaussianNoise" in kinds) == (config.input_noise > 0)
    assert ("BatchNormalization" in kinds) == config.batch_norm
    assert ("Dropout" in kinds) == (config.dropout > 0)
    assert ("RandomFlip" in kinds) == config.flip
    assert ("Add" in kinds) == config.residual
    assert ("MaxPooling2D" in kinds) == (not config.residual)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            assert layer.use_bias == (not config.batch_norm)  # BN's beta replaces the bias
            assert (layer.kernel_regularizer is not None) == (config.l2 > 0)
            if config.l2:
                assert layer.kernel_regularizer.l2 == pytest.approx(config.l2)
        if isinstance(layer, keras.layers.BatchNormalization):
            assert layer.epsilon == 1e-5  # the lecture's, not Keras's 1e-3


def test_residual_shortcut_projects_with_a_strided_1x1():
    model = build_model(rung("trick8").CONFIG, MEAN, STD)
    shortcut = model.get_layer("stage1_shortcut")
    assert shortcut.kernel_size == (1, 1) and shortcut.strides == (2, 2)
    assert model.get_layer("stage1_conv1").strides == (2, 2)


def test_normalization_uses_the_given_statistics():
    model = build_model(Config(), MEAN, STD)
    x = np.broadcast_to(np.array(MEAN, np.float32), (1, 32, 32, 3))
    normalize = keras.Model(model.input, model.get_layer("normalize").output)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(normalize(x)), 0.0, atol=1e-5)


def test_inference_does_not_depend_on_augmentation_or_noise_settings():
    plain = Config().replace(batch_norm=True, dropout=0.3, widths=(4, 4, 4, 4), dense_units=8)
    busy = plain.replace(flip=True, input_noise=0.5, crop_scale=0.5, rotation=30.0)
    keras.utils.set_random_seed(0)
    a = build_model(plain, MEAN, STD)
    b = build_model(busy, MEAN, STD)
    b.set_weights(a.get_weights())  # flip and noise layers have no weights
    x = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(a.predict(x, verbose=0), b.predict(x, verbose=0))
    trained = keras.ops.convert_to_numpy(b(x, training=True))
    assert not np.allclose(trained, a.predict(x, verbose=0))  # they do act in training


@pytest.mark.parametrize("name", ["baseline", "trick5", "trick8"])
def test_both_data_formats_are_the_same_network(name):
    config = rung(name).CONFIG.replace(widths=(4, 4, 8, 8), dense_units=8)
    keras.utils.set_random_seed(0)
    last = build_model(config, MEAN, STD, data_format="channels_last")
    first = build_model(config, MEAN, STD, data_format="channels_first")
    first.set_weights(last.get_weights())  # same shapes: kernels are HWIO in both
    x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(first.predict(x, verbose=0), last.predict(x, verbose=0), atol=1e-5)


def test_preferred_data_format_is_channels_first_on_torch_only():
    expected = "channels_first" if keras.backend.backend() == "torch" else "channels_last"
    assert preferred_data_format() == expected
    assert build_model(Config(), MEAN, STD).get_layer("stage1_conv1").data_format == expected
    with pytest.raises(ValueError, match="data_format"):
        build_model(Config(), MEAN, STD, data_format="nhwc")


def test_flip_draws_per_image_in_training():
    model = build_model(Config().replace(flip=True), MEAN, STD, data_format="channels_last")
    flip = keras.Model(model.input, model.get_layer("flip").output)
    image = np.random.default_rng(0).integers(0, 256, (1, 32, 32, 3)).astype("float32")
    out = keras.ops.convert_to_numpy(flip(np.repeat(image, 32, axis=0), training=True))
    normalized = keras.ops.convert_to_numpy(model.get_layer("normalize")(image))[0]
    flipped = [np.allclose(o, normalized[:, ::-1]) for o in out]
    same = [np.allclose(o, normalized) for o in out]
    assert all(f or s for f, s in zip(flipped, same)) and any(flipped) and any(same)
