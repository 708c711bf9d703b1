"""CIFAR-10 from any of its usual sources, checked, cached and split.

    from kcifar.data import load
    data = load("../shared/data/cifar10-jpg.tar.xz")
    data.x_train.shape  # (45000, 32, 32, 3) uint8; data.x_val: (5000, ...)
"""

from kcifar.data.loader import Cifar10, load, load_arrays, resolve_source
from kcifar.data.readers import CLASS_NAMES, IMAGE_SHAPE, NUM_CLASSES, DataError

__all__ = ["CLASS_NAMES", "IMAGE_SHAPE", "NUM_CLASSES", "Cifar10", "DataError", "load", "load_arrays",
           "resolve_source"]
