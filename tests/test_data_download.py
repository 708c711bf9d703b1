import os
import socket
import time

import pytest

from kcifar.data import DataError, load
from kcifar.data import download
from helpers import tiny_arrays, write_py_batches


def test_offline_without_cache_fails_fast_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))

    def no_network(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", no_network)
    start = time.perf_counter()
    with pytest.raises(DataError) as e:
        load()
    assert time.perf_counter() - start < 5
    message = str(e.value)
    assert "\n" not in message and "--data" in message and "KCIFAR_DATA" in message


def test_keras_cache_is_read_without_network(tmp_path, monkeypatch):
    datasets = tmp_path / "keras" / "datasets" / download.FNAME
    datasets.mkdir(parents=True)
    write_py_batches(str(datasets), *tiny_arrays(2, 1))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: pytest.fail("network used"))
    data = load()
    assert data.format == "cifar-10-batches-py" and data.source == "keras"


def test_kcifar_data_variable_names_the_source(tiny_dir, monkeypatch):
    monkeypatch.setenv("KCIFAR_DATA", tiny_dir)
    data = load()
    assert data.path == os.path.abspath(tiny_dir) and data.source == os.path.basename(tiny_dir)
