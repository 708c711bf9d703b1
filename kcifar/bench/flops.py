"""Floating-point operations of a network, counted from its layers.

Only convolutions (depthwise ones included) and dense layers are counted (a
multiply-add is two operations); pooling, activations and normalization are a
few percent and memory-bound. A training step costs about three forward
passes: the forward pass, then the gradients with respect to the inputs and
to the weights; a frozen layer with nothing trainable before it needs
neither gradient (`step_flops`).
"""

import math

import keras

from kcifar.cost import TRAIN_FACTOR, dense_flops


def layer_flops(layer):
    """Forward operations per image of one built layer; 0 for a layer not
    counted."""
    kind = type(layer).__name__
    if kind in ("Conv2D", "DepthwiseConv2D"):
        # The kernel's size is the multiply-adds per output position: (kh, kw,
        # in, out), or depthwise (kh, kw, in, multiplier), each of the in x
        # multiplier outputs reading one input channel.
        out = layer.output.shape  # (None, H, W, C) or (None, C, H, W)
        spatial = out[1] * out[2] if layer.data_format == "channels_last" else out[2] * out[3]
        return 2 * math.prod(layer.kernel.shape) * spatial
    if kind == "Dense":
        return dense_flops(*layer.kernel.shape)
    return 0


def counted_layers(model):
    """(layer, forward operations) of each counted layer of `model`, nested
    models' included, in the order the model lists them."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):  # a network behind an augmentation block, a backbone
            yield from counted_layers(layer)
        elif layer_flops(layer):
            yield layer, layer_flops(layer)


def model_flops(model):
    """Forward operations per image of a Keras model, with one row per layer.

    Read from the built model (kernel shapes and output shapes), so it holds
    for every rung, residual or not, whatever the data format, and for a
    `keras.applications` backbone.

    Returns:
        (total, rows) with rows a list of (layer name, operations).
    """
    rows = [(layer.name, flops) for layer, flops in counted_layers(model)]
    return sum(f for _, f in rows), rows


def train_flops(forward):
    """Operations of one training step per image, from the forward count."""
    return TRAIN_FACTOR * forward


def step_flops(model):
    """Operations of one training step per image of a compiled `model`, from
    which of its layers train: the forward pass through every layer, and the
    two gradients (twice the forward) through every layer from the first one
    with trainable weights on. For a rung, whose every layer trains, that is
    `train_flops` of its forward count; with a frozen backbone, the forward
    pass and the head's gradients.
    """
    total = backward = 0
    for layer, flops in counted_layers(model):
        backward = backward or bool(layer.trainable_weights)
        total += flops + (2 * flops if backward else 0)
    return total
