"""What the hand-written steps share: which networks they cover, and the
initial weights, drawn once in NumPy so that every framework starts alike.

The hand-written steps implement the plain convolution stacks of the ladder
(rung 0's family: any widths, convolutions per stage and dense units) with
no Keras in the loop: 'same' 3x3 convolutions with bias and ReLU, 2x2 max
pooling after each stage, dense + ReLU, dense logits and a softmax
cross-entropy, He-normal initialization, Adam with Keras's constants.
"""

import numpy as np

from kcifar.augment import augments
from kcifar.data.readers import NUM_CLASSES

ADAM = {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}  # Keras's Adam defaults


def unsupported(config):
    """Why the hand-written steps cannot build `config`, or None if they can."""
    extras = [
        name
        for name, on in (
            ("residual stages", config.residual),
            ("batch normalization", config.batch_norm),
            ("dropout", config.dropout),
            ("input noise", config.input_noise),
            ("L2 penalty", config.l2),
            ("augmentation", augments(config)),
            ("learning-rate decay", config.lr_decay < 1.0),
        )
        if on
    ]
    if extras:
        return f"hand-written steps cover rung 0's plain network only; {config.name} adds {', '.join(extras)}"
    return None


def he_normal(rng, shape, fan_in):
    """Keras's HeNormal: a normal truncated at two deviations, rescaled so
    that the deviation is sqrt(2 / fan_in)."""
    std = np.sqrt(2.0 / fan_in) / 0.87962566103423978
    values = rng.standard_normal(shape)
    while np.any(np.abs(values) > 2):
        bad = np.abs(values) > 2
        values[bad] = rng.standard_normal(bad.sum())
    return (values * std).astype(np.float32)


def init_params(config, seed):
    """Initial weights in Keras's layouts: conv kernels HWIO, dense (in, out).

    Returns:
        A list of (kernel, bias) pairs: the convolutions in order, then the
        hidden dense layer, then the logits layer (Glorot-uniform, as Keras's
        default for the output layer).
    """
    rng = np.random.default_rng(seed)
    params, channels = [], 3
    for width in config.widths:
        for _ in range(config.convs_per_stage):
            kernel = he_normal(rng, (3, 3, channels, width), 9 * channels)
            params.append((kernel, np.zeros(width, np.float32)))
            channels = width
    side = 32 // 2 ** len(config.widths)
    flat = channels * side * side
    params.append((he_normal(rng, (flat, config.dense_units), flat), np.zeros(config.dense_units, np.float32)))
    limit = np.sqrt(6.0 / (config.dense_units + NUM_CLASSES))
    logits = rng.uniform(-limit, limit, (config.dense_units, NUM_CLASSES)).astype(np.float32)
    params.append((logits, np.zeros(NUM_CLASSES, np.float32)))
    return params


def count_params(params):
    return sum(k.size + b.size for k, b in params)
