import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import REPO, subprocess_env

from kcifar.data import cache, load, load_arrays


def test_second_load_comes_from_cache(tiny_dir, monkeypatch):
    first = load(tiny_dir)
    entries = [f for f in os.listdir(cache.cache_dir()) if f.endswith(".npz")]
    assert len(entries) == 1
    # The second load must not decode anything: make decoding impossible.
    monkeypatch.setattr("kcifar.data.loader.read_source", lambda path: 1 / 0)
    second = load(tiny_dir)
    np.testing.assert_array_equal(first.x_train, second.x_train)
    assert first.checksum == second.checksum


def test_failed_write_leaves_no_cache_and_costs_one_line_not_the_data(tiny_dir, monkeypatch, capsys):
    def broken_savez(path, **arrays):
        open(path, "wb").write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    assert len(load(tiny_dir).y_test) == 40
    assert not [f for f in os.listdir(cache.cache_dir()) if ".npz" in f]
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("kcifar:")]
    assert len(err) == 1 and "not cached" in err[0] and "disk full" in err[0]


def test_a_cache_folder_that_cannot_be_made_costs_one_line_not_the_data(tiny_dir, tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("KCIFAR_CACHE", str(tmp_path / "file" / "cache"))  # under a file: never a folder
    assert len(load(tiny_dir).y_test) == 40
    assert len([line for line in capsys.readouterr().err.splitlines() if "not cached" in line]) == 1


@pytest.mark.parametrize("damage", ["garbage", "empty", "truncated"])
def test_damaged_cache_entry_is_remade(tiny_dir, damage):
    load(tiny_dir)
    (entry,) = [f for f in os.listdir(cache.cache_dir()) if f.endswith(".npz")]
    path = os.path.join(cache.cache_dir(), entry)
    whole = open(path, "rb").read()
    open(path, "wb").write({"garbage": b"garbage", "empty": b"", "truncated": whole[:len(whole) // 2]}[damage])
    assert len(load(tiny_dir).y_test) == 40


def test_key_follows_the_files(tiny_dir, tmp_path):
    # A copy: the tiny image folder is shared by every test of the run.
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


# A process that decodes `sys.argv[1]` through the cache when told to go,
# noting each decode in $DECODES and printing a digest of the arrays it got.
# Decoding is made to take a second, so the other process asks for the entry
# while it is being made. The modules named in $BLOCK cannot be imported.
FILL_CACHE = """
import os, sys
for name in filter(None, os.environ["BLOCK"].split(",")):
    sys.modules[name] = None
import hashlib, json, time
from kcifar.data import loader

decode = loader.read_source

def counted(path):
    with open(os.environ["DECODES"], "a") as f:
        f.write(f"{os.getpid()}\\n")
    time.sleep(1.0)
    return decode(path)

loader.read_source = counted
open(sys.argv[2], "w").close()
while not os.path.exists(os.environ["GO"]):
    time.sleep(0.01)
arrays, meta = loader.load_arrays(sys.argv[1])
print(json.dumps({k: hashlib.sha256(v.tobytes()).hexdigest() for k, v in sorted(arrays.items())}))
"""


@pytest.mark.parametrize("block", ["", "fcntl"])  # "fcntl": filelock's fallback, as where the system lacks it
def test_two_processes_filling_one_entry_decode_it_once(tiny_dir, tmp_path, tmp_path_factory, block):
    env = dict(subprocess_env(tmp_path_factory), KCIFAR_CACHE=str(tmp_path / "cache"), BLOCK=block,
               DECODES=str(tmp_path / "decodes"), GO=str(tmp_path / "go"))
    ready = [tmp_path / f"ready-{i}" for i in range(2)]
    children = [subprocess.Popen([sys.executable, "-c", FILL_CACHE, tiny_dir, str(r)], env=env, cwd=REPO,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in ready]
    deadline = time.monotonic() + 300
    while not all(r.exists() for r in ready) and time.monotonic() < deadline:
        time.sleep(0.05)
    (tmp_path / "go").touch()  # both ask for the entry at once
    outputs = [child.communicate(timeout=300) for child in children]
    for child, (out, err) in zip(children, outputs):
        assert child.returncode == 0, err[-2000:]
    assert len((tmp_path / "decodes").read_text().split()) == 1
    arrays, _ = load_arrays(tiny_dir, use_cache=False)
    expected = {k: hashlib.sha256(v.tobytes()).hexdigest() for k, v in sorted(arrays.items())}
    assert [json.loads(out) for out, _ in outputs] == [expected, expected]
