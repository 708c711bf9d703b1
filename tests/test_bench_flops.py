import keras
import pytest

from kcifar import cost
from kcifar.bench import flops
from kcifar.experiments import rung
from kcifar.models import build_model

MEAN, STD = (125.0, 123.0, 114.0), (63.0, 62.0, 66.0)


def hand_count(widths, dense=512, convs=2):
    """2 x multiply-adds of each 'same' 3x3 convolution and dense layer,
    written out stage by stage: stage i runs at 32 / 2^(i-1) pixels a side."""
    total, channels = 0, 3
    for i, width in enumerate(widths):
        side = 32 >> i
        for _ in range(convs):
            total += 2 * 3 * 3 * channels * width * side * side
            channels = width
    return total + 2 * (channels * 2 * 2) * dense + 2 * dense * 10


@pytest.mark.parametrize(
    "name, expected",
    [
        # 1769472 + 18874368 + 3 x (9437184 + 18874368) convs, 1048576 + 10240 dense
        ("baseline", 106_637_312),
        ("trick7", 420_882_432),  # widths doubled: convs x4 but the first, dense 2048 -> 512
    ],
)
def test_model_flops_match_the_hand_count(name, expected):
    config = rung(name).CONFIG
    assert hand_count(config.widths) == expected
    total, rows = flops.model_flops(build_model(config, MEAN, STD))
    assert total == expected
    width = config.widths[0]
    assert dict(rows)["stage1_conv2"] == 2 * 9 * width * width * 32 * 32
    assert flops.train_flops(total) == 3 * expected


def test_strided_and_channels_first_convolutions_count_their_outputs():
    assert cost.conv_flops(32, 32, 3, 64, kernel_size=3, strides=2) == 2 * 9 * 3 * 64 * 16 * 16
    assert cost.conv_flops(5, 5, 2, 2, kernel_size=1, strides=2) == 2 * 2 * 2 * 3 * 3  # 'same' rounds up
    inputs = keras.Input((3, 8, 8))
    x = keras.layers.Conv2D(4, 3, padding="same", data_format="channels_first", name="c")(inputs)
    total, rows = flops.model_flops(keras.Model(inputs, x))
    assert rows == [("c", 2 * 9 * 3 * 4 * 8 * 8)] and total == 13824


def test_residual_rungs_count_shortcuts():
    # Rung 8 keeps rung 7's full-resolution stages: 3 -> 64 at 32x32, a 1x1
    # projection shortcut, then 64 -> 64 at 32x32, pooled after the addition.
    _, rows = flops.model_flops(build_model(rung("trick8").CONFIG, MEAN, STD))
    rows = dict(rows)
    assert rows["stage1_conv1"] == cost.conv_flops(32, 32, 3, 64)
    assert rows["stage1_shortcut"] == cost.conv_flops(32, 32, 3, 64, kernel_size=1)
    assert rows["stage2_conv2"] == cost.conv_flops(16, 16, 128, 128)


def test_strided_residual_stages_count_their_outputs():
    config = rung("trick8").CONFIG.replace(downsample="stride")
    _, rows = flops.model_flops(build_model(config, MEAN, STD))
    rows = dict(rows)
    # stage 1: 3 -> 64 at stride 2 (16x16 out), 1x1 shortcut, then 64 -> 64 at 16x16
    assert rows["stage1_conv1"] == cost.conv_flops(32, 32, 3, 64, strides=2)
    assert rows["stage1_shortcut"] == cost.conv_flops(32, 32, 3, 64, kernel_size=1, strides=2)
    assert rows["stage1_conv2"] == cost.conv_flops(16, 16, 64, 64)
