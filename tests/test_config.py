import json

import pytest

from kcifar.config import Config


@pytest.mark.parametrize("field, value", [
    ("dropout", 1.0), ("dropout", -0.1), ("l2", -1e-4), ("epochs", 0), ("batch_size", 0),
    ("crop_scale", 0.0), ("crop_scale", 1.5), ("lr_decay", 0.0), ("lr_decay", 1.1),
    ("learning_rate", 0.0), ("input_noise", -1.0), ("rotation", 200.0), ("widths", (8, 8)),
    ("downsample", "conv"), ("bn_momentum", 1.0), ("rotation", -1.0), ("input_noise", 1.5),
    ("dense_units", 0), ("bn_epsilon", 0.0), ("crop_max_scale", 0.9), ("crop_max_scale", 2.5),
    ("translate", -1), ("translate", 16), ("translate", 2.5),
])
def test_bad_values_are_refused_with_the_value(field, value):
    with pytest.raises(ValueError, match=f"Received: {field}="):
        Config().replace(**{field: value})


def test_unknown_field():
    with pytest.raises(ValueError, match="unknown config field.*dropuot"):
        Config().replace(dropuot=0.3)


def test_frozen_and_json_round_trip():
    config = Config().replace(dropout=0.3, widths=[1, 2, 3, 4])
    with pytest.raises(AttributeError):
        config.dropout = 0.5
    assert config.widths == (1, 2, 3, 4)
    assert Config.from_dict(json.loads(config.to_json())) == config
