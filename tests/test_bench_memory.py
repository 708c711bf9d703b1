import os

import keras
import pytest

from kcifar.bench import memory


@pytest.mark.slow  # a training run in a child process
def test_peak_memory_of_a_short_training_run(tiny_dir):
    env = {**os.environ, "KERAS_BACKEND": keras.backend.backend()}
    result = memory.training_rss(env, tiny_dir, batch_size=8, steps=2, train_size=108)
    assert result["error"] is None
    assert result["steps"] == 2 and 100 < result["peak_rss_mb"] < 8000
    assert "--limit-train 16" in result["command"] and "--batch-size 8" in result["command"]
    assert "--data cifar " in result["command"] and tiny_dir not in result["command"]  # the name, not the path
