"""Training-time augmentation as a block of Keras layers at the front of the model.

The block runs where the model runs (on the GPU when there is one), batched,
with a fresh draw for every image, and only in training: the saved model is
the network behind it (`kcifar.models.inference_network`), which never holds
these layers. Its random state lives in Keras `SeedGenerator`s, so it is part
of the model's variables and a checkpoint keeps it.

The flip is Keras's own `RandomFlip` (per image, compiles everywhere). The
crop-and-resize and rotation are `RandomCropResize` below, not Keras's
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


def augmentation_layers(config, seeds):
    """The rung's augmentation block, in order; empty when it has none.

    Args:
        config: a `kcifar.config.Config`.
        seeds: two ints (crop, flip), or None for Keras's global seed.
    """
    crop_seed, flip_seed = seeds or (None, None)
    block = []
    # float32 whatever the precision policy: coordinates and resampled pixels are not rounded to 16 bits.
    if crops(config):
        block.append(RandomCropResize(config.crop_scale, config.rotation, seed=crop_seed,
                                      dtype="float32", name="crop_resize"))
    if config.flip:
        block.append(layers.RandomFlip("horizontal", seed=flip_seed, dtype="float32", name="flip"))
    return block


def augments(config):
    """True when the rung's model has an augmentation block."""
    return crops(config) or config.flip


def crops(config):
    """True when the rung crops and resizes (a smaller crop or a rotation)."""
    return config.crop_scale < 1.0 or config.rotation > 0.0


class RandomCropResize(layers.Layer):
    """A random window of each image, optionally rotated, resized back.

    Per image: a window side s in [min_scale, 1] x the image side, an angle
    in [-max_rotation, max_rotation] degrees, and a centre that keeps the
    unrotated window inside the image, all uniform. The window is resampled
    bilinearly; where a rotated window leaves the image, the edge pixels are
    repeated. At inference the input passes through, only cast to the layer's dtype.

    Args:
        min_scale: smallest window side, as a fraction of the image side,
            in (0, 1].
        max_rotation: largest rotation in degrees, in [0, 180).
        seed: seeds the draws.
        **kwargs: base layer arguments (`name`, `dtype`).

    Input: float or integer images (N, H, W, C), square, channels_last.
    """

    def __init__(self, min_scale=1.0, max_rotation=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 < min_scale <= 1.0:
            raise ValueError(f"min_scale must be in (0, 1]. Received: min_scale={min_scale!r}")
        if not 0.0 <= max_rotation < 180.0:
            raise ValueError(f"max_rotation must be in [0, 180). Received: max_rotation={max_rotation!r}")
        self.min_scale, self.max_rotation, self.seed = float(min_scale), float(max_rotation), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        images = ops.cast(images, self.compute_dtype)
        if not training:
            return images
        return crop_resize(images, *self.draw(ops.shape(images)[0], images.shape[1]))

    def draw(self, n, size):
        """The transform of each of `n` images: (scale, angle in radians, cy, cx)."""
        uniform = lambda low, high: keras.random.uniform(  # noqa: E731
            (n,), low, high, dtype="float32", seed=self.seed_generator
        )
        scale = uniform(self.min_scale, 1.0)
        angle = uniform(-1.0, 1.0) * math.radians(self.max_rotation)
        half = size / 2 * scale
        # Centre uniform in [half, size - half] on each axis.
        cy = half + uniform(0.0, 1.0) * (size - 2 * half)
        cx = half + uniform(0.0, 1.0) * (size - 2 * half)
        return scale, angle, cy, cx

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "min_scale": self.min_scale,
                "max_rotation": self.max_rotation, "seed": self.seed}


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
