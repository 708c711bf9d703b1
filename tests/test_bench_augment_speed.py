import keras
import numpy as np
import pytest

from kcifar.bench.augment_speed import block_call, images_per_second
from kcifar.config import Config
from kcifar.experiments import rung


def test_the_compiled_block_augments_and_draws_afresh_each_call():
    call = block_call(rung("trick7").CONFIG)
    x = keras.ops.convert_to_tensor(np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3)).astype("float32"))
    first, second = keras.ops.convert_to_numpy(call(x)), keras.ops.convert_to_numpy(call(x))
    assert first.shape == (8, 32, 32, 3)
    assert not np.allclose(first, keras.ops.convert_to_numpy(x))
    assert not np.allclose(first, second)  # the generator's state is carried between calls


def test_images_per_second_is_positive_and_refuses_a_rung_without_augmentation():
    assert images_per_second(rung("trick5").CONFIG, 16, steps=2, windows=1) > 0
    with pytest.raises(ValueError, match="has no augmentation"):
        images_per_second(Config(), 16)
