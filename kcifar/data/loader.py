"""`load()`: CIFAR-10 as train/validation/test uint8 arrays, from any source."""

import contextlib
import dataclasses
import os
import re

import numpy as np

from kcifar.data import cache, download, split
from kcifar.data.readers import CLASS_NAMES, IMAGE_SHAPE, NUM_CLASSES, DataError, read_source

FULL_COUNTS = {"train": 50000, "test": 10000}
SUBSET_NOTE = "training on a stratified subset of"  # the note of Cifar10.subset, read by the report


@dataclasses.dataclass(frozen=True)
class Cifar10:
    """CIFAR-10 split three ways; images uint8 NHWC, labels uint8 0..9.

    `x_val` is carved from the training set; the test set is for the final
    report only and is never used to choose anything.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    # The file or folder name read, or "keras" for Keras's download: what
    # results files record, so that they say nothing of a machine's layout.
    source: str
    format: str  # cifar-10-batches-py, cifar-10-batches-bin or image-folder
    checksum: str  # of the full train and test arrays, before the split
    notes: tuple = ()  # e.g. "custom set: ..." when the counts are not CIFAR-10's
    lossy: bool = False  # some images were JPEGs: a lossy copy of CIFAR-10's pixels
    path: str = ""  # the absolute path read ("keras" for Keras's download); never recorded

    @property
    def description(self):
        """One line for results files: the source's name, format and checksum."""
        return describe(self.format, self.source, self.checksum, self.lossy)

    def subset(self, n):
        """A fixed, stratified subset of n training images (for quick runs);
        validation and test stay whole."""
        if not 0 < n <= len(self.y_train):
            raise ValueError(f"limit must be in [1, {len(self.y_train)}]. Received: limit_train={n}")
        if n == len(self.y_train):
            return self
        _, keep = split.validation_split(self.y_train, n, split.SPLIT_SEED)
        return dataclasses.replace(
            self, x_train=self.x_train[keep], y_train=self.y_train[keep],
            notes=self.notes + (f"{SUBSET_NOTE} {n} images",),
        )

    def train_sample(self):
        """(images, labels) of the fixed sample of the training split that
        the clean training accuracy is measured on (`split.train_sample`)."""
        keep = split.train_sample(self.y_train)
        return self.x_train[keep], self.y_train[keep]

    def channel_stats(self):
        """Per-channel mean and deviation (0..255) of the training split only."""
        return split.channel_stats(self.x_train)


LOSSY_MARK = " (JPEG mirror: lossy pixels)"


def describe(fmt, name, checksum, lossy=False):
    """The data line of results files, e.g. "image-folder at cifar10-jpg.tar.xz
    (JPEG mirror: lossy pixels), sha256:c155818c7600a777"."""
    jpeg = LOSSY_MARK if lossy else ""
    return f"{fmt} at {name}{jpeg}, sha256:{checksum}"


def source_name(path):
    """What results files call a source: its file or folder name ("keras" stays)."""
    return path if path == "keras" else os.path.basename(os.path.abspath(path))


# Results files written before sources were recorded by name held the full
# path: "image-folder at /any/folder/cifar10-jpg.tar.xz (JPEG mirror...".
_OLD_DESCRIPTION = re.compile(r"^(\S+) at (.+?)((?: \(JPEG mirror: lossy pixels\))?, sha256:[0-9a-f]+)$")


def named_description(description):
    """`description` as this version writes it: a full path (older results
    files) becomes its file or folder name; anything else is returned as is."""
    found = _OLD_DESCRIPTION.match(description)
    if not found or not os.path.isabs(found.group(2)):
        return description
    return f"{found.group(1)} at {source_name(found.group(2))}{found.group(3)}"


def comparable_description(description):
    """`named_description` without the lossy mark, to tell whether two runs
    read the same data: the checksum names the pixels, and files written
    before the mark meant JPEG put it on every image folder, PNGs too."""
    return named_description(description).replace(LOSSY_MARK, "")


def resolve_source(source=None):
    """The explicit source, else `$KCIFAR_DATA`, else None (Keras's download)."""
    return source or os.environ.get("KCIFAR_DATA") or None


def load_arrays(source=None, use_cache=True):
    """Reads (or fetches from the cache) the full train and test arrays.

    Returns (arrays dict, meta dict) where meta has the format, the source
    and the checksum. Raises DataError with one line when the source is bad.
    """
    source = resolve_source(source)
    path = download.download() if source is None else source
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file or folder")
    try:
        key = cache.source_key(path)
    except OSError as e:  # a broken link or an unreadable file in the folder
        raise DataError(f"{e.filename or path}: cannot be read ({e.strerror or e})")
    if use_cache:
        hit = cache.load(key)
        if hit:
            return hit
    with cache.locked(key) if use_cache else contextlib.nullcontext():
        hit = cache.load(key) if use_cache else None  # a parallel worker may have made it
        if hit:
            return hit
        x_train, y_train, x_test, y_test, fmt, lossy = read_source(path)
        arrays = dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
        check(arrays, path)
        meta = dict(
            format=fmt,
            lossy=lossy,
            source="keras" if source is None else os.path.abspath(path),
            checksum=split.checksum(x_train, y_train, x_test, y_test),
            notes=count_notes(arrays),
        )
        if use_cache:
            cache.save(key, arrays, meta)
    return arrays, meta


def check(arrays, path):
    """Shapes 32x32x3, labels 0..9, and every class in both splits."""
    for s in ("train", "test"):
        x, y = arrays["x_" + s], arrays["y_" + s]
        if x.ndim != 4 or x.shape[1:] != IMAGE_SHAPE or x.dtype != np.uint8:
            raise DataError(f"{path}: {s} images are {x.shape} {x.dtype}, expected uint8 images of {IMAGE_SHAPE}")
        if len(x) != len(y):
            raise DataError(f"{path}: {s} has {len(x)} images but {len(y)} labels")
        missing = sorted(set(range(NUM_CLASSES)) - set(np.unique(y).tolist()))
        if missing:
            names = ", ".join(CLASS_NAMES[i] for i in missing)
            raise DataError(f"{path}: {s} split has no images of class(es) {names}")


def count_notes(arrays):
    """A note when the counts differ from a full CIFAR-10 (allowed, reported)."""
    notes = []
    for s, full in FULL_COUNTS.items():
        counts = np.bincount(arrays["y_" + s], minlength=NUM_CLASSES)
        if len(arrays["y_" + s]) != full or (counts != full // NUM_CLASSES).any():
            notes.append(
                f"custom set: {s} has {len(arrays['y_' + s])} images "
                f"({counts.min()}..{counts.max()} per class; CIFAR-10 has {full}, {full // NUM_CLASSES} per class)"
            )
    return notes


def load(source=None, *, val_size=None, use_cache=True, limit_train=None):
    """CIFAR-10 as train/validation/test arrays.

    Args:
        source: a folder or archive (see `kcifar.data.readers`); when None,
            `$KCIFAR_DATA`, and when that is unset Keras's download and cache.
        val_size: images carved from the training set for validation; default
            5000, or 10% of a smaller set.
        use_cache: keep decoded arrays in the project's cache (`$KCIFAR_CACHE`).
        limit_train: train on a fixed stratified subset of this many images.
    """
    arrays, meta = load_arrays(source, use_cache)
    n = len(arrays["y_train"])
    size = split.default_val_size(n) if val_size is None else val_size
    if not 0 < size < n:
        raise DataError(f"validation size must be in (0, {n}). Received: val_size={size}")
    train, val = split.validation_split(arrays["y_train"], size)
    x, y = arrays["x_train"], arrays["y_train"]
    data = Cifar10(
        x_train=x[train], y_train=y[train], x_val=x[val], y_val=y[val],
        x_test=arrays["x_test"], y_test=arrays["y_test"],
        # The cache's meta keeps the full path (older entries hold it too).
        source=source_name(meta["source"]), format=meta["format"], checksum=meta["checksum"],
        notes=tuple(meta["notes"]), lossy=meta["lossy"], path=meta["source"],
    )
    if limit_train is None:
        return data
    try:
        return data.subset(limit_train)
    except ValueError as e:
        raise DataError(str(e))
