import gzip
import os
import pickle
import sys

import numpy as np
import pytest

from helpers import CLASSES, png_bytes, tar_of, tiny_arrays, write_image_folder, write_py_batches
from kcifar.data.readers import DataError, read_source


def write_bin_batches(root, x_train, y_train, x_test, y_test):
    folder = os.path.join(root, "cifar-10-batches-bin")
    os.makedirs(folder)
    records = lambda x, y: np.concatenate(  # noqa: E731
        [y[:, None].astype(np.uint8), x.transpose(0, 3, 1, 2).reshape(len(x), -1)], axis=1
    )
    parts = np.array_split(np.arange(len(x_train)), 5)
    for i, idx in enumerate(parts, start=1):
        records(x_train[idx], y_train[idx]).tofile(os.path.join(folder, f"data_batch_{i}.bin"))
    records(x_test, y_test).tofile(os.path.join(folder, "test_batch.bin"))
    return folder


WRITERS = {"cifar-10-batches-py": write_py_batches, "cifar-10-batches-bin": write_bin_batches,
           "image-folder": lambda root, *a: write_image_folder(os.path.join(root, "images"), *a)}


@pytest.mark.parametrize("fmt", sorted(WRITERS))
@pytest.mark.parametrize("packing", ["folder", "w", "w:gz", "w:xz"])
def test_every_format_reads_back_exactly(tmp_path, fmt, packing):
    arrays = tiny_arrays(per_class_train=3, per_class_test=1)
    path = WRITERS[fmt](str(tmp_path), *arrays)
    if packing != "folder":
        path = tar_of(path, str(tmp_path / "data.tar"), packing)
    *got, got_fmt, lossy = read_source(path)
    assert got_fmt == fmt and not lossy  # the image folder here holds PNGs
    # Image folders come back sorted by class then file name, as written.
    for want, have in zip(arrays, got):
        np.testing.assert_array_equal(want, have)
        assert have.dtype == np.uint8


def test_crafted_pickle_is_refused_and_runs_nothing(tmp_path):
    folder = write_py_batches(str(tmp_path), *tiny_arrays(1, 1))
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    with open(os.path.join(folder, "data_batch_3"), "wb") as f:
        pickle.dump({b"data": Exploit(), b"labels": []}, f)
    with pytest.raises(DataError, match=r"data_batch_3: not a CIFAR-10 batch, refused to load (builtins|io)\.open"):
        read_source(folder)
    assert not marker.exists()


@pytest.mark.parametrize("damage, message", [
    (lambda raw: raw[: len(raw) // 2], r"data_batch_2: truncated or corrupt"),
    (lambda raw: b"", r"data_batch_2: truncated or corrupt"),
])
def test_damaged_py_batch_names_the_file(tmp_path, damage, message):
    folder = write_py_batches(str(tmp_path), *tiny_arrays(1, 1))
    path = os.path.join(folder, "data_batch_2")
    raw = open(path, "rb").read()
    open(path, "wb").write(damage(raw))
    with pytest.raises(DataError, match=message):
        read_source(folder)


def test_wrong_shaped_py_batch(tmp_path):
    folder = write_py_batches(str(tmp_path), *tiny_arrays(1, 1))
    with open(os.path.join(folder, "test_batch"), "wb") as f:
        pickle.dump({b"data": np.zeros((10, 100), np.uint8), b"labels": [0] * 10}, f)
    with pytest.raises(DataError, match=r"test_batch: wrong shape, data \(10, 100\)"):
        read_source(folder)


def test_truncated_bin_batch(tmp_path):
    folder = write_bin_batches(str(tmp_path), *tiny_arrays(1, 1))
    path = os.path.join(folder, "data_batch_4.bin")
    raw = open(path, "rb").read()
    open(path, "wb").write(raw[:-10])
    with pytest.raises(DataError, match=r"data_batch_4.bin: truncated or corrupt"):
        read_source(folder)


def test_bin_label_out_of_range(tmp_path):
    folder = write_bin_batches(str(tmp_path), *tiny_arrays(1, 1))
    path = os.path.join(folder, "test_batch.bin")
    raw = bytearray(open(path, "rb").read())
    raw[0] = 12
    open(path, "wb").write(bytes(raw))
    with pytest.raises(DataError, match=r"test_batch.bin: label 12 outside 0..9"):
        read_source(folder)


def test_missing_batch_file(tmp_path):
    folder = write_py_batches(str(tmp_path), *tiny_arrays(1, 1))
    os.remove(os.path.join(folder, "data_batch_5"))
    with pytest.raises(DataError, match="missing batch file.*data_batch_5"):
        read_source(folder)


def test_missing_class_folder(tmp_path):
    root = write_image_folder(str(tmp_path / "img"), *tiny_arrays(1, 1))
    for name in os.listdir(os.path.join(root, "test", "frog")):
        os.remove(os.path.join(root, "test", "frog", name))
    os.rmdir(os.path.join(root, "test", "frog"))
    with pytest.raises(DataError, match=r"test/ has no images for class\(es\) frog"):
        read_source(root)


def test_unknown_class_folder(tmp_path):
    root = write_image_folder(str(tmp_path / "img"), *tiny_arrays(1, 1))
    os.rename(os.path.join(root, "train", "cat"), os.path.join(root, "train", "kitten"))
    with pytest.raises(DataError, match=r"train/kitten/.*'kitten' is not a CIFAR-10 class"):
        read_source(root)


@pytest.mark.parametrize("content, message", [
    (lambda: png_bytes(np.zeros((32, 32, 3), np.uint8))[:40], "unreadable image"),
    (lambda: b"not an image at all", "unreadable image"),
    (lambda: png_bytes(np.zeros((28, 28, 3), np.uint8)), "image is 28x28, expected 32x32"),
])
def test_bad_image_names_the_file(tmp_path, content, message):
    root = write_image_folder(str(tmp_path / "img"), *tiny_arrays(1, 1))
    with open(os.path.join(root, "train", "dog", "zz-bad.png"), "wb") as f:
        f.write(content())
    with pytest.raises(DataError, match=f"train/dog/zz-bad.png: {message}"):
        read_source(root)


def test_a_bad_image_ends_the_decoding_bar_before_its_message(tmp_path, capsys, monkeypatch):
    root = write_image_folder(str(tmp_path / "img"), *tiny_arrays(1, 1))
    with open(os.path.join(root, "train", "dog", "zz-bad.png"), "wb") as f:
        f.write(b"not an image at all")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # a terminal: the bar is drawn as it goes
    with pytest.raises(DataError):
        read_source(root)
    err = capsys.readouterr().err
    assert err.startswith("\rdecoding ") and err.endswith("\n")  # the error's line starts below the bar


def test_truncated_archive(tmp_path):
    root = write_image_folder(str(tmp_path / "img"), *tiny_arrays(2, 1))
    path = tar_of(root, str(tmp_path / "d.tar.xz"), "w:xz")
    raw = open(path, "rb").read()
    open(path, "wb").write(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="d.tar.xz: archive is truncated or corrupt"):
        read_source(path)


@pytest.mark.parametrize("make", ["missing", "plain-file", "empty-folder"])
def test_not_a_source(tmp_path, make):
    path = tmp_path / "x"
    if make == "plain-file":
        path.write_text("hello")
    elif make == "empty-folder":
        path.mkdir()
    message = {"missing": "no such file", "plain-file": "not a folder nor", "empty-folder": "no CIFAR-10 found"}[make]
    with pytest.raises(DataError, match=message):
        read_source(str(path))


@pytest.mark.parametrize("name, content, trouble", [
    ("x.tar.gz", np.random.default_rng(0).bytes(3000), "the file is not gzip-compressed"),
    ("x.TAR.XZ", np.random.default_rng(1).bytes(3000), "the file is not xz-compressed"),
    ("x.tar", b"hello " * 500, "the file is not a tar archive"),
    ("x.tar.gz", gzip.compress(b"hello " * 500), "gzip-compressed, but no tar archive inside"),
    ("x.tar.xz", b"", "the file is empty"),
])
def test_a_file_named_as_an_archive_that_is_none_says_why(tmp_path, name, content, trouble):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError) as refused:
        read_source(str(path))
    assert str(refused.value) == f"{path}: not a readable archive: {trouble}"


def test_classes_are_cifar_order():
    from kcifar.data import CLASS_NAMES

    assert CLASS_NAMES == CLASSES == tuple(sorted(CLASSES))
