"""The pretrained step's model (kcifar.pretrained), offline: no ImageNet
weights are fetched; a weights file in Keras's legacy .h5 format is written
from a randomly initialized backbone."""

import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
from helpers import quiet

from kcifar import files, pretrained
from kcifar.config import PretrainedConfig
from kcifar.models import inference_network
from kcifar.pretrained import WeightsError
from kcifar.results import read_history
from kcifar.run_folder import Recorder, saved_phase

# The backbone's least input size keeps the tests quick.
TINY = PretrainedConfig(name="pretrained", flip=True, crop_scale=0.75, image_size=32, batch_size=8, epochs=2,
                        head_epochs=1, fine_tune_layers=10)


@pytest.fixture(scope="module")
def backbone():
    return pretrained.build_backbone(TINY, None)


@pytest.fixture
def small_backbone(monkeypatch):
    """For the tests of the phases: a backbone a third the size, built and
    traced in a fraction of the time; the phases treat every backbone alike."""
    monkeypatch.setattr(pretrained, "BACKBONE", keras.applications.MobileNetV3Small)


def images(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3)).astype("uint8"), rng.integers(0, 10, n)


def compiled(config, backbone, phase, learning_rate):
    model = pretrained.build_pretrained_model(config, backbone, seed=0)
    pretrained.set_phase(backbone, config, phase)
    model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy", jit_compile=False)
    return model


def test_phase_one_trains_the_head_alone_and_phase_two_the_top_without_batch_norm(small_backbone):
    backbone = pretrained.build_backbone(TINY, None)
    x, y = images(8)
    model = compiled(TINY, backbone, 1, 1e-3)
    assert {v.path.split("/")[0] for v in model.trainable_variables} == {"probs"}
    frozen = [keras.ops.convert_to_numpy(v) for v in backbone.weights]
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert all(np.array_equal(a, keras.ops.convert_to_numpy(v)) for a, v in zip(frozen, backbone.weights))

    model = compiled(TINY, backbone, 2, 1e-4)
    top = backbone.layers[-TINY.fine_tune_layers:]
    trainable = [layer for layer in backbone.layers if layer.trainable and layer.weights]
    assert trainable and all(layer in top for layer in trainable)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in trainable)
    moving = [keras.ops.convert_to_numpy(v) for v in backbone.non_trainable_weights]
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    # Batch normalization keeps its statistics: the backbone runs in inference mode.
    assert all(np.array_equal(a, keras.ops.convert_to_numpy(v)) for a, v in zip(moving, backbone.non_trainable_weights))
    assert not all(np.array_equal(a, keras.ops.convert_to_numpy(v)) for a, v in zip(frozen, backbone.weights))


def test_a_legacy_weights_file_is_loaded_through_a_path(tmp_path, backbone):
    path = str(tmp_path / pretrained.WEIGHTS_FILE)
    source = pretrained.build_backbone(TINY, None)
    source.save(path)  # Keras's legacy .h5, as keras.applications keeps its files
    assert pretrained.resolve_weights(path) == path
    loaded = pretrained.build_backbone(TINY, path)
    assert len(loaded.weights) == len(source.weights)
    for a, b in zip(source.weights, loaded.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


def test_weights_that_cannot_be_had_end_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr("urllib.request.getproxies", dict)  # no proxy: the probe decides

    def no_network(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", no_network)
    with pytest.raises(WeightsError) as e:
        pretrained.resolve_weights("imagenet")
    message = str(e.value)
    assert "\n" not in message and "--weights PATH" in message and "--weights none" in message
    assert pretrained.WEIGHTS_FILE in message
    assert pretrained.resolve_weights("none") is None
    with pytest.raises(WeightsError, match="no weights file"):
        pretrained.resolve_weights(str(tmp_path / "missing.h5"))
    (tmp_path / "keras" / "models").mkdir(parents=True)
    (tmp_path / "keras" / "models" / pretrained.WEIGHTS_FILE).write_bytes(b"")
    assert pretrained.resolve_weights("imagenet") == "imagenet"  # cached: no network needed


def test_behind_a_proxy_no_probe_refuses_and_a_failed_download_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr("urllib.request.getproxies", lambda: {"https": "http://proxy:3128"})
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: (_ for _ in ()).throw(OSError("unreachable")))
    assert pretrained.resolve_weights("imagenet") == "imagenet"  # the proxy may reach what a socket cannot

    for failure in (ValueError("Incomplete or corrupted file detected.\nThe sha256 ..."), TimeoutError("timed out"),
                    Exception("URL fetch failure on https://...")):
        def backbone(**kwargs):
            raise failure

        monkeypatch.setattr(pretrained, "BACKBONE", backbone)
        with pytest.raises(WeightsError) as e:
            pretrained.build_backbone(TINY, "imagenet")
        assert "\n" not in str(e.value) and "--weights none" in str(e.value)
        assert str(failure).splitlines()[0] in str(e.value)


def test_a_finished_run_is_skipped_offline_without_looking_for_weights(tmp_path, monkeypatch, capsys):
    from kcifar.cli import run_dir_of
    from kcifar.experiments import pretrained as step

    out = tmp_path / "runs"
    args = type("Args", (), {"out": str(out), "budget": "full"})()
    done = run_dir_of(args, step.CONFIG, 0)
    os.makedirs(done)
    files.write_json(os.path.join(done, "metrics.json"), {"name": "pretrained"})
    monkeypatch.setattr(pretrained, "resolve_weights", lambda *a: pytest.fail("weights were looked for"))
    assert step.main(["--out", str(out), "--resume"]) == [{"name": "pretrained"}]
    assert "skipped: complete run" in capsys.readouterr().out


def test_the_saved_network_loads_without_kcifar_and_predicts_the_same(tmp_path, backbone):
    model = compiled(TINY, backbone, 1, 1e-3)
    network = inference_network(model)
    assert network.name == TINY.name
    path = str(tmp_path / "model.keras")
    network.save(path)
    x, _ = images(4, seed=1)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "expected.npy", network.predict(x, verbose=0))
    script = (
        "import sys, keras, numpy as np\n"
        "assert not any(m.startswith('kcifar') for m in sys.modules)\n"
        f"model = keras.saving.load_model({path!r})\n"
        f"got = model.predict(np.load({str(tmp_path / 'x.npy')!r}), verbose=0)\n"
        f"np.testing.assert_allclose(got, np.load({str(tmp_path / 'expected.npy')!r}), rtol=1e-5, atol=1e-6)\n"
        "assert not any(m.startswith('kcifar') for m in sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, env=dict(os.environ), cwd=tmp_path)


@pytest.mark.parametrize("changes, field", [
    ({"image_size": 16}, "image_size"), ({"head_epochs": -1}, "head_epochs"), ({"head_dropout": 1.0}, "head_dropout"),
])
def test_bad_fields_are_refused(changes, field):
    with pytest.raises(ValueError, match=f"Received: {field}="):
        TINY.replace(**changes)


# On one backend: the phases and the checkpoint's phase are kcifar.pretrained's and kcifar.run_folder's
# own logic; the backends' part, a second compile of one model, is the test
# of the phases above, which runs on all three (the CI's time, two minutes for
# the pretrained step, would not hold this one three times).
@pytest.mark.skipif(keras.backend.backend() != "torch", reason="backend-independent logic, run on torch")
def test_a_run_interrupted_in_either_phase_resumes_where_it_was(tiny_data, tmp_path, monkeypatch, small_backbone):
    step = TINY.replace(epochs=3, head_epochs=1, batch_size=27)  # 4 steps an epoch: phase 1, then 2 and 3

    def run(name, **kwargs):
        return pretrained.train(step, tiny_data, str(tmp_path / name), quiet(seed=3, **kwargs), weights=None)

    whole = run("whole")
    original = Recorder.on_epoch_end
    for stop_after in (1, 2):  # the last epoch of phase 1, then one of phase 2
        def on_epoch_end(self, epoch, logs=None, stop_after=stop_after):
            original(self, epoch, logs)
            if epoch + 1 == stop_after:
                raise KeyboardInterrupt

        with monkeypatch.context() as m:
            m.setattr(Recorder, "on_epoch_end", on_epoch_end)
            with pytest.raises(KeyboardInterrupt):
                run("cut", resume=True)
        assert saved_phase(str(tmp_path / "cut" / "checkpoint.npz")) == stop_after
    resumed = run("cut", resume=True)
    history = [{k: v for k, v in row.items() if "seconds" not in k} for row in read_history(tmp_path / "cut")]
    assert history == [{k: v for k, v in row.items() if "seconds" not in k} for row in read_history(tmp_path / "whole")]
    assert [row["learning_rate"] for row in history] == pytest.approx([1e-3, 1e-4, 1e-4])
    assert resumed["test_accuracy"] == whole["test_accuracy"]
    assert files.read_json(tmp_path / "cut" / "settings.json")["weights"] == "none"


def test_the_command_refuses_weights_it_cannot_have_in_one_line_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    from kcifar.experiments import pretrained as step

    out = tmp_path / "runs"
    with pytest.raises(SystemExit) as e:
        step.main(["--weights", str(tmp_path / "missing.h5"), "--out", str(out)])
    assert e.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"python -m kcifar.experiments.pretrained: error: --weights must be imagenet, none or a weights file. "
        f"Received: --weights {tmp_path / 'missing.h5'}")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr("urllib.request.getproxies", dict)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: (_ for _ in ()).throw(OSError("unreachable")))
    with pytest.raises(SystemExit) as e:
        step.main(["--out", str(out)])
    assert e.value.code == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--weights PATH" in err and "--weights none" in err
    assert not out.exists()
