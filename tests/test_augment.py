import numpy as np
import pytest

from kcifar.augment import augmenter, random_crop_resize
from kcifar.config import Config


def batch(n=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def test_full_window_without_rotation_is_the_identity():
    x = batch()
    np.testing.assert_array_equal(random_crop_resize(x, np.random.default_rng(1)), x)


@pytest.mark.parametrize("min_scale, rotation", [(0.75, 0.0), (0.6, 15.0), (1.0, 15.0)])
def test_each_image_of_a_batch_gets_its_own_transform(min_scale, rotation):
    same = np.repeat(batch(1), 16, axis=0)
    out = random_crop_resize(same, np.random.default_rng(0), min_scale, rotation)
    assert out.shape == same.shape and out.dtype == np.uint8
    assert len({o.tobytes() for o in out}) == 16


def test_same_generator_same_result():
    x = batch()
    a = random_crop_resize(x, np.random.default_rng(7), 0.6, 15.0)
    b = random_crop_resize(x, np.random.default_rng(7), 0.6, 15.0)
    np.testing.assert_array_equal(a, b)


def test_crop_magnifies_a_window():
    # On a left-to-right ramp a window of side s spans a fraction s of the range.
    ramp = np.linspace(0, 248, 32).astype(np.uint8)[None, None, :, None]
    ramp = np.broadcast_to(ramp, (64, 32, 32, 3)).copy()
    out = random_crop_resize(ramp, np.random.default_rng(0), min_scale=0.5)
    spans = (out[:, 16, -1, 0].astype(int) - out[:, 16, 0, 0]) / (int(ramp[0, 16, -1, 0]) - ramp[0, 16, 0, 0])
    assert spans.min() > 0.45 and spans.max() <= 1.0
    assert spans.min() < 0.6  # some windows are small: the draw covers [0.5, 1]


def test_bad_scale():
    with pytest.raises(ValueError, match="Received: min_scale=0"):
        random_crop_resize(batch(), np.random.default_rng(0), min_scale=0)


def test_augmenter_only_when_the_config_asks():
    assert augmenter(Config()) is None
    assert augmenter(Config().replace(flip=True)) is None  # the flip lives in the model
    assert augmenter(Config().replace(crop_scale=0.8)) is not None
