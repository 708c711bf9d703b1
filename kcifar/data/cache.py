"""The project's own cache of decoded CIFAR-10 arrays.

Decoding 60000 JPEGs takes about 15 s and Keras re-checks its archive on every
call, so each source is decoded once and kept as an uncompressed `.npz` that
loads in a fraction of a second. Files are written under a temporary name and
renamed, so a crash never leaves a half-written cache, and a file lock keeps
parallel tuner workers from decoding the same source twice.
"""

import contextlib
import hashlib
import json
import os
import sys
import zipfile

import filelock
import numpy as np

from kcifar import files

FORMAT_VERSION = 2  # bump when the cached layout changes (2: meta says whether pixels are lossy)
ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def cache_dir():
    """`$KCIFAR_CACHE`, else `~/.cache/kcifar`."""
    return os.environ.get("KCIFAR_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "kcifar"
    )


def source_key(path):
    """A key that changes when the source's files change (path, sizes, times)."""
    h = hashlib.sha256(f"v{FORMAT_VERSION}:{os.path.abspath(path)}".encode())
    if os.path.isdir(path):
        for root, dirs, names in os.walk(path):
            dirs.sort()
            for name in sorted(names):
                st = os.stat(os.path.join(root, name))
                h.update(f"{root}/{name}:{st.st_size}:{st.st_mtime_ns}".encode())
    else:
        st = os.stat(path)
        h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:24]


def load(key):
    """Returns (arrays dict, meta dict), or None when not cached or unreadable."""
    path = os.path.join(cache_dir(), key + ".npz")
    try:
        with np.load(path) as f:
            arrays = {name: f[name] for name in ARRAYS}
            meta = json.loads(str(f["meta"]))
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):  # damaged: made again
        return None
    return arrays, meta


def save(key, arrays, meta):
    """Keeps the arrays; a cache that cannot be written (read-only, full)
    costs a line on stderr, not the run: the data was read."""
    try:
        os.makedirs(cache_dir(), exist_ok=True)
        with files.atomic_path(os.path.join(cache_dir(), key + ".npz")) as tmp:
            np.savez(tmp, meta=np.array(json.dumps(meta)), **arrays)
    except OSError as e:
        print(f"kcifar: decoded data not cached in {cache_dir()} ({e}); the next load decodes again",
              file=sys.stderr)


def locked(key):
    """An exclusive lock on one cache entry while it is being made, across
    processes: a context manager.

    filelock locks with the system's own call (`flock` on Linux and macOS,
    `msvcrt.locking` on Windows), which the system releases when a process
    dies, so a killed worker never leaves the entry locked.
    """
    try:
        os.makedirs(cache_dir(), exist_ok=True)
    except OSError:
        return contextlib.nullcontext()  # no cache to share (save says so)
    return filelock.FileLock(os.path.join(cache_dir(), key + ".lock"))
