import keras
import numpy as np
import pytest

from kcifar.bench import worker

SPEC = {"batch_size": 8, "precision": "float32", "steps": 2, "windows": 2, "seed": 0}


@pytest.fixture(scope="module")
def data():
    return worker.synthetic_data(n=64)


def test_synthetic_data_is_shaped_like_the_training_split():
    data = worker.synthetic_data(n=32)
    assert data.x_train.shape == (32, 32, 32, 3) and data.x_train.dtype.name == "uint8"
    assert set(data.y_train) <= set(range(10)) and data.source == "synthetic"
    mean, std = data.channel_stats()
    np.testing.assert_allclose(mean, data.x_train.mean(axis=(0, 1, 2)), rtol=0.02)
    np.testing.assert_allclose(std, data.x_train.std(axis=(0, 1, 2)), rtol=0.02)


@pytest.mark.parametrize("name, plain", [("baseline", True), ("trick2", False)])
def test_each_rung_gets_its_paths(name, plain, data):
    paths = {}
    entry = worker.add_rung(paths, name, SPEC, data, keras.backend.backend())
    keras_paths = {f"{name}/keras_step", f"{name}/keras_fit", f"{name}/feed"}
    assert entry["data_format"] in ("channels_last", "channels_first")
    if plain:
        assert entry["plain"] and entry["plain_params"] == entry["params"]
        assert set(paths) == keras_paths | {f"{name}/{p}" for p in entry["plain"]}
        wall, cpu = paths[f"{name}/{entry['plain'][0]}"](1)
        assert wall > 0 and cpu >= 0
    else:
        assert entry["plain"] is None and "batch normalization" in entry["plain_skipped"]
        assert set(paths) == keras_paths


@pytest.mark.parametrize("full", [False, True])
def test_full_times_an_augmenting_rung_without_its_block_too(full, data):
    from kcifar.models import inference_network

    paths = {}
    worker.add_rung(paths, "trick5", {**SPEC, "full": full}, data, keras.backend.backend())
    bare = paths.get(f"trick5/{worker.NO_AUGMENTATION}")
    assert (bare is not None) == full
    if full:
        model = bare.__self__.model
        assert inference_network(model) is model  # no augmentation block
        assert model.count_params() == paths["trick5/keras_fit"].__self__.model.count_params()


def test_full_strips_every_augmentation_field_the_config_has(data, monkeypatch):
    # A rung that translates and may shrink (the study's candidates) keeps no augmentation when bare.
    from kcifar.experiments import trick5
    from kcifar.models import inference_network

    monkeypatch.setattr(trick5, "CONFIG", trick5.CONFIG.replace(translate=4, crop_scale=0.8, crop_max_scale=1.25))
    paths = {}
    worker.add_rung(paths, "trick5", {**SPEC, "full": True}, data, keras.backend.backend())
    model = paths[f"trick5/{worker.NO_AUGMENTATION}"].__self__.model
    assert inference_network(model) is model


def test_jit_adds_a_compiled_keras_step_except_on_jax(data):
    backend = keras.backend.backend()
    paths = {}
    entry = worker.add_rung(paths, "baseline", {**SPEC, "jit": True}, data, backend)
    if backend == "jax":  # Keras compiles JAX's step anyway: nothing to compare
        assert "baseline/keras_jit_step" not in paths and "jit_first_step_seconds" not in entry
        return
    step = paths["baseline/keras_jit_step"]
    assert step.__self__.model.jit_compile is True
    assert entry["jit_first_step_seconds"] > 0
    wall, cpu = step(1)
    assert wall > 0 and cpu >= 0


def test_mixed_precision_has_no_hand_written_step(data):
    entry = worker.add_rung({}, "baseline", {**SPEC, "precision": "mixed_bfloat16"}, data, keras.backend.backend())
    keras.mixed_precision.set_global_policy("float32")
    assert entry["plain"] is None and entry["plain_skipped"] == "hand-written steps run float32 only"


def test_figures_and_ratios_against_the_best_plain_step():
    entry = {"plain": ["slow", "fast"], "train_flops_per_image": 1e9}
    times = {  # (wall, CPU) seconds of two windows of 2 steps of 8 images
        "slow": [(4.0, 4.0), (8.0, 8.0)], "fast": [(2.0, 2.0), (4.0, 4.0)],
        "keras_fit": [(2.5, 2.0), (5.0, 5.0)], "feed": [(0.1, 0.1), (0.1, 0.1)],
    }
    worker.add_figures(entry, times, SPEC, matmul_gflops=10.0)
    assert entry["best_plain"] == "fast"
    assert entry["ratios"] == {"slow": 0.5, "fast": 1.0, "keras_fit": 0.8}
    assert entry["cpu_ratios"]["keras_fit"] == 0.9  # median of 1.0 and 0.8
    fit = entry["paths"]["keras_fit"]
    assert fit["images_per_second"] == 4.8 and fit["gflops"] == 4.8 and fit["matmul_share"] == 0.48
    assert "gflops" not in entry["paths"]["feed"]


def test_profile_tables_the_keras_step_by_operation_where_the_backend_has_a_profiler():
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(64), keras.layers.Dense(10)])
    model.compile(optimizer="sgd", loss="mse")  # a compiled step, as Keras's own: TensorFlow traces no eager ops
    x, y = np.ones((32, 64), "float32"), np.zeros((32, 10), "float32")
    model.train_on_batch(x, y)
    run = lambda steps: [model.train_on_batch(x, y) for _ in range(steps)]  # noqa: E731
    spec = {"rungs": ["baseline"], "steps": 2}
    out = worker.profile_paths({"baseline/keras_step": run}, spec, {"baseline": {"plain": []}},
                               keras.backend.backend(), log=lambda line: None)
    assert out["steps"] == 2 and list(out) == ["steps", "keras_step"]
    assert out["keras_step"]["python"]
    has_profiler = keras.backend.backend() in ("torch", "tensorflow")
    assert ("ops" in out["keras_step"]) == has_profiler
    if has_profiler:
        assert any("mm" in op.lower() or "matmul" in op.lower() for op in out["keras_step"]["ops"])
