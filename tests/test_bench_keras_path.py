import keras
import numpy as np
import pytest

from kcifar.bench.keras_path import KerasPath
from kcifar.bench.worker import synthetic_data
from kcifar.config import Config
from kcifar.models import inference_network
from kcifar.pipeline import TrainBatches

TINY = Config(widths=(4, 4, 4, 4), dense_units=8, batch_size=8)


@pytest.fixture(scope="module")
def data():
    return synthetic_data(n=64)


def iterations(path):
    return int(keras.ops.convert_to_numpy(path.model.optimizer.iterations))


def test_windows_run_the_steps_they_time(data):
    path = KerasPath(TINY, data, seed=0)
    for window, steps in ((path.fit_window, 2), (path.step_window, 3)):
        before = iterations(path)
        wall, cpu = window(steps)
        assert iterations(path) == before + steps
        assert wall > 0 and cpu >= 0
    wall, _ = path.feed_window(20)  # more batches than an epoch has: it wraps
    assert wall > 0


def test_fit_window_is_the_projects_pipeline(data):
    path = KerasPath(TINY.replace(crop_scale=0.5), data, seed=0)
    assert inference_network(path.model) is not path.model  # the model augments
    assert len(path.batches) == 8
    x, y = path.first_batch
    assert x.dtype.name == "uint8" and x.shape == (8, 32, 32, 3) and y.shape == (8,)
    with pytest.raises(ValueError, match="at most 8 batches"):
        path.fit_window(9)


def test_fit_window_fetches_and_augments_the_batches_it_times(data, monkeypatch):
    path = KerasPath(TINY.replace(crop_scale=0.5, rotation=10.0), data, seed=0)
    fetched = []
    original = TrainBatches.__getitem__
    monkeypatch.setattr(TrainBatches, "__getitem__", lambda self, i: fetched.append(i) or original(self, i))
    crop = path.model.get_layer("crop_resize").seed_generator.state
    before = keras.ops.convert_to_numpy(crop)
    path.fit_window(3)
    # The pipeline's own batches, not a ready one (TensorFlow's adapter may fetch one ahead).
    assert {0, 1, 2} <= set(fetched) <= {0, 1, 2, 3}
    # The block drew once per step: its generator moved on.
    assert not np.array_equal(keras.ops.convert_to_numpy(crop), before)
