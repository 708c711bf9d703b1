"""Floating-point operations of a network, counted from its layers.

Only convolutions and dense layers are counted (a multiply-add is two
operations); pooling, activations and normalization are a few percent and
memory-bound. A training step costs about three forward passes: the forward
pass, then the gradients with respect to the inputs and to the weights.
"""

import keras

from kcifar.cost import TRAIN_FACTOR, dense_flops


def model_flops(model):
    """Forward operations per image of a Keras model, with one row per layer.

    Read from the built model (kernel shapes and output shapes), so it holds
    for every rung, residual or not, whatever the data format.

    Returns:
        (total, rows) with rows a list of (layer name, operations).
    """
    rows = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):  # a network behind an augmentation block
            rows += model_flops(layer)[1]
            continue
        kind = type(layer).__name__
        if kind == "Conv2D":
            kh, kw, cin, cout = layer.kernel.shape
            out = layer.output.shape  # (None, H, W, C) or (None, C, H, W)
            spatial = out[1] * out[2] if layer.data_format == "channels_last" else out[2] * out[3]
            rows.append((layer.name, 2 * kh * kw * cin * cout * spatial))
        elif kind == "Dense":
            rows.append((layer.name, dense_flops(*layer.kernel.shape)))
    return sum(f for _, f in rows), rows


def train_flops(forward):
    """Operations of one training step per image, from the forward count."""
    return TRAIN_FACTOR * forward
