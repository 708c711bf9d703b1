"""CIFAR-10 through Keras's own download and cache (`keras.datasets.cifar10`).

Keras keeps the official python batches under `$KERAS_HOME/datasets` (default
`~/.keras/datasets`). We read them from there with the project's safe reader
instead of Keras's `pickle.load`, and download them with Keras's `get_file`
only when they are missing, after checking within seconds that the server
answers at all.
"""

import os
import socket

from kcifar.data.readers import DataError

ORIGIN = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
FNAME = "cifar-10-batches-py-target"  # the name keras.datasets.cifar10 uses
SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
HOW_TO_POINT = (
    "point kcifar at local data with --data PATH or KCIFAR_DATA=PATH "
    "(a cifar-10-batches-py or -bin folder, or a train/ test/ image folder or .tar)"
)


def keras_datasets_dir():
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "datasets")


def cached_keras_copy():
    """The path of a copy Keras already downloaded, or None."""
    root = keras_datasets_dir()
    for name in (FNAME, FNAME + "_archive", "cifar-10-batches-py", "cifar-10-python.tar.gz"):
        path = os.path.join(root, name)
        if os.path.exists(path):
            return path
    return None


def download(timeout=5.0):
    """Returns a path holding the python batches, downloading when needed."""
    path = cached_keras_copy()
    if path:
        return path
    try:
        socket.create_connection(("www.cs.toronto.edu", 443), timeout=timeout).close()
    except OSError as e:
        raise DataError(
            f"CIFAR-10 is not in the Keras cache and cannot be downloaded ({e}); "
            + HOW_TO_POINT
        )
    from keras.utils import get_file

    try:
        return get_file(fname=FNAME, origin=ORIGIN, extract=True, file_hash=SHA256)
    except Exception as e:
        raise DataError(f"downloading CIFAR-10 failed ({e}); " + HOW_TO_POINT)
