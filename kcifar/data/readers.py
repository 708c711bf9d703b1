"""Readers for the three ways CIFAR-10 is handed out.

`read_source` returns `(x_train, y_train, x_test, y_test, fmt, lossy)` with
uint8 NHWC images and uint8 labels, and raises `DataError` with one line naming the file
at fault. A source is a folder or a `.tar`, `.tar.gz` or `.tar.xz` archive; the
format is recognised from the file names inside it:

- `cifar-10-batches-py`: `data_batch_1..5` and `test_batch` (pickles),
- `cifar-10-batches-bin`: `data_batch_1..5.bin` and `test_batch.bin`,
- an image folder: `train/<class>/*` and `test/<class>/*` (PNG or JPEG).
"""

import gzip
import io
import lzma
import os
import pickle
import sys
import tarfile
import time

import numpy as np

CLASS_NAMES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SHAPE = (32, 32, 3)  # height, width, RGB: what every reader returns and every model takes
JPEG_SUFFIXES = (".jpg", ".jpeg")  # lossy: a JPEG's pixels are not CIFAR-10's own
IMAGE_SUFFIXES = (".png",) + JPEG_SUFFIXES
PY_BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
BIN_BATCHES = [name + ".bin" for name in PY_BATCHES]
BIN_RECORD = 1 + 32 * 32 * 3  # one label byte, then 1024 R, 1024 G, 1024 B


class DataError(Exception):
    """A source that cannot be read as CIFAR-10; the message is one line."""


# --- listing a folder or an archive -------------------------------------------


def list_files(path):
    """Returns {relative path: bytes} of the files a CIFAR-10 reader may need.

    Archives are read as a stream, because seeking in an xz file decompresses
    it again from the start.
    """
    wanted = lambda name: (  # noqa: E731
        os.path.basename(name) in PY_BATCHES + BIN_BATCHES
        or name.lower().endswith(IMAGE_SUFFIXES)
    )
    files = {}
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file or folder")
    if os.path.isdir(path):
        for root, _, names in os.walk(path):
            for name in names:
                full = os.path.join(root, name)
                rel = os.path.relpath(full, path).replace(os.sep, "/")
                if wanted(rel):
                    with open(full, "rb") as f:
                        files[rel] = f.read()
    elif tarfile.is_tarfile(path):
        try:
            with tarfile.open(path, "r|*") as tar:
                for member in tar:
                    if member.isfile() and wanted(member.name):
                        files[member.name] = tar.extractfile(member).read()
        except (tarfile.TarError, EOFError, OSError) as e:
            raise DataError(f"{path}: archive is truncated or corrupt ({e})")
    else:
        trouble = _archive_trouble(path)
        if trouble:
            raise DataError(f"{path}: not a readable archive: {trouble}")
        raise DataError(f"{path}: not a folder nor a .tar/.tar.gz/.tar.xz archive")
    return files


# The compressed archives read: their suffix, the compression, a reader of
# the decompressed bytes and what it raises on a file compressed otherwise.
COMPRESSED = {
    ".tar.gz": ("gzip", gzip.open, (OSError, EOFError)),
    ".tar.xz": ("xz", lzma.open, (lzma.LZMAError, OSError, EOFError)),
}


def _archive_trouble(path):
    """Why a file named as an archive (.tar, .tar.gz, .tar.xz) that tarfile
    cannot read is none, in a few words; None for a file named otherwise."""
    name = path.lower()
    if not name.endswith((".tar", *COMPRESSED)):
        return None
    if os.path.getsize(path) == 0:
        return "the file is empty"
    for suffix, (kind, opener, errors) in COMPRESSED.items():
        if name.endswith(suffix):
            try:
                with opener(path) as f:
                    f.read(1)
            except errors:
                return f"the file is not {kind}-compressed"
            return f"{kind}-compressed, but no tar archive inside"
    return "the file is not a tar archive"


def read_source(path):
    """Reads CIFAR-10 from a folder or archive in any of the three formats.

    Returns (x_train, y_train, x_test, y_test, format, lossy), where lossy
    says that some images were JPEGs: their pixels are not CIFAR-10's own.
    """
    files = list_files(path)
    by_base = {}
    for name in files:
        by_base.setdefault(os.path.basename(name), name)
    if "data_batch_1" in by_base:
        return (*_read_batches(files, by_base, PY_BATCHES, _read_py_batch),
                "cifar-10-batches-py", False)
    if "data_batch_1.bin" in by_base:
        return (*_read_batches(files, by_base, BIN_BATCHES, _read_bin_batch),
                "cifar-10-batches-bin", False)
    if any(_image_split(name) for name in files):
        *arrays, lossy = _read_image_folder(files, path)
        return (*arrays, "image-folder", lossy)
    raise DataError(
        f"{path}: no CIFAR-10 found (expected cifar-10-batches-py, "
        "cifar-10-batches-bin, or train/<class>/ and test/<class>/ images)"
    )


def _read_batches(files, by_base, names, read_one):
    missing = [n for n in names if n not in by_base]
    if missing:
        raise DataError(f"missing batch file(s): {', '.join(missing)}")
    parts = [read_one(by_base[n], files[by_base[n]]) for n in names]
    x_train = np.concatenate([x for x, _ in parts[:-1]])
    y_train = np.concatenate([y for _, y in parts[:-1]])
    x_test, y_test = parts[-1]
    return x_train, y_train, x_test, y_test


# --- cifar-10-batches-py --------------------------------------------------------


class _Refused(pickle.UnpicklingError):
    pass


class _BatchUnpickler(pickle.Unpickler):
    """Admits only what the official batches hold: a dict of bytes, lists,
    ints and one NumPy array. Anything else (os.system, eval, ...) is refused
    before it is called, so a crafted file runs nothing."""

    ALLOWED = {
        ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise _Refused(f"refused to load {module}.{name}")


def _read_py_batch(name, raw):
    try:
        batch = _BatchUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except _Refused as e:
        raise DataError(f"{name}: not a CIFAR-10 batch, {e}")
    except Exception as e:  # truncated pickles raise EOFError, ValueError, ...
        raise DataError(f"{name}: truncated or corrupt ({type(e).__name__}: {e})")
    if not isinstance(batch, dict):
        raise DataError(f"{name}: not a CIFAR-10 batch (a {type(batch).__name__})")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    data, labels = batch.get("data"), batch.get("labels")
    if not isinstance(data, np.ndarray) or labels is None:
        raise DataError(f"{name}: not a CIFAR-10 batch (no data/labels)")
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DataError(
            f"{name}: wrong shape, data {data.shape} with {len(labels)} labels "
            "(expected (N, 3072) with N labels)"
        )
    x = data.astype(np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x), _labels(name, labels)


# --- cifar-10-batches-bin -----------------------------------------------------


def _read_bin_batch(name, raw):
    if len(raw) == 0 or len(raw) % BIN_RECORD:
        raise DataError(
            f"{name}: truncated or corrupt ({len(raw)} bytes is not a "
            f"multiple of {BIN_RECORD}-byte records)"
        )
    records = np.frombuffer(raw, np.uint8).reshape(-1, BIN_RECORD)
    x = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x), _labels(name, records[:, 0])


def _labels(name, labels):
    labels = np.asarray(labels)
    bad = labels[(labels < 0) | (labels > 9)]
    if bad.size:
        raise DataError(f"{name}: label {int(bad[0])} outside 0..9")
    return labels.astype(np.uint8)


# --- image folder ---------------------------------------------------------------


def _image_split(name):
    """'x/train/cat/1.png' -> ('train', 'cat'); None for other paths."""
    parts = name.split("/")
    if len(parts) >= 3 and parts[-3] in ("train", "test"):
        return parts[-3], parts[-2]
    return None


def _read_image_folder(files, path):
    """Returns (x_train, y_train, x_test, y_test, lossy): lossy when any of
    the images read is a JPEG."""
    entries = {"train": [], "test": []}
    for name in files:
        where = _image_split(name)
        if where is None:
            continue
        split, cls = where
        if cls not in CLASS_NAMES:
            raise DataError(
                f"{name}: class folder '{cls}' is not a CIFAR-10 class "
                f"({', '.join(CLASS_NAMES)})"
            )
        entries[split].append((CLASS_NAMES.index(cls), name))
    for split, items in entries.items():
        present = {label for label, _ in items}
        missing = [c for i, c in enumerate(CLASS_NAMES) if i not in present]
        if missing:
            raise DataError(
                f"{path}: {split}/ has no images for class(es) {', '.join(missing)}"
            )
    total = sum(len(v) for v in entries.values())
    progress = Progress(total, f"decoding {total} images from {path}")
    try:
        arrays = _decode(entries, files, progress)
    except BaseException:  # a bad image, Ctrl-C: its line starts below the bar
        progress.abandon()
        raise
    progress.close()
    lossy = any(name.lower().endswith(JPEG_SUFFIXES) for items in entries.values() for _, name in items)
    return (*arrays, lossy)


def _decode(entries, files, progress):
    """[x_train, y_train, x_test, y_test] of the image folder's `entries`."""
    from PIL import Image

    arrays = []
    for split in ("train", "test"):
        items = sorted(entries[split])
        x = np.empty((len(items), *IMAGE_SHAPE), np.uint8)
        for i, (_, name) in enumerate(items):
            try:
                with Image.open(io.BytesIO(files[name])) as im:
                    im.load()
                    rgb = im.convert("RGB")
            except Exception as e:
                raise DataError(f"{name}: unreadable image ({e})")
            if rgb.size != (32, 32):
                raise DataError(
                    f"{name}: image is {rgb.size[0]}x{rgb.size[1]}, expected 32x32"
                )
            x[i] = np.asarray(rgb)
            progress.update()
        arrays += [x, np.array([label for label, _ in items], np.uint8)]
    return arrays


class Progress:
    """A one-line progress bar on stderr, redrawn at most ten times a second;
    in a log file (not a terminal) only the final line is written.

    Hand-written because the data layer never imports Keras (the ladder's
    parent and `python -m kcifar.data` load no backend), so
    `keras.utils.Progbar` does not serve, and a bar this size is not worth a
    dependency such as tqdm."""

    def __init__(self, total, title):
        self.total, self.title, self.done, self.last = total, title, 0, 0.0
        self.start = time.monotonic()
        self.live = sys.stderr.isatty()

    def update(self, n=1):
        self.done += n
        now = time.monotonic()
        if self.live and (now - self.last > 0.1 or self.done == self.total):
            self.last = now
            self._draw(now)

    def _draw(self, now):
        width = 30
        filled = width * self.done // max(self.total, 1)
        sys.stderr.write(
            f"\r{self.title} [{'#' * filled}{'.' * (width - filled)}] "
            f"{self.done}/{self.total} {now - self.start:.0f}s"
        )

    def abandon(self):
        """Ends a bar that stops short (an error, Ctrl-C) where it stands, so
        that the message after it starts a line of its own."""
        if self.live:
            sys.stderr.write("\n")
            sys.stderr.flush()

    def close(self):
        if not self.live:
            self._draw(time.monotonic())
        sys.stderr.write("\n")
        sys.stderr.flush()
