"""Shared fixtures: tiny CIFAR-10-like data written by the tests themselves."""

import io
import os
import tarfile

import numpy as np
import pytest

SHARED_ARCHIVE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "cifar10-jpg.tar.xz")
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own data cache and no ambient data source."""
    monkeypatch.setenv("KCIFAR_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("KCIFAR_DATA", raising=False)


def tiny_arrays(per_class_train=12, per_class_test=4, seed=0):
    """Images whose class shows in their mean colour, so a model can learn."""
    rng = np.random.default_rng(seed)

    def make(per_class):
        y = np.repeat(np.arange(10, dtype=np.uint8), per_class)
        c = y.astype(int)
        base = np.stack([(c * 25) % 256, (c * 70) % 256, (255 - c * 25) % 256], -1)
        x = base[:, None, None, :] + rng.integers(-20, 21, (len(y), 32, 32, 3))
        return np.clip(x, 0, 255).astype(np.uint8), y

    (x_train, y_train), (x_test, y_test) = make(per_class_train), make(per_class_test)
    return x_train, y_train, x_test, y_test


def write_image_folder(root, x_train, y_train, x_test, y_test, ext="png"):
    from PIL import Image

    for split, xs, ys in (("train", x_train, y_train), ("test", x_test, y_test)):
        for i, (x, y) in enumerate(zip(xs, ys)):
            folder = os.path.join(root, split, CLASSES[y])
            os.makedirs(folder, exist_ok=True)
            Image.fromarray(x).save(os.path.join(folder, f"{i:05d}.{ext}"))
    return root


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """An image folder of 120 training and 40 test PNGs (12 and 4 per class)."""
    return write_image_folder(str(tmp_path_factory.mktemp("tiny") / "cifar"), *tiny_arrays())


@pytest.fixture(scope="session")
def tiny_data(tiny_dir):
    """kcifar.data.load() of `tiny_dir`: 108 train, 12 validation, 40 test."""
    from kcifar.data import load

    return load(tiny_dir, use_cache=False)


def tar_of(folder, path, mode="w:gz"):
    with tarfile.open(path, mode) as tar:
        tar.add(folder, arcname=os.path.basename(folder))
    return path


def png_bytes(array):
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def folder_contents(folder):
    """{relative path: bytes} of every file under `folder`."""
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, folder)] = f.read()
    return found
