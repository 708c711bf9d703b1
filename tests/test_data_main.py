import os

import numpy as np
import pytest

from kcifar.data import cache, load
from kcifar.data.__main__ import main


def test_info_prints_counts_stats_and_checksum(tiny_dir, capsys):
    assert main(["info", tiny_dir]) == 0
    out = capsys.readouterr().out
    assert "format:   image-folder" in out
    assert "training set: 120 images = 108 train + 12 validation" in out
    assert "airplane" in out and "mean (RGB, 0..255, train split)" in out
    assert "sha256:" in out and "note: custom set" in out


def test_prepare_fills_the_cache(tiny_dir, tiny_data, capsys, monkeypatch):
    assert main(["prepare", tiny_dir]) == 0
    assert "cached image-folder" in capsys.readouterr().out
    assert os.path.isfile(os.path.join(cache.cache_dir(), cache.source_key(tiny_dir) + ".npz"))
    # What prepare left is all a later load needs: reading the source fails.
    monkeypatch.setattr("kcifar.data.loader.read_source", lambda path: 1 / 0)
    cached = load(tiny_dir)
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(cached, name), getattr(tiny_data, name), err_msg=name)
    assert cached.checksum == tiny_data.checksum


@pytest.mark.parametrize("source", ["/no/such/place", __file__])
def test_bad_source_is_one_line_and_status_2(source, capsys):
    assert main(["info", source]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("python -m kcifar.data: error: ") and "\n" not in err
