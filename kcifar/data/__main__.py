"""python -m kcifar.data info|prepare [SOURCE]

`info` prints the format found, counts per split and class, per-channel mean
and deviation of the training split, and checksums; `prepare` fills the cache.
SOURCE defaults to $KCIFAR_DATA, then to Keras's download.
"""

import argparse
import sys
import time

import numpy as np

from kcifar.command import Parser, UsageError, error
from kcifar.data import CLASS_NAMES, DataError, load
from kcifar.data.split import checksum

PROG = "python -m kcifar.data"


def info(data, seconds):
    print(f"source:   {data.source}")
    print(f"format:   {data.format}")
    print(f"checksum: sha256:{data.checksum} (train+test arrays)")
    for name in ("train", "val", "test"):
        x, y = getattr(data, "x_" + name), getattr(data, "y_" + name)
        print(f"{name + ':':9} {len(y):6d} images  x sha256:{checksum(x)}  y sha256:{checksum(y)}")
    n_all = len(data.y_train) + len(data.y_val)
    print(f"training set: {n_all} images = {len(data.y_train)} train + {len(data.y_val)} validation")
    print("per class:")
    print(f"  {'class':12}{'train+val':>10}{'train':>7}{'val':>7}{'test':>7}")
    counts = [np.bincount(getattr(data, "y_" + s), minlength=10) for s in ("train", "val", "test")]
    counts.insert(0, counts[0] + counts[1])
    for i, name in enumerate(CLASS_NAMES):
        print(f"  {name:12}{counts[0][i]:10d}" + "".join(f"{c[i]:7d}" for c in counts[1:]))
    mean, std = data.channel_stats()
    print(f"mean (RGB, 0..255, train split): {np.round(mean, 2).tolist()}")
    print(f"std  (RGB, 0..255, train split): {np.round(std, 2).tolist()}")
    for note in data.notes:
        print(f"note: {note}")
    if data.lossy:
        print("note: JPEG mirror (lossy pixels); say 'CIFAR-10 (JPEG mirror)' next to accuracies measured on it")
    print(f"loaded in {seconds:.2f} s")


def main(argv=None):
    parser = Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["info", "prepare"])
    parser.add_argument("source", nargs="?", help="folder or .tar/.tar.gz/.tar.xz archive")
    parser.add_argument("--val-size", type=int, help="validation images (default 5000 or 10%%)")
    start = time.perf_counter()
    try:
        args = parser.parse_args(argv)
        data = load(args.source, val_size=args.val_size)
    except (UsageError, DataError) as e:
        return error(PROG, e)
    seconds = time.perf_counter() - start
    if args.command == "info":
        info(data, seconds)
    else:
        print(f"cached {data.description} ({seconds:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
