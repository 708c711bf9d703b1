"""The ladder's networks, built with the functional API from one Config.

The model takes raw 0..255 RGB images (uint8 or float) and returns class
probabilities, so a saved `model.keras` needs nothing of kcifar to be used.
The augmentation block sits in front of the network in the model that
trains and is left out of the one that is saved; the other layers that act
in training only (GaussianNoise, Dropout) are Keras's own and pass their
input through unchanged at inference.
"""

import keras
import numpy as np
from keras import layers

from kcifar import channels
from kcifar.augment import SEEDS, augmentation_layers
from kcifar.data.readers import IMAGE_SHAPE, NUM_CLASSES


def build_model(config, mean, std, seed=None, data_format=None):
    """Builds the model that trains: the augmentation block, then the network.

    The augmentation block (`kcifar.augment`) acts in training only; the
    network behind it is what evaluation uses and what is saved
    (`inference_network`). A rung without augmentation trains the network
    itself.

    Args:
        config: a `kcifar.config.Config`.
        mean: per-channel mean of the training split, 0..255 scale.
        std: per-channel standard deviation of the training split.
        seed: seeds the augmentation draws and the dropout masks. Unseeded
            dropout on torch draws from torch's global generator, whose state
            a checkpoint cannot hold, so a resumed run would see other masks.
        data_format: the layout of the feature maps inside the network
            (`kcifar.channels`; default: the backend's fastest); the input is
            NHWC and the weights are the same either way.
    """
    # One seed per stage's dropout, then the augmentation block's: a block
    # with more layers leaves the others' seeds as they were.
    dropout_seeds, augment_seeds = layer_seeds(seed, len(config.widths), SEEDS)
    network = build_network(config, mean, std, dropout_seeds, data_format)
    return training_model(network, config, augment_seeds)


def layer_seeds(seed, *counts):
    """Seeds for groups of layers, `counts` of them in each, drawn at once
    from `seed` in group order; a None per group for an unseeded model
    (Keras's global seed).

    Args:
        seed: the run's seed, or None.
        *counts: how many seeds each group takes.
    """
    if seed is None:
        return [None] * len(counts)
    drawn = np.random.default_rng(seed).integers(2**31, size=sum(counts)).tolist()
    ends = np.cumsum(counts).tolist()
    return [drawn[end - count:end] for count, end in zip(counts, ends)]


# The name a training model takes after its network's: how `inference_network` finds it.
TRAINING_SUFFIX = "_training"


def training_model(network, config, seeds):
    """`network` behind `config`'s augmentation block: the model that trains,
    named after the network (`TRAINING_SUFFIX`); the network itself for a
    config without augmentation.

    Args:
        network: a Keras model from raw NHWC images to class probabilities.
        config: a `kcifar.config.Config` (its augmentation fields).
        seeds: `kcifar.augment.SEEDS` ints for the block's layers, or None.
    """
    block = augmentation_layers(config, seeds)
    if not block:
        return network
    inputs = keras.Input(shape=IMAGE_SHAPE, name="image")
    x = inputs
    for layer in block:
        x = layer(x)
    return keras.Model(inputs, network(x), name=network.name + TRAINING_SUFFIX)


def inference_network(model):
    """The network of a model from `training_model`: what is saved and
    evaluated (the model itself where nothing stands in front of it)."""
    if not model.name.endswith(TRAINING_SUFFIX):
        return model
    return model.get_layer(model.name.removesuffix(TRAINING_SUFFIX))


def build_network(config, mean, std, dropout_seeds=None, data_format=None):
    """The rung's network: raw 0..255 NHWC images in, probabilities out.

    Args:
        config, mean, std, data_format: as `build_model`'s.
        dropout_seeds: one seed per stage's dropout, or None.
    """
    data_format = channels.checked(data_format)
    inputs = keras.Input(shape=IMAGE_SHAPE, name="image")
    x = channels.laid_out(inputs, data_format)
    # x' = (x - mu) / sigma with the training split's statistics, inside the
    # model so that a saved model takes raw images.
    x = layers.Normalization(
        axis=channels.axis(data_format), mean=list(mean), variance=[s * s for s in std], name="normalize"
    )(x)
    if config.input_noise:
        # No seed of its own, unlike dropout: Keras's noise draws from the
        # seed generator that runtime.start_run seeds, on every backend, and
        # a checkpoint holds its state.
        x = layers.GaussianNoise(config.input_noise, name="input_noise")(x)
    stage = residual_stage if config.residual else plain_stage
    for i, width in enumerate(config.widths, start=1):
        x = stage(x, width, config, f"stage{i}", data_format)
        if config.dropout:
            seed_i = None if dropout_seeds is None else dropout_seeds[i - 1]
            x = layers.Dropout(config.dropout, seed=seed_i, name=f"stage{i}_dropout")(x)
    # Flatten puts channels_first maps back in (height, width, channel)
    # order, so the dense weights are the same in either layout.
    x = layers.Flatten(data_format=data_format, name="flatten")(x)
    x = layers.Dense(config.dense_units, activation="relu", kernel_initializer="he_normal", name="dense")(x)
    # float32 probabilities even under mixed precision, for a stable loss.
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32", name="probs")(x)
    return keras.Model(inputs, outputs, name=config.name)


def conv(x, width, config, name, data_format, kernel_size=3, strides=1):
    """Conv2D, then BatchNormalization when the config has it (no bias then:
    BN's beta takes its place)."""
    x = layers.Conv2D(
        width,
        kernel_size,
        strides=strides,
        padding="same",
        data_format=data_format,
        use_bias=not config.batch_norm,
        kernel_initializer="he_normal",
        kernel_regularizer=keras.regularizers.L2(config.l2) if config.l2 else None,
        name=name,
    )(x)
    if config.batch_norm:
        x = layers.BatchNormalization(
            axis=channels.axis(data_format), momentum=config.bn_momentum, epsilon=config.bn_epsilon,
            name=name + "_bn",
        )(x)
    return x


def plain_stage(x, width, config, name, data_format):
    """convs_per_stage x (3x3 conv, ReLU), then 2x2 max pooling."""
    for j in range(1, config.convs_per_stage + 1):
        x = conv(x, width, config, f"{name}_conv{j}", data_format)
        x = layers.ReLU(name=f"{name}_relu{j}")(x)
    return layers.MaxPooling2D(2, data_format=data_format, name=f"{name}_pool")(x)


def residual_stage(x, width, config, name, data_format):
    """A plain stage with a residual addition around its convolutions.

    downsample="pool" (the ladder's rung 8): rung 7's stage, stride-1
    convolutions then 2x2 max pooling, plus the shortcut, added before the
    stage's last ReLU. "stride": a strided first 3x3 convolution replaces the
    pooling (a quarter of the work). The shortcut is a 1x1 projection, built
    like the stage's other convolutions, where the width or the resolution
    changes.
    """
    strides = 2 if config.downsample == "stride" else 1
    shortcut = x
    if strides != 1 or x.shape[channels.axis(data_format)] != width:
        shortcut = conv(x, width, config, f"{name}_shortcut", data_format, kernel_size=1, strides=strides)
    x = conv(x, width, config, f"{name}_conv1", data_format, strides=strides)
    for j in range(2, config.convs_per_stage + 1):
        x = layers.ReLU(name=f"{name}_relu{j - 1}")(x)
        x = conv(x, width, config, f"{name}_conv{j}", data_format)
    x = layers.Add(name=f"{name}_add")([x, shortcut])
    x = layers.ReLU(name=f"{name}_out")(x)
    if config.downsample == "pool":
        x = layers.MaxPooling2D(2, data_format=data_format, name=f"{name}_pool")(x)
    return x
