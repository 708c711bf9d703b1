import keras
import numpy as np
import pytest

from kcifar.augment import augments
from kcifar.config import Config
from kcifar.experiments import RUNGS, rung
from kcifar import channels
from kcifar.models import build_model, inference_network, layer_seeds

MEAN, STD = (125.0, 123.0, 114.0), (63.0, 62.0, 66.0)
WIDTHS = {  # the lecture's feature maps after each stage
    "baseline": (32, 64, 128, 256), "trick7": (64, 128, 256, 512),
    "trick8": (64, 128, 256, 512), "trick9": (128, 256, 512, 1024),
}


def stage_shapes(network, config):
    """Output shapes (height, width, channels) of the four stages (pooling,
    or the strided residual's last ReLU), whatever the data format."""
    last = "out" if config.residual and config.downsample == "stride" else "pool"
    shapes = [tuple(network.get_layer(f"stage{i}_{last}").output.shape[1:]) for i in range(1, 5)]
    if network.get_layer("stage1_conv1").data_format == "channels_first":
        shapes = [(h, w, c) for c, h, w in shapes]
    return shapes


@pytest.mark.parametrize("name, downsample", [
    ("baseline", "pool"), ("trick7", "pool"), ("trick8", "pool"), ("trick8", "stride"), ("trick9", "pool"),
])
def test_feature_maps_match_the_lecture(name, downsample):
    config = rung(name).CONFIG.replace(downsample=downsample)
    network = inference_network(build_model(config, MEAN, STD))
    widths = WIDTHS[name]
    assert stage_shapes(network, config) == [(16, 16, widths[0]), (8, 8, widths[1]), (4, 4, widths[2]), (2, 2, widths[3])]
    assert network.get_layer("dense").units == 512 and tuple(network.output.shape) == (None, 10)


@pytest.mark.parametrize("name", RUNGS)
def test_each_rung_has_its_layers(name):
    config = rung(name).CONFIG
    model = build_model(config, MEAN, STD)
    network = inference_network(model)
    kinds = {type(layer).__name__ for layer in network.layers}
    outside = [] if model is network else [layer for layer in model.layers if layer is not network]
    augmentation = {type(layer).__name__ for layer in outside} - {"InputLayer"}
    assert augmentation == ({"RandomFlip"} if config.flip else set()) | (
        {"RandomCropResize"} if config.crop_scale < 1 else set()) | ({"RandomTranslate"} if config.translate else set())
    assert (model is network) == (not augments(config))
    assert ("GaussianNoise" in kinds) == (config.input_noise > 0)
    assert ("BatchNormalization" in kinds) == config.batch_norm
    assert ("Dropout" in kinds) == (config.dropout > 0)
    assert ("Add" in kinds) == config.residual
    assert "MaxPooling2D" in kinds  # rung 8 keeps rung 7's pooling
    assert not kinds & {"RandomFlip", "RandomCropResize", "RandomTranslate"}  # the saved network never augments
    for layer in network.layers:
        if isinstance(layer, keras.layers.Conv2D):
            assert layer.use_bias == (not config.batch_norm)  # BN's beta replaces the bias
            assert (layer.kernel_regularizer is not None) == (config.l2 > 0)
            if config.l2:
                assert layer.kernel_regularizer.l2 == pytest.approx(config.l2)
        if isinstance(layer, keras.layers.BatchNormalization):
            assert layer.epsilon == 1e-5  # the lecture's, not Keras's 1e-3
            assert layer.momentum == 0.9  # PyTorch's BatchNorm2d (its 0.1), not Keras's 0.99


@pytest.mark.parametrize("downsample, strides", [("pool", (1, 1)), ("stride", (2, 2))])
def test_residual_shortcut_is_a_1x1_projection(downsample, strides):
    config = rung("trick8").CONFIG.replace(downsample=downsample)
    network = inference_network(build_model(config, MEAN, STD))
    shortcut = network.get_layer("stage1_shortcut")
    assert shortcut.kernel_size == (1, 1) and shortcut.strides == strides
    assert network.get_layer("stage1_conv1").strides == strides
    pools = [layer for layer in network.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert len(pools) == (4 if downsample == "pool" else 0)


@pytest.mark.parametrize("name", RUNGS)
def test_every_rung_compiles(name):
    # A layer with supports_jit False (Keras's RandomCrop, RandomRotation,
    # ...) would switch XLA off for the whole model: JAX would never jit.
    from keras.src.trainers.trainer import model_supports_jit

    assert model_supports_jit(build_model(rung(name).CONFIG, MEAN, STD))


def test_normalization_uses_the_given_statistics():
    model = build_model(Config(), MEAN, STD)
    x = np.broadcast_to(np.array(MEAN, np.float32), (1, 32, 32, 3))
    normalize = keras.Model(model.input, model.get_layer("normalize").output)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(normalize(x)), 0.0, atol=1e-5)


@pytest.mark.parametrize("name", ["trick5", "trick7"])
def test_augmentation_acts_in_training_only(name):
    config = rung(name).CONFIG.replace(widths=(4, 4, 4, 4), dense_units=8, dropout=0.0)
    keras.utils.set_random_seed(0)
    model = build_model(config, MEAN, STD, seed=0)
    network = inference_network(model)
    x = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(model.predict(x, verbose=0), network.predict(x, verbose=0))
    # BN in training mode uses batch statistics in both, so only the block differs.
    trained = keras.ops.convert_to_numpy(model(x, training=True))
    assert not np.allclose(trained, keras.ops.convert_to_numpy(network(x, training=True)))


@pytest.mark.parametrize("name", ["baseline", "trick5", "trick8"])
def test_both_data_formats_are_the_same_network(name):
    config = rung(name).CONFIG.replace(widths=(4, 4, 8, 8), dense_units=8)
    keras.utils.set_random_seed(0)
    last = build_model(config, MEAN, STD, data_format="channels_last")
    first = build_model(config, MEAN, STD, data_format="channels_first")
    first.set_weights(last.get_weights())  # same shapes: kernels are HWIO in both
    x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(first.predict(x, verbose=0), last.predict(x, verbose=0), atol=1e-5)


def test_the_network_is_laid_out_as_the_backend_trains_fastest_unless_told():
    assert build_model(Config(), MEAN, STD).get_layer("stage1_conv1").data_format == channels.preferred()
    with pytest.raises(ValueError, match="data_format"):
        build_model(Config(), MEAN, STD, data_format="nhwc")


def test_layer_seeds_are_drawn_at_once_so_a_group_added_last_leaves_the_others():
    assert layer_seeds(None, 4, 3) == [None, None]
    four, three = layer_seeds(7, 4, 3)
    assert (len(four), len(three)) == (4, 3) and four + three == np.random.default_rng(7).integers(2**31, size=7).tolist()
    assert layer_seeds(7, 4, 4)[0] == four


def test_the_inference_network_is_the_one_behind_the_block_by_its_name():
    model = build_model(rung("trick5").CONFIG, MEAN, STD)
    network = inference_network(model)
    assert model.name == "trick5_training" and network.name == "trick5" and network in model.layers
    assert inference_network(network) is network


def test_flip_draws_per_image_in_training():
    model = build_model(Config().replace(flip=True), MEAN, STD, data_format="channels_last")
    flip = model.get_layer("flip")
    image = np.random.default_rng(0).integers(0, 256, (1, 32, 32, 3)).astype("float32")
    out = keras.ops.convert_to_numpy(flip(np.repeat(image, 32, axis=0), training=True))
    flipped = [np.array_equal(o, image[0, :, ::-1]) for o in out]
    same = [np.array_equal(o, image[0]) for o in out]
    assert all(f or s for f, s in zip(flipped, same)) and any(flipped) and any(same)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="XLA through jit_compile=True is TensorFlow's")
def test_rung7_trains_under_xla_on_tensorflow():
    # On a TensorFlow GPU, jit_compile="auto" turns XLA on: the augmentation
    # block must compile there (ImageProjectiveTransformV3, say, does not).
    model = build_model(rung("trick7").CONFIG, MEAN, STD, seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", jit_compile=True)
    x = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3)).astype("uint8")
    loss = model.train_on_batch(x, np.arange(8) % 10)
    assert np.isfinite(loss)
