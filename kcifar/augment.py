"""Crop-and-resize and rotation, a fresh draw per image, vectorized in NumPy.

Why here and not in the model: Keras's RandomCrop, RandomTranslation,
RandomRotation and RandomZoom switch JAX compilation off for the whole model
(`supports_jit = False`), RandomCrop crops a whole batch at one place and
passes its input through unchanged at inference, and running such layers image
by image in the input pipeline costs milliseconds per image. One affine
resampling of the uint8 batch here costs a few milliseconds per batch of 128
and never touches evaluation: only the training batches pass through it.
The horizontal flip needs none of this: Keras's RandomFlip draws per image
and compiles on every backend, so it lives in the model.
"""

import numpy as np

SIZE = 32


def random_crop_resize(images, rng, min_scale=1.0, max_rotation=0.0):
    """Random window of each image, optionally rotated, resized back to 32x32.

    For each image a side s in [min_scale, 1] x 32, an angle in
    [-max_rotation, max_rotation] degrees and a centre that keeps the
    unrotated window inside the image are drawn; the window is resampled
    bilinearly (edges clamped where a rotated window leaves the image).

    Args:
        images: uint8 array (N, 32, 32, C).
        rng: a `numpy.random.Generator`.
        min_scale: smallest window side as a fraction of the image side.
        max_rotation: largest rotation in degrees.
    """
    if not 0.0 < min_scale <= 1.0:
        raise ValueError(f"min_scale must be in (0, 1]. Received: min_scale={min_scale}")
    n = len(images)
    scale = rng.uniform(min_scale, 1.0, n)
    angle = np.deg2rad(rng.uniform(-max_rotation, max_rotation, n))
    half = SIZE / 2 * scale
    cy = rng.uniform(half, SIZE - half)
    cx = rng.uniform(half, SIZE - half)

    # Output pixel centres relative to the window centre, mapped into the
    # source: src = centre + scale * R(angle) @ offset (continuous coords).
    offset = np.arange(SIZE) + 0.5 - SIZE / 2
    cos = (np.cos(angle) * scale)[:, None, None]
    sin = (np.sin(angle) * scale)[:, None, None]
    oy, ox = offset[None, :, None], offset[None, None, :]
    sy = cy[:, None, None] + cos * oy - sin * ox - 0.5
    sx = cx[:, None, None] + sin * oy + cos * ox - 0.5
    return _bilinear(images, sy, sx)


def _bilinear(images, sy, sx):
    """Samples images (N, H, W, C) at float coords (N, 32, 32), in float32."""
    sy = sy.astype(np.float32)
    sx = sx.astype(np.float32)
    y0, x0 = np.floor(sy), np.floor(sx)
    wy, wx = (sy - y0)[..., None], (sx - x0)[..., None]
    y0, x0 = y0.astype(np.int32), x0.astype(np.int32)
    y1 = np.clip(y0 + 1, 0, SIZE - 1)
    x1 = np.clip(x0 + 1, 0, SIZE - 1)
    y0 = np.clip(y0, 0, SIZE - 1)
    x0 = np.clip(x0, 0, SIZE - 1)
    # Gathers on the flattened batch are about twice as fast as 3-D indexing.
    flat = images.reshape(-1, images.shape[-1])
    base = (np.arange(len(images), dtype=np.int32) * SIZE * SIZE)[:, None, None]
    row0, row1 = base + y0 * SIZE, base + y1 * SIZE
    pixels = lambda index: flat[index].astype(np.float32)  # noqa: E731
    top = pixels(row0 + x0)
    top += (pixels(row0 + x1) - top) * wx
    bottom = pixels(row1 + x0)
    bottom += (pixels(row1 + x1) - bottom) * wx
    top += (bottom - top) * wy
    return (top + 0.5).astype(np.uint8)  # values stay in 0..255: no clip needed


def augmenter(config):
    """The pipeline's augmentation for a config, or None when it has none."""
    if not config.augments:
        return None
    return lambda images, rng: random_crop_resize(
        images, rng, min_scale=config.crop_scale, max_rotation=config.rotation
    )
