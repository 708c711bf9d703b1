"""The NumPy crop-and-resize the input pipeline used before augmentation
moved into the model: the reference the Keras layers are checked against.

Split in two so a test can hand both implementations the same transforms:
`draw` (the distributions) and `crop_resize` (the resampling).
"""

import numpy as np

SIZE = 32


def draw(n, rng, min_scale=1.0, max_rotation=0.0, max_scale=1.0):
    """(scale, angle in radians, cy, cx) of n images, as the pipeline drew them
    (`max_scale` above 1, which the pipeline lacked: the same draw)."""
    scale = rng.uniform(min_scale, max_scale, n)
    angle = np.deg2rad(rng.uniform(-max_rotation, max_rotation, n))
    half = SIZE / 2 * scale
    # Uniform between half and SIZE - half, in either order.
    centre = lambda: half + rng.uniform(0, 1, n) * (SIZE - 2 * half)  # noqa: E731
    return scale, angle, centre(), centre()


def crop_resize(images, scale, angle, cy, cx):
    """Bilinear resampling of each window of uint8 images (N, 32, 32, C), rounded to uint8."""
    offset = np.arange(SIZE) + 0.5 - SIZE / 2
    cos = (np.cos(angle) * scale)[:, None, None]
    sin = (np.sin(angle) * scale)[:, None, None]
    oy, ox = offset[None, :, None], offset[None, None, :]
    sy = (cy[:, None, None] + cos * oy - sin * ox - 0.5).astype(np.float32)
    sx = (cx[:, None, None] + sin * oy + cos * ox - 0.5).astype(np.float32)
    y0, x0 = np.floor(sy), np.floor(sx)
    wy, wx = (sy - y0)[..., None], (sx - x0)[..., None]
    y0, x0 = y0.astype(np.int32), x0.astype(np.int32)
    y1, x1 = np.clip(y0 + 1, 0, SIZE - 1), np.clip(x0 + 1, 0, SIZE - 1)
    y0, x0 = np.clip(y0, 0, SIZE - 1), np.clip(x0, 0, SIZE - 1)
    flat = images.reshape(-1, images.shape[-1])
    base = (np.arange(len(images), dtype=np.int32) * SIZE * SIZE)[:, None, None]
    row0, row1 = base + y0 * SIZE, base + y1 * SIZE
    pixels = lambda index: flat[index].astype(np.float32)  # noqa: E731
    top = pixels(row0 + x0)
    top += (pixels(row0 + x1) - top) * wx
    bottom = pixels(row1 + x0)
    bottom += (pixels(row1 + x1) - bottom) * wx
    top += (bottom - top) * wy
    return (top + 0.5).astype(np.uint8)


def random_crop_resize(images, rng, min_scale=1.0, max_rotation=0.0):
    """The pipeline's augmentation: a fresh transform per image."""
    return crop_resize(images, *draw(len(images), rng, min_scale, max_rotation))


def translate(images, offsets, pad):
    """Each image padded by `pad` zeros and cropped back at its (row, column) offset."""
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    size_y, size_x = images.shape[1:3]
    return np.stack([p[dy:dy + size_y, dx:dx + size_x] for p, (dy, dx) in zip(padded, offsets)])
