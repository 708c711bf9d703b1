"""Shared fixtures: tiny CIFAR-10-like data written by the tests themselves
(the writers are in helpers.py)."""

import pytest

from helpers import tiny_arrays, write_image_folder

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
