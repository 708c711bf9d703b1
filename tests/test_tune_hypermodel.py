"""kcifar.tune.hypermodel: a trial's values reach the rung's own model."""

import keras
import keras_tuner
import pytest

from kcifar.experiments import rung
from kcifar.models import inference_network
from kcifar.tune.hypermodel import RungHyperModel
from kcifar.tune.space import Range, search_space


def test_declared_space_matches_the_ranges(tiny_data):
    space = search_space(rung("trick4").CONFIG, {"dropout": Range("dropout", 0.1, 0.5)}, learning_rate=True)
    hp = keras_tuner.HyperParameters()
    RungHyperModel(rung("trick4").CONFIG, tiny_data, space).declare_hyperparameters(hp)
    declared = {p.name: (p.min_value, p.max_value, p.sampling) for p in hp.space}
    assert declared == {
        "dropout": (0.1, 0.5, "linear"),
        "l2": (1e-6, 1e-2, "log"),
        "learning_rate": (1e-4, 1e-2, "log"),
    }


@pytest.mark.parametrize("name, values", [
    ("trick3", {"dropout": 0.42}),
    ("trick4", {"dropout": 0.17, "l2": 3.3e-4}),
    ("trick6", {"dropout": 0.05, "l2": 2e-6, "learning_rate": 3e-3}),
])
def test_build_puts_the_trial_values_into_the_rungs_model(tiny_data, name, values):
    config = rung(name).CONFIG
    space = search_space(config, learning_rate="learning_rate" in values)
    hypermodel = RungHyperModel(config, tiny_data, space)
    hp = keras_tuner.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    hp.values.update(values)
    keras.backend.clear_session()
    model = hypermodel.build(hp)
    network = inference_network(model)  # trick6 trains behind its augmentation block
    dropouts = [layer for layer in network.layers if isinstance(layer, keras.layers.Dropout)]
    assert [layer.name for layer in dropouts] == [f"stage{i}_dropout" for i in range(1, 5)]
    assert all(layer.rate == pytest.approx(values["dropout"]) for layer in dropouts)
    convs = [layer for layer in network.layers if isinstance(layer, keras.layers.Conv2D)]
    for layer in convs:
        if "l2" in values:
            assert float(layer.kernel_regularizer.l2) == pytest.approx(values["l2"])
        else:
            assert layer.kernel_regularizer is None
    # Everything else is the rung's: same widths, same optimizer settings.
    assert [layer.filters for layer in convs][::config.convs_per_stage] == list(config.widths)
    lr0 = values.get("learning_rate", config.learning_rate)
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(lr0, rel=1e-6)
    assert hypermodel.config_for(hp) == config.replace(**values)
