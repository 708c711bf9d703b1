"""Training one rung: the folder a run writes, its seeds, every rung's model,
the saved network, and the learning-rate schedule."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from helpers import SMALL, quiet, run_history, without_timing

from kcifar import files, runtime
from kcifar.config import Config
from kcifar.experiments import RUNGS, rung
from kcifar.models import build_model, inference_network
from kcifar.results import HISTORY_COLUMNS
from kcifar.train import learning_rate, score_predictions, train


def test_a_run_writes_its_folder(tiny_data, tmp_path):
    metrics = train(SMALL, tiny_data, str(tmp_path / "run"), quiet())
    assert sorted(os.listdir(tmp_path / "run")) == ["history.csv", "metrics.json", "model.keras", "settings.json"]
    history = run_history(tmp_path / "run")
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert list(files.read_csv(os.path.join(tmp_path / "run", "history.csv"))[0]) == list(HISTORY_COLUMNS)
    # lr = lr0 * gamma^epoch, stepping once per epoch.
    np.testing.assert_allclose([row["learning_rate"] for row in history], [1e-3, 5e-4, 2.5e-4], rtol=1e-6)
    assert metrics == files.read_json(tmp_path / "run" / "metrics.json")
    assert metrics["train_accuracy"] == pytest.approx(history[-1]["accuracy"])
    assert metrics["gap"] == pytest.approx(metrics["train_accuracy"] - metrics["test_accuracy"])
    assert sum(map(sum, metrics["confusion_matrix"])) == 40
    assert metrics["backend"] == keras.backend.backend() and metrics["seed"] == 0
    assert metrics["data"]["checksum"] == tiny_data.checksum and metrics["epochs"] == 3
    # The clean training accuracy: the last epoch's, the saved network's on the same images in
    # inference mode, and with dropout, noise and augmentation on the running one differs from it.
    assert metrics["clean_train_accuracy"] == history[-1]["clean_train_accuracy"]
    assert metrics["clean_gap"] == pytest.approx(metrics["clean_train_accuracy"] - metrics["test_accuracy"])
    x, y = tiny_data.train_sample()
    assert len(y) == len(tiny_data.y_train)  # a split under 5000 images is measured whole
    saved = keras.saving.load_model(tmp_path / "run" / "model.keras")
    again = float((saved.predict(x, verbose=0).argmax(axis=1) == y).mean())
    assert again == metrics["clean_train_accuracy"]
    assert [row["clean_train_accuracy"] for row in history] != [row["accuracy"] for row in history]


def test_same_seed_same_history_other_seed_other(tiny_data, tmp_path):
    one = SMALL.replace(epochs=1)
    histories = [without_timing(train(one, tiny_data, str(tmp_path / str(i)), quiet(seed=s)) and
                                run_history(tmp_path / str(i))) for i, s in enumerate((5, 5, 6))]
    assert histories[0] == histories[1]
    assert histories[0] != histories[2]


@pytest.mark.parametrize("name", RUNGS)
def test_every_rung_trains_a_step_and_evaluates(tiny_data, tmp_path, name):
    config = rung(name).CONFIG.replace(epochs=1, batch_size=len(tiny_data.y_train))
    metrics = train(config, tiny_data, str(tmp_path / name), quiet())
    assert (metrics["name"], metrics["rung"], metrics["epochs"]) == (name, RUNGS.index(name), 1)
    # What is saved is the rung's own network, one step away from the weights it was built with.
    saved = keras.saving.load_model(tmp_path / name / "model.keras")
    runtime.start_run("float32", 0)
    built = inference_network(build_model(config, *tiny_data.channel_stats(), seed=0))
    assert [layer.name for layer in saved.layers] == [layer.name for layer in built.layers]
    assert any(not np.array_equal(a, b) for a, b in zip(saved.get_weights(), built.get_weights()))
    # The test scores are that network's on the test split.
    probs = saved.predict(tiny_data.x_test, batch_size=512, verbose=0)
    expected = score_predictions(probs, tiny_data.y_test)
    assert metrics["test_accuracy"] == expected["test_accuracy"]
    assert metrics["confusion_matrix"] == expected["confusion_matrix"]
    assert metrics["test_loss"] == pytest.approx(expected["test_loss"], rel=1e-5)


OTHER_BACKEND = {"tensorflow": "jax", "jax": "torch", "torch": "tensorflow"}
LOAD_AND_PREDICT = """
import sys, numpy as np, keras
model = keras.saving.load_model(sys.argv[1])
assert "kcifar" not in sys.modules
x = np.load(sys.argv[2])
np.save(sys.argv[3], model.predict(x, verbose=0))
"""


@pytest.mark.parametrize("where", ["same backend", "another backend"])
def test_saved_model_loads_without_kcifar(tiny_data, tmp_path, where):
    # trick8 trains behind the augmentation block (a kcifar layer): what is
    # saved must be the network alone, made of Keras's own layers.
    config = rung("trick8").CONFIG.replace(widths=(8, 8, 8, 8), dense_units=16, epochs=2, batch_size=32)
    metrics = train(config, tiny_data, str(tmp_path / "run"), quiet())
    np.save(tmp_path / "x.npy", tiny_data.x_test)
    other = keras.backend.backend() if where == "same backend" else OTHER_BACKEND[keras.backend.backend()]
    env = dict(os.environ, KERAS_BACKEND=other)
    result = subprocess.run(
        [sys.executable, "-c", LOAD_AND_PREDICT, str(tmp_path / "run" / "model.keras"),
         str(tmp_path / "x.npy"), str(tmp_path / "p.npy")],
        env=env, capture_output=True, text=True, timeout=300, cwd=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    probs = np.load(tmp_path / "p.npy")
    accuracy = float((probs.argmax(1) == tiny_data.y_test).mean())
    assert abs(accuracy - metrics["test_accuracy"]) <= 0.002
    here = keras.saving.load_model(str(tmp_path / "run" / "model.keras")).predict(tiny_data.x_test, verbose=0)
    np.testing.assert_allclose(probs, here, atol=1e-4)


def test_the_learning_rate_is_constant_until_a_rung_decays_it_once_per_epoch():
    assert learning_rate(Config(), steps_per_epoch=10) == 1e-3
    schedule = learning_rate(Config().replace(lr_decay=0.5), steps_per_epoch=10)
    rates = [float(keras.ops.convert_to_numpy(schedule(step))) for step in (0, 9, 10, 19, 20)]
    np.testing.assert_allclose(rates, [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4], rtol=1e-6)


def test_scores_a_known_confusion():
    labels = np.array([0, 0, 1, 1, 2])
    probs = np.full((5, 10), 0.01)
    for i, guess in enumerate([0, 1, 1, 1, 0]):
        probs[i, guess] = 0.91
    result = score_predictions(probs, labels)
    assert result["test_accuracy"] == pytest.approx(3 / 5)
    assert result["per_class_accuracy"][:3] == [0.5, 1.0, 0.0]
    assert result["confusion_matrix"][0][:2] == [1, 1] and result["confusion_matrix"][2][0] == 1
    picked = [0.91, 0.01, 0.91, 0.91, 0.01]
    assert result["test_loss"] == pytest.approx(-np.mean(np.log(picked)))
