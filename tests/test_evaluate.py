"""python -m kcifar.evaluate: a saved model's test accuracy, per class and confused."""

import os
import zipfile

import keras
import numpy as np
import pytest
from helpers import save_tiny_model

from kcifar import files
from kcifar.train import score_predictions
from kcifar.evaluate import load_model, main


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, tiny_data):
    path = str(tmp_path_factory.mktemp("model") / "model.keras")
    return path, save_tiny_model(path, tiny_data)


def test_reports_the_models_own_numbers(tiny_model, tiny_dir, tiny_data, tmp_path, capsys):
    path, model = tiny_model
    expected = score_predictions(model.predict(tiny_data.x_test, verbose=0), tiny_data.y_test)
    out_json = str(tmp_path / "result.json")

    assert main([path, "--data", tiny_dir, "--json", out_json]) == 0

    result = files.read_json(out_json)
    for key in ("test_accuracy", "per_class_accuracy", "confusion_matrix"):
        assert result[key] == expected[key]
    assert result["test_loss"] == pytest.approx(expected["test_loss"], rel=1e-6)
    assert np.array(result["confusion_matrix"]).sum() == len(tiny_data.y_test) == 40
    assert result["backend"] == keras.backend.backend() and result["data"]["test"] == 40
    out = capsys.readouterr().out
    assert f"test accuracy: {expected['test_accuracy']:.2%}" in out
    assert f"  airplane    {expected['per_class_accuracy'][0]:7.1%}" in out
    confusion_rows = [line for line in out.splitlines() if line.startswith("  truck") and len(line.split()) == 11]
    assert [int(n) for n in confusion_rows[0].split()[1:]] == expected["confusion_matrix"][9]


def test_a_model_saved_once_loads_again(tiny_model):
    path, model = tiny_model
    loaded = load_model(path)
    x = np.zeros((2, 32, 32, 3), np.uint8)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def _wrong_shape_model(path):
    inputs = keras.Input((32, 32, 3))
    keras.Model(inputs, keras.layers.Dense(5)(keras.layers.Flatten()(inputs))).save(path)


@pytest.mark.parametrize("case, message", [
    ("missing", "no such file"),
    ("not a model", "text.keras: not a saved Keras model (expected a model.keras file saved by a kcifar run)"),
    ("a text file", "notes.txt: not a saved Keras model (expected a model.keras file saved by a kcifar run)"),
    ("a zip of something else", "not a Keras model this Keras can load"),
    ("wrong shape", "expected a model from (32, 32, 3) images to 10 class probabilities"),
    ("bad data", "no such file or folder"),
    ("unwritable json", "cannot write"),
])
def test_bad_input_is_one_line_and_status_2(tiny_model, tiny_dir, tmp_path, capsys, case, message):
    path, data, json_path = tiny_model[0], tiny_dir, None
    if case == "missing":
        path = str(tmp_path / "nothing.keras")
    elif case == "not a model":
        path = str(tmp_path / "text.keras")
        files.write_text(path, "not a zip file")
    elif case == "a text file":
        path = str(tmp_path / "notes.txt")
        files.write_text(path, "some notes\n" * 100)
    elif case == "a zip of something else":
        path = str(tmp_path / "other.keras")
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("notes.txt", "not a model")
    elif case == "wrong shape":
        path = str(tmp_path / "five.keras")
        _wrong_shape_model(path)
    elif case == "bad data":
        data = str(tmp_path / "no-data")
    else:
        json_path = str(tmp_path / "no-folder" / "result.json")
    argv = [path, "--data", data] + (["--json", json_path] if json_path else [])

    assert main(argv) == 2

    # (The data loader's progress may come first on stderr.)
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("python -m kcifar.evaluate: error: ") and message in errors[0]
    if "Keras model" in message:  # one short line, not Keras's paragraph on TensorFlow's SavedModel
        assert len(errors[0]) < 150 + len(str(tmp_path)) and "TFSMLayer" not in errors[0]
    assert not os.path.exists(str(tmp_path / "no-folder"))
