import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from kcifar.bench import memory
from kcifar.bench.memory import resident_mb, wait_peak_mb

MIB = 2**20

# Holds 300 MiB for a second, frees it, and exits with status 3: its peak is
# the 300 MiB plus the interpreter and NumPy, well above where it ends.
HOLD_AND_FREE = """
import time
import numpy as np
block = np.ones(300 * 2**20 // 8)
time.sleep(1.0)
del block
time.sleep(0.5)
raise SystemExit(3)
"""


def test_resident_memory_counts_what_this_process_touches():
    before = resident_mb()
    block = np.ones(200 * MIB // 8)  # written, so every page is resident
    after = resident_mb()
    assert 190 < after - before < 230
    del block


def test_a_process_that_does_not_exist_has_no_figure():
    assert resident_mb(2**22 + 1) is None  # above the highest process id Linux hands out


def test_peak_of_a_child_is_its_high_point_not_where_it_ends():
    child = subprocess.Popen([sys.executable, "-c", HOLD_AND_FREE])
    status, peak = wait_peak_mb(child)
    assert status == 3 and child.returncode == 3
    assert 300 < peak < 420



@pytest.mark.slow  # a training run in a child process
def test_peak_memory_of_a_short_training_run(tiny_dir):
    env = {**os.environ, "KERAS_BACKEND": keras.backend.backend()}
    result = memory.training_rss(env, tiny_dir, batch_size=8, steps=2, train_size=108)
    assert result["error"] is None
    assert result["steps"] == 2 and 100 < result["peak_rss_mb"] < 8000
    assert "--limit-train 16" in result["command"] and "--batch-size 8" in result["command"]
    assert "--data cifar " in result["command"] and tiny_dir not in result["command"]  # the name, not the path
