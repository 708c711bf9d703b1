"""python -m kcifar.predict MODEL.keras IMAGE [IMAGE ...] [--top K]

Classifies your own image files with a saved model: one line per image with
the K most probable classes and their probabilities. Any size or mode Pillow
reads is made 32x32 RGB: turned upright by its EXIF orientation, its central
square cropped (CIFAR-10's images are square; --resize stretch keeps the whole
picture instead) and resized. A file that is not a readable image gets one
line on stderr and the rest are still classified. Exit status: 0 when at
least one image was classified, 1 when none could be, 2 for bad usage or a
model that cannot be loaded.
"""

import argparse
import sys

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from kcifar.cli import check_backend
from kcifar.command import Parser, UsageError, error

PROG = "python -m kcifar.predict"
SIZE = (32, 32)
RESIZE = ("crop", "stretch")


class ImageError(Exception):
    """An image file that cannot be classified; the message is one line."""


def read_image(path, resize="crop"):
    """The image at `path` as a (32, 32, 3) uint8 array; ImageError if unreadable.

    Args:
        path: any image file Pillow reads.
        resize: "crop" (the central square, resized) or "stretch" (the whole
            image, resized to a square).
    """
    if resize not in RESIZE:
        raise ValueError(f"resize must be one of {', '.join(RESIZE)}. Received: resize={resize!r}")
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image).convert("RGB")
    except FileNotFoundError:
        raise ImageError("no such file")
    except IsADirectoryError:
        raise ImageError("a folder, not an image file")
    except UnidentifiedImageError:
        raise ImageError("not an image file Pillow can read")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        # Truncated or corrupt data shows only on decoding, with varied errors.
        raise ImageError(f"unreadable image ({e})")
    if resize == "crop":
        image = ImageOps.fit(image, SIZE, method=Image.Resampling.LANCZOS)
    else:
        image = image.resize(SIZE, Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8)


def top_classes(probs, k):
    """The `k` most probable (class name, probability) pairs, most probable first."""
    from kcifar.data import CLASS_NAMES

    order = np.argsort(-probs, kind="stable")[:k]
    return [(CLASS_NAMES[i], float(probs[i])) for i in order]


def main(argv=None):
    p = Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL.keras", help="a saved Keras model, e.g. a run folder's model.keras")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ... of any size)")
    p.add_argument("--top", type=int, default=3, metavar="K", help="classes to show per image, 1 to 10 (default 3)")
    p.add_argument("--resize", choices=RESIZE, default="crop",
                   help="crop: the central square (default); stretch: the whole image squeezed to a square")
    try:
        args = p.parse_args(argv)
        if not 1 <= args.top <= 10:
            raise UsageError(f"--top must be in 1..10. Received: --top {args.top}")
        check_backend()
        from kcifar.evaluate import load_model

        model = load_model(args.model)
    except UsageError as e:
        return error(PROG, e)
    paths, images = [], []
    for path in args.images:
        try:
            images.append(read_image(path, args.resize))
            paths.append(path)
        except ImageError as e:
            print(f"{PROG}: skipped {path}: {e}", file=sys.stderr)
    if not images:
        return error(PROG, "no image could be read", 1)
    probs = model.predict(np.stack(images), batch_size=256, verbose=0)
    for path, row in zip(paths, probs):
        print(f"{path}: " + ", ".join(f"{name} {prob:.3f}" for name, prob in top_classes(row, args.top)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
