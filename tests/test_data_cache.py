import os
import shutil
import time

import numpy as np

from kcifar.data import cache, load


def test_second_load_comes_from_cache(tiny_dir, monkeypatch):
    first = load(tiny_dir)
    entries = [f for f in os.listdir(cache.cache_dir()) if f.endswith(".npz")]
    assert len(entries) == 1
    # The second load must not decode anything: make decoding impossible.
    monkeypatch.setattr("kcifar.data.loader.read_source", lambda path: 1 / 0)
    start = time.perf_counter()
    second = load(tiny_dir)
    assert time.perf_counter() - start < 1.0
    np.testing.assert_array_equal(first.x_train, second.x_train)
    assert first.checksum == second.checksum


def test_failed_write_leaves_no_cache(tiny_dir, monkeypatch):
    def broken_savez(path, **arrays):
        open(path, "wb").write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    try:
        load(tiny_dir)
    except OSError:
        pass
    assert not [f for f in os.listdir(cache.cache_dir()) if ".npz" in f]


def test_corrupt_cache_entry_is_remade(tiny_dir):
    load(tiny_dir)
    (entry,) = [f for f in os.listdir(cache.cache_dir()) if f.endswith(".npz")]
    open(os.path.join(cache.cache_dir(), entry), "wb").write(b"garbage")
    assert len(load(tiny_dir).y_test) == 40


def test_key_follows_the_files(tiny_dir, tmp_path):
    # A copy: the session's image folder is shared with other tests.
    folder = shutil.copytree(tiny_dir, tmp_path / "cifar")
    key = cache.source_key(str(folder))
    assert key == cache.source_key(str(folder))
    image = folder / "train" / "cat" / sorted(os.listdir(folder / "train" / "cat"))[0]
    original, st = image.read_bytes(), os.stat(image)
    keep_time = (st.st_atime_ns, st.st_mtime_ns)
    # A file deep in the folder changes its content (and so its size), its
    # modification time kept: the key changes.
    image.write_bytes(original + b"\0")
    os.utime(image, ns=keep_time)
    assert cache.source_key(str(folder)) != key
    # Put back as it was, the folder has its key back: the key is the files'.
    image.write_bytes(original)
    os.utime(image, ns=keep_time)
    assert cache.source_key(str(folder)) == key
    # The same bytes with another modification time: the key changes.
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert cache.source_key(str(folder)) != key
    f = tmp_path / "a.tar"
    f.write_bytes(b"1")
    k1 = cache.source_key(str(f))
    f.write_bytes(b"12")
    assert cache.source_key(str(f)) != k1
