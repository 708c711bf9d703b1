"""The validation split, the normalization statistics and array checksums."""

import hashlib

import numpy as np

VAL_SIZE = 5000  # the usual 45000/5000 split of CIFAR-10's training set
SPLIT_SEED = 0  # its own seed: every run and every search sees the same split
# The images the clean training accuracy is measured on: as many as the
# validation split, so the two figures carry the same sampling noise, drawn
# by a seed of their own, so every run measures the same ones.
TRAIN_SAMPLE_SIZE = 5000
TRAIN_SAMPLE_SEED = 1


def default_val_size(n_train):
    """5000 images of a full training set, 10% of a smaller one."""
    return VAL_SIZE if n_train >= 50000 else max(n_train // 10, 1)


def validation_split(labels, size, seed=SPLIT_SEED):
    """Stratified split of indices into (train, validation).

    Each class gives the same share of its images to validation (rounded so
    that the total is `size`), chosen by a generator of its own seed.

    Args:
        labels: int array of the training labels.
        size: number of validation images, 0 < size < len(labels).
        seed: seed of the split, independent of the training seed.
    """
    labels = np.asarray(labels)
    if not 0 < size < len(labels):
        raise ValueError(
            f"validation size must be in (0, {len(labels)}). Received: size={size}"
        )
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    # Largest-remainder rounding keeps the total exact and the classes even.
    exact = counts * size / len(labels)
    per_class = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - per_class), kind="stable")[: size - per_class.sum()]:
        per_class[i] += 1
    val = []
    for cls, k in zip(classes, per_class):
        members = np.flatnonzero(labels == cls)
        val.append(rng.permutation(members)[:k])
    val = np.sort(np.concatenate(val))
    train = np.setdiff1d(np.arange(len(labels)), val, assume_unique=True)
    return train, val


def train_sample(labels, size=TRAIN_SAMPLE_SIZE, seed=TRAIN_SAMPLE_SEED):
    """Sorted indices of a fixed stratified sample of `size` training images
    (`validation_split`'s rule, another seed); every index of a training
    split that has no more than `size` images."""
    labels = np.asarray(labels)
    if len(labels) <= size:
        return np.arange(len(labels))
    return validation_split(labels, size, seed)[1]


def channel_stats(images):
    """Per-channel mean and standard deviation of uint8 NHWC images, in 0..255.

    Computed in chunks so that 45000 images need no float copy in memory.
    """
    n = len(images)
    total = np.zeros(3)
    total_sq = np.zeros(3)
    for start in range(0, n, 5000):
        chunk = images[start : start + 5000].reshape(-1, 3).astype(np.float64)
        total += chunk.sum(0)
        total_sq += (chunk**2).sum(0)
    count = n * images.shape[1] * images.shape[2]
    mean = total / count
    return mean, np.sqrt(total_sq / count - mean**2)


def checksum(*arrays):
    """The first 16 hex digits of the sha256 of the arrays' raw bytes."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]
