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


def test_depthwise_convolutions_count_one_input_channel_per_output():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="d")(inputs)
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", name="s")(x)
    _, rows = flops.model_flops(keras.Model(inputs, x))
    # 3 x 2 outputs at 8x8, then 6 at 4x4, each 9 multiply-adds of one input channel.
    assert rows == [("d", 2 * 9 * 6 * 8 * 8), ("s", 2 * 9 * 6 * 4 * 4)]


def frozen_and_head():
    """A nested 'backbone' (two convolutions) and a dense head after it."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="low")(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", name="high")(x)
    backbone = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x), name="backbone")
    image = keras.Input((8, 8, 3))
    model = keras.Model(image, keras.layers.Dense(10, name="head")(backbone(image)))
    return model, backbone


def test_a_training_step_counts_gradients_from_the_first_trainable_layer_on():
    model, backbone = frozen_and_head()
    low, high, head = 2 * 9 * 3 * 4 * 64, 2 * 9 * 4 * 4 * 64, 2 * 4 * 10
    assert flops.model_flops(model)[0] == low + high + head
    assert flops.step_flops(model) == flops.train_flops(low + high + head)  # all trains: three passes
    backbone.trainable = False
    assert flops.step_flops(model) == low + high + 3 * head  # the frozen backbone runs forward only
    backbone.trainable = True
    backbone.get_layer("low").trainable = False
    assert flops.step_flops(model) == low + 3 * (high + head)


def test_a_rungs_training_step_is_three_forward_passes():
    model = build_model(rung("trick5").CONFIG, MEAN, STD)
    assert flops.step_flops(model) == flops.train_flops(flops.model_flops(model)[0])


# The count of a keras.applications backbone is the same on every backend
# (shapes only); building one at 224x224 takes seconds, so on one backend.
@pytest.mark.skipif(keras.backend.backend() != "torch", reason="backend-independent count, run on torch")
def test_the_pretrained_backbone_counts_its_published_operations():
    from kcifar.pretrained import BACKBONE

    backbone = BACKBONE(include_top=False, weights=None, input_shape=(224, 224, 3), pooling="avg",
                        include_preprocessing=True)
    total, rows = flops.model_flops(backbone)
    # EfficientNetV2B0's published cost: 0.72 billion multiply-adds a 224x224 image
    # (Tan & Le, 2021), depthwise convolutions included; without them it counts less.
    assert 2 * 0.715e9 < total < 2 * 0.725e9
    depthwise = sum(f for name, f in rows if type(backbone.get_layer(name)).__name__ == "DepthwiseConv2D")
    assert depthwise > 0
