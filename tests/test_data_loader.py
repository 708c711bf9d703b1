import os

import numpy as np
import pytest

from helpers import SHARED_ARCHIVE
from kcifar.data import DataError, load


def test_tiny_set_is_split_and_reported(tiny_data):
    assert (len(tiny_data.y_train), len(tiny_data.y_val), len(tiny_data.y_test)) == (108, 12, 40)
    assert np.bincount(tiny_data.y_val, minlength=10).min() >= 1
    assert any("custom set: train has 120 images" in n for n in tiny_data.notes)
    assert tiny_data.format == "image-folder" and not tiny_data.lossy  # PNGs: CIFAR-10's own pixels
    assert "JPEG mirror" not in tiny_data.description


def test_stats_come_from_the_train_split_only(tiny_data):
    mean, _ = tiny_data.channel_stats()
    np.testing.assert_allclose(mean, tiny_data.x_train.reshape(-1, 3).mean(0))
    everything = np.concatenate([tiny_data.x_train, tiny_data.x_val, tiny_data.x_test])
    assert not np.allclose(mean, everything.reshape(-1, 3).mean(0))


@pytest.mark.parametrize("n", [10, 50, 108])
def test_subset_is_stratified_and_leaves_val_and_test(tiny_data, n):
    sub = tiny_data.subset(n)
    assert len(sub.y_train) == n
    counts = np.bincount(sub.y_train, minlength=10)
    assert counts.max() - counts.min() <= 1
    assert sub.x_val is tiny_data.x_val and sub.x_test is tiny_data.x_test


@pytest.mark.parametrize("n", [0, 109])
def test_subset_bounds(tiny_data, n):
    with pytest.raises(ValueError, match=f"Received: limit_train={n}"):
        tiny_data.subset(n)


def test_missing_class_in_a_split_is_refused(tmp_path):
    from conftest import tiny_arrays
    from test_data_readers import write_bin_batches

    x_train, y_train, x_test, y_test = tiny_arrays(2, 1)
    keep = y_test != 3
    folder = write_bin_batches(str(tmp_path), x_train, y_train, x_test[keep], y_test[keep])
    with pytest.raises(DataError, match="test split has no images of class.*cat"):
        load(folder)


def test_a_broken_link_in_the_folder_is_one_line_naming_it(tiny_dir, tmp_path):
    import shutil

    folder = shutil.copytree(tiny_dir, tmp_path / "cifar")
    os.symlink(tmp_path / "gone.png", folder / "train" / "cat" / "link.png")
    with pytest.raises(DataError, match=r"link\.png: cannot be read"):
        load(str(folder))


@pytest.mark.skipif(not os.path.exists(SHARED_ARCHIVE), reason="../shared/data/cifar10-jpg.tar.xz not present")
def test_real_archive_is_full_cifar10():
    data = load(SHARED_ARCHIVE)
    assert data.notes == ()
    y_all = np.concatenate([data.y_train, data.y_val])
    assert len(y_all) == 50000 and len(data.y_test) == 10000
    assert (np.bincount(y_all) == 5000).all() and (np.bincount(data.y_test) == 1000).all()
    assert (np.bincount(data.y_val) == 500).all()
    # Labels are decoder-independent: they match ../shared/data/README.md.
    from kcifar.data import load_arrays
    from kcifar.data.split import checksum

    arrays, _ = load_arrays(SHARED_ARCHIVE)
    assert checksum(arrays["y_train"]) == "a29f2a5ffc141bb1"
    assert checksum(arrays["y_test"]) == "a054c239a40ee7f2"


def test_load_with_a_limit_is_the_subset(tiny_dir):
    assert len(load(tiny_dir, limit_train=30).y_train) == 30
    with pytest.raises(DataError, match="Received: limit_train=500"):
        load(tiny_dir, limit_train=500)


def test_results_name_the_source_by_its_file_name_only(tiny_dir):
    data = load(tiny_dir)
    assert data.source == "cifar" and data.path == os.path.abspath(tiny_dir)
    assert data.description == f"image-folder at cifar, sha256:{data.checksum}"
    # A trailing separator names the same folder.
    assert load(tiny_dir + os.sep).source == "cifar"


@pytest.mark.parametrize("old, new", [
    ("image-folder at /some/where/cifar10-jpg.tar.xz (JPEG mirror: lossy pixels), sha256:c155818c7600a777",
     "image-folder at cifar10-jpg.tar.xz (JPEG mirror: lossy pixels), sha256:c155818c7600a777"),
    ("cifar-10-batches-py at /d/my data/cifar-10-batches-py, sha256:0123abcd",
     "cifar-10-batches-py at cifar-10-batches-py, sha256:0123abcd"),
    ("cifar-10-batches-py at keras, sha256:0123abcd", "cifar-10-batches-py at keras, sha256:0123abcd"),
    ("image-folder at cifar10-jpg.tar.xz (JPEG mirror: lossy pixels), sha256:c1",
     "image-folder at cifar10-jpg.tar.xz (JPEG mirror: lossy pixels), sha256:c1"),
    ("image-folder at /tiny", "image-folder at /tiny"),  # not a loader's line: left alone
])
def test_named_description_reads_old_results_files(old, new):
    from kcifar.data.loader import named_description

    assert named_description(old) == new


@pytest.mark.parametrize("ext, lossy", [("png", False), ("jpg", True), ("JPEG", True)])
def test_only_jpeg_images_are_called_a_lossy_mirror(tmp_path, ext, lossy):
    from helpers import tiny_arrays, write_image_folder

    root = write_image_folder(str(tmp_path / "images"), *tiny_arrays(2, 1), ext=ext)
    data = load(root, val_size=10, use_cache=False)
    assert data.lossy is lossy
    assert ("(JPEG mirror: lossy pixels)" in data.description) is lossy
