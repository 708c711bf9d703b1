"""What a rung costs, computed from its config alone (no backend imported).

The parent of `--run ... --jobs N` orders rungs by this cost without
importing Keras, so it takes no GPU memory. Only convolutions and dense
layers are counted (a multiply-add is two operations); `kcifar.bench.flops`
counts the same from a built model, and a test holds the two equal.
"""

from kcifar.config import PretrainedConfig
from kcifar.data.readers import IMAGE_SHAPE, NUM_CLASSES

TRAIN_FACTOR = 3  # a training step: the forward pass and two backward ones (inputs, weights)


def conv_flops(height, width, in_channels, out_channels, kernel_size=3, strides=1):
    """Forward operations of one 'same' 2-D convolution on one image."""
    out_h, out_w = -(-height // strides), -(-width // strides)
    return 2 * kernel_size * kernel_size * in_channels * out_channels * out_h * out_w


def dense_flops(in_units, out_units):
    return 2 * in_units * out_units


def forward_flops(config):
    """Forward operations per image of the rung's network (`kcifar.models`).

    Raises:
        ValueError: for the pretrained step, whose backbone is counted from
            the built model (`kcifar.bench.flops`), not from its config.
    """
    if isinstance(config, PretrainedConfig):
        raise ValueError(f"a backbone's operations are counted from the built model (kcifar.bench.flops). "
                         f"Received: config {config.name!r}")
    side, _, channels = IMAGE_SHAPE
    total = 0
    for width in config.widths:
        strides = 2 if config.residual and config.downsample == "stride" else 1
        if config.residual and (strides != 1 or channels != width):
            total += conv_flops(side, side, channels, width, kernel_size=1, strides=strides)
        total += conv_flops(side, side, channels, width, strides=strides)
        side = -(-side // strides)
        total += (config.convs_per_stage - 1) * conv_flops(side, side, width, width)
        if not config.residual or config.downsample == "pool":
            side //= 2  # 2x2 max pooling
        channels = width
    return total + dense_flops(side * side * channels, config.dense_units) + dense_flops(
        config.dense_units, NUM_CLASSES)


def training_flops(config, train_images):
    """Operations of the rung's whole training run on `train_images` images."""
    return TRAIN_FACTOR * forward_flops(config) * train_images * config.epochs


def costliest_first(configs, train_images=1):
    """The names of `configs` (name -> Config), the costliest training first
    and, of equal costs, the later rung first. The order in which `--run ...
    --jobs N` starts rungs, and `kcifar.bench --ladder` projects them."""
    # Rungs 0 to 6 share one network, and the batch normalization, dropout and
    # augmentation that later rungs add take time that operations do not count
    # (bench --ladder, TensorFlow on a 2-core CPU: 833 images/s for rung 0, 572
    # for rung 2, 515 for rung 6).
    return sorted(configs, key=lambda name: (training_flops(configs[name], train_images), configs[name].rung),
                  reverse=True)
