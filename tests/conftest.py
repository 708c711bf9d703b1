"""Shared fixtures: tiny CIFAR-10-like data written by the tests themselves
(the writers are in helpers.py)."""

import os

import pytest

from helpers import XLA_QUICK_COMPILE, tiny_arrays, write_image_folder

# On the JAX backend XLA's CPU compiler spends most of a test's time
# optimizing programs that then run a few tiny steps; without its
# optimizations it compiles them in under half the time. It changes how XLA
# compiles, not what a program computes. Set before JAX starts its backend;
# child processes inherit it.
if os.environ.get("KERAS_BACKEND") == "jax" and XLA_QUICK_COMPILE not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {XLA_QUICK_COMPILE}".strip()


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own data cache and no ambient data source."""
    monkeypatch.setenv("KCIFAR_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("KCIFAR_DATA", raising=False)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """An image folder of 120 training and 40 test PNGs (12 and 4 per class)."""
    return write_image_folder(str(tmp_path_factory.mktemp("tiny") / "cifar"), *tiny_arrays())


@pytest.fixture(scope="session")
def tiny_data(tiny_dir):
    """kcifar.data.load() of `tiny_dir`: 108 train, 12 validation, 40 test."""
    from kcifar.data import load

    return load(tiny_dir, use_cache=False)
