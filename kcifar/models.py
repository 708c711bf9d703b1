"""The ladder's networks, built with the functional API from one Config.

The model takes raw 0..255 RGB images (uint8 or float) and returns class
probabilities, so a saved `model.keras` needs nothing of kcifar to be used.
Layers that act in training only (RandomFlip, GaussianNoise, Dropout) are
Keras's own: at inference they pass their input through unchanged.
"""

import keras
import numpy as np
from keras import layers

NUM_CLASSES = 10


def preferred_data_format():
    """The feature-map layout that trains fastest on the current backend.

    channels_first on torch: there Keras's channels_last convolutions and
    pooling copy every feature map to NCHW and back (a quarter of a rung 0
    step on CPU; `python -m kcifar.bench --profile` shows it), while the
    input, permuted once to NCHW, keeps NHWC memory ("channels_last" in
    torch's words) all the way through, the layout oneDNN and cuDNN are
    fastest with. channels_last elsewhere: TensorFlow's CPU kernels are
    NHWC, and channels_first measured slower on TensorFlow and JAX.
    """
    return "channels_first" if keras.backend.backend() == "torch" else "channels_last"


def build_model(config, mean, std, seed=None, data_format=None):
    """Builds the rung's network.

    Args:
        config: a `kcifar.config.Config`.
        mean: per-channel mean of the training split, 0..255 scale.
        std: per-channel standard deviation of the training split.
        seed: seeds the dropout masks. Unseeded dropout on torch draws from
            torch's global generator, whose state a checkpoint cannot hold,
            so a resumed run would see other masks.
        data_format: "channels_last" or "channels_first", the layout of the
            feature maps inside the model; the input is NHWC and the weights
            are the same either way. Default: `preferred_data_format()`.
    """
    data_format = data_format or preferred_data_format()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            f"data_format must be channels_last or channels_first. Received: data_format={data_format!r}"
        )
    dropout_seeds = np.random.default_rng(seed).integers(2**31, size=len(config.widths)).tolist()
    inputs = keras.Input(shape=(32, 32, 3), name="image")
    x = inputs
    if data_format == "channels_first":
        x = layers.Permute((3, 1, 2), name="channels_first")(x)
    # x' = (x - mu) / sigma with the training split's statistics, inside the
    # model so that a saved model takes raw images.
    x = layers.Normalization(
        axis=channel_axis(data_format), mean=list(mean), variance=[s * s for s in std], name="normalize"
    )(x)
    if config.flip:
        # Built in, per image, and compiled on every backend (unlike the crop,
        # translation, rotation and zoom layers; see kcifar/augment.py).
        x = layers.RandomFlip("horizontal", data_format=data_format, name="flip")(x)
    if config.input_noise:
        x = layers.GaussianNoise(config.input_noise, name="input_noise")(x)
    stage = residual_stage if config.residual else plain_stage
    for i, width in enumerate(config.widths, start=1):
        x = stage(x, width, config, f"stage{i}", data_format)
        if config.dropout:
            seed_i = None if seed is None else dropout_seeds[i - 1]
            x = layers.Dropout(config.dropout, seed=seed_i, name=f"stage{i}_dropout")(x)
    # Flatten puts channels_first maps back in (height, width, channel)
    # order, so the dense weights are the same in either layout.
    x = layers.Flatten(data_format=data_format, name="flatten")(x)
    x = layers.Dense(config.dense_units, activation="relu", kernel_initializer="he_normal", name="dense")(x)
    # float32 probabilities even under mixed precision, for a stable loss.
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32", name="probs")(x)
    return keras.Model(inputs, outputs, name=config.name)


def channel_axis(data_format):
    return 1 if data_format == "channels_first" else -1


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
            axis=channel_axis(data_format), epsilon=config.bn_epsilon, name=name + "_bn"
        )(x)
    return x


def plain_stage(x, width, config, name, data_format):
    """convs_per_stage x (3x3 conv, ReLU), then 2x2 max pooling."""
    for j in range(1, config.convs_per_stage + 1):
        x = conv(x, width, config, f"{name}_conv{j}", data_format)
        x = layers.ReLU(name=f"{name}_relu{j}")(x)
    return layers.MaxPooling2D(2, data_format=data_format, name=f"{name}_pool")(x)


def residual_stage(x, width, config, name, data_format):
    """A residual stage that halves the resolution.

    A strided 3x3 convolution replaces max pooling; the shortcut is a strided
    1x1 projection, since both the width and the resolution change.
    """
    shortcut = conv(x, width, config, f"{name}_shortcut", data_format, kernel_size=1, strides=2)
    x = conv(x, width, config, f"{name}_conv1", data_format, strides=2)
    x = layers.ReLU(name=f"{name}_relu1")(x)
    for j in range(2, config.convs_per_stage + 1):
        x = conv(x, width, config, f"{name}_conv{j}", data_format)
        if j < config.convs_per_stage:
            x = layers.ReLU(name=f"{name}_relu{j}")(x)
    x = layers.Add(name=f"{name}_add")([x, shortcut])
    return layers.ReLU(name=f"{name}_out")(x)
