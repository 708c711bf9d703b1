"""Training-time augmentation as a block of Keras layers at the front of the model.

The block runs where the model runs (on the GPU when there is one), batched,
with a fresh draw for every image, and only in training: the saved model is
the network behind it (`kcifar.models.inference_network`), which never holds
these layers. Its random state lives in Keras `SeedGenerator`s, so it is part
of the model's variables and a checkpoint keeps it.

Each layer makes one random call per batch, whatever the batch holds:
`RandomCropResize` one uniform (N, 4) draw (scale, angle and centre of every
image), `RandomTranslate` one integer (N, 2) draw, Keras's `RandomFlip` one
uniform draw; the draws are mapped onto their ranges with tensor operations
and nothing is read back to the host. The count matters on torch, where
every seeded call goes through Keras's `torch_seed_generator`: a graph
break under `torch.compile`, and a device-to-host read of the seed state on
a GPU.

The flip is Keras's own `RandomFlip` (per image, compiles everywhere). The
crop-and-resize and rotation are `RandomCropResize` below, and the
translation (pad and crop back) `RandomTranslate`, not Keras's
`RandomCrop`/`RandomZoom`/`RandomRotation`/`RandomTranslation`: `RandomCrop`
draws one offset for the whole batch, and all four set `supports_jit = False`,
which switches compilation off for the whole model (JAX then never jits the
train step). `RandomCropResize` is one gather of four neighbours per output
pixel on `keras.ops`, which compiles under XLA on TensorFlow and JAX and runs
batched on torch (`keras.ops.image.affine_transform` is neither: XLA cannot
compile TensorFlow's kernel for it, and torch's loops over the images).
"""

import math

import keras
from keras import layers, ops


# One per layer the block may hold: crop-and-resize, flip, translation (the
# last added last, so that the others keep the seeds they had before it).
SEEDS = 3


def augmentation_layers(config, seeds):
    """The rung's augmentation block, in order; empty when it has none.

    Args:
        config: a `kcifar.config.Config`.
        seeds: `SEEDS` ints (crop, flip, translation), or None for Keras's
            global seed.
    """
    crop_seed, flip_seed, translate_seed = seeds or (None,) * SEEDS
    block = []
    # float32 whatever the precision policy: coordinates and resampled pixels are not rounded to 16 bits.
    if crops(config):
        block.append(RandomCropResize(config.crop_scale, config.rotation, max_scale=config.crop_max_scale,
                                      seed=crop_seed, dtype="float32", name="crop_resize"))
    if config.translate:
        block.append(RandomTranslate(config.translate, seed=translate_seed, dtype="float32", name="translate"))
    if config.flip:
        block.append(layers.RandomFlip("horizontal", seed=flip_seed, dtype="float32", name="flip"))
    return block


def augments(config):
    """True when the rung's model has an augmentation block."""
    return crops(config) or config.translate > 0 or config.flip


def without_augmentation(config):
    """The same rung with no augmentation block: what the block costs, or
    the network alone."""
    return config.replace(flip=False, crop_scale=1.0, crop_max_scale=1.0, translate=0, rotation=0.0)


def crops(config):
    """True when the rung crops and resizes (a window other than the whole
    image, or a rotation)."""
    return config.crop_scale < 1.0 or config.crop_max_scale > 1.0 or config.rotation > 0.0


class RandomCropResize(layers.Layer):
    """A random window of each image, optionally rotated, resized back.

    Per image: a window side s in [min_scale, max_scale] x the image side,
    an angle in [-max_rotation, max_rotation] degrees, and a centre, all
    uniform, drawn for the whole batch in one random call. The centre keeps
    an unrotated window inside the image, or, for a window larger than the
    image (s > 1, the image shrunk), the image inside the window. The
    window is resampled bilinearly; where it leaves the image, the edge
    pixels are repeated. At inference the input passes through, only cast
    to the layer's dtype.

    Args:
        min_scale: smallest window side, as a fraction of the image side,
            in (0, max_scale].
        max_rotation: largest rotation in degrees, in [0, 180).
        max_scale: largest window side, in [1, 2]; above 1 the image is
            shrunk as well as magnified.
        seed: seeds the draws.
        **kwargs: base layer arguments (`name`, `dtype`).

    Input: float or integer images (N, H, W, C), square, channels_last.
    """

    def __init__(self, min_scale=1.0, max_rotation=0.0, max_scale=1.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 1.0 <= max_scale <= 2.0:
            raise ValueError(f"max_scale must be in [1, 2]. Received: max_scale={max_scale!r}")
        if not 0.0 < min_scale <= max_scale:
            raise ValueError(f"min_scale must be in (0, max_scale]. Received: min_scale={min_scale!r}")
        if not 0.0 <= max_rotation < 180.0:
            raise ValueError(f"max_rotation must be in [0, 180). Received: max_rotation={max_rotation!r}")
        self.min_scale, self.max_rotation, self.seed = float(min_scale), float(max_rotation), seed
        self.max_scale = float(max_scale)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        images = ops.cast(images, self.compute_dtype)
        if not training:
            return images
        return crop_resize(images, *self.draw(ops.shape(images)[0], images.shape[1]))

    def draw(self, n, size):
        """The transform of each of `n` images: (scale, angle in radians, cy, cx).

        One random call for the batch: a uniform (n, 4) draw on [0, 1),
        one column per quantity, mapped onto its range on the device.
        """
        u = ops.unstack(keras.random.uniform((n, 4), dtype="float32", seed=self.seed_generator), 4, axis=1)
        scale = self.min_scale + u[0] * (self.max_scale - self.min_scale)
        angle = (2.0 * u[1] - 1.0) * math.radians(self.max_rotation)
        half = size / 2 * scale
        # Centre uniform between half and size - half on each axis (in
        # either order: for a window larger than the image, half is the greater).
        cy = half + u[2] * (size - 2 * half)
        cx = half + u[3] * (size - 2 * half)
        return scale, angle, cy, cx

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "min_scale": self.min_scale, "max_rotation": self.max_rotation,
                "max_scale": self.max_scale, "seed": self.seed}


class RandomTranslate(layers.Layer):
    """Each image shifted by a whole number of pixels: padded by `pad` black
    pixels on every side and cropped back to its size at a random offset,
    drawn per image (torchvision's `RandomCrop(size, padding=pad)`; Keras's
    `RandomCrop` draws one offset for the whole batch). At inference the
    input passes through, only cast to the layer's dtype.

    Args:
        pad: largest shift in pixels, either way on each axis, >= 1.
        seed: seeds the draws.
        **kwargs: base layer arguments (`name`, `dtype`).

    Input: float or integer images (N, H, W, C), channels_last.
    """

    def __init__(self, pad, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not (isinstance(pad, int) and pad >= 1):
            raise ValueError(f"pad must be a whole number of pixels >= 1. Received: pad={pad!r}")
        self.pad, self.seed = pad, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        images = ops.cast(images, self.compute_dtype)
        if not training:
            return images
        # One draw for the batch: the (row, column) offset of each image's crop in the padded image.
        offsets = keras.random.randint((ops.shape(images)[0], 2), 0, 2 * self.pad + 1, dtype="int32",
                                       seed=self.seed_generator)
        return translate(images, offsets, self.pad)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "pad": self.pad, "seed": self.seed}


def translate(images, offsets, pad):
    """Crops each image, padded by `pad` zeros, back to its size at its offset.

    Args:
        images: float images (N, H, W, C).
        offsets: int32 (N, 2): each crop's top row and left column in the
            padded image, in [0, 2 * pad].
        pad: the padding, in pixels.
    """
    n, height, width, channels = ops.shape(images)[0], images.shape[1], images.shape[2], images.shape[3]
    padded = ops.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    rows, cols = height + 2 * pad, width + 2 * pad
    y = ops.reshape(ops.arange(height, dtype="int32"), (1, -1, 1)) + ops.reshape(offsets[:, 0], (-1, 1, 1))
    x = ops.reshape(ops.arange(width, dtype="int32"), (1, 1, -1)) + ops.reshape(offsets[:, 1], (-1, 1, 1))
    base = ops.reshape(ops.arange(n, dtype="int32") * (rows * cols), (-1, 1, 1))
    # One gather on the flattened batch, as crop_resize does.
    return ops.take(ops.reshape(padded, (-1, channels)), base + y * cols + x, axis=0)


def crop_resize(images, scale, angle, cy, cx):
    """Resamples each image's window bilinearly back to the image size.

    Output pixel centres, relative to the window centre, are mapped into the
    source by src = centre + scale * R(angle) @ offset, in continuous
    coordinates (pixel i covers [i, i + 1)); out-of-range neighbours are
    clamped to the edge.

    Args:
        images: float images (N, S, S, C).
        scale, angle, cy, cx: float32 (N,): window side as a fraction of S,
            angle in radians, window centre in pixels.
    """
    n, size, channels = ops.shape(images)[0], images.shape[1], images.shape[-1]
    offset = ops.arange(size, dtype="float32") + (0.5 - size / 2)
    cos = ops.reshape(ops.cos(angle) * scale, (-1, 1, 1))
    sin = ops.reshape(ops.sin(angle) * scale, (-1, 1, 1))
    oy, ox = ops.reshape(offset, (1, -1, 1)), ops.reshape(offset, (1, 1, -1))
    sy = ops.reshape(cy, (-1, 1, 1)) + cos * oy - sin * ox - 0.5
    sx = ops.reshape(cx, (-1, 1, 1)) + sin * oy + cos * ox - 0.5
    y0, x0 = ops.floor(sy), ops.floor(sx)
    wy = ops.expand_dims(sy - y0, -1)
    wx = ops.expand_dims(sx - x0, -1)
    clamp = lambda i: ops.clip(ops.cast(i, "int32"), 0, size - 1)  # noqa: E731
    y0, y1, x0, x1 = clamp(y0), clamp(y0 + 1), clamp(x0), clamp(x0 + 1)
    # One gather of the four neighbours on the flattened batch: (N*S*S, C) rows.
    flat = ops.reshape(images, (-1, channels))
    base = ops.reshape(ops.arange(n, dtype="int32") * (size * size), (-1, 1, 1))
    rows = ops.stack([base + y0 * size + x0, base + y0 * size + x1, base + y1 * size + x0, base + y1 * size + x1])
    p00, p01, p10, p11 = ops.unstack(ops.take(flat, rows, axis=0), 4)
    wy, wx = ops.cast(wy, images.dtype), ops.cast(wx, images.dtype)
    top = p00 + (p01 - p00) * wx
    bottom = p10 + (p11 - p10) * wx
    return top + (bottom - top) * wy
