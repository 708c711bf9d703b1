import keras
import numpy as np
import pytest
from reference_augment import crop_resize as reference_crop_resize
from reference_augment import draw as reference_draw
from reference_augment import translate as reference_translate

from kcifar.augment import (RandomCropResize, RandomTranslate, augmentation_layers, augments, crop_resize, crops,
                            translate, without_augmentation)
from kcifar.config import Config
from kcifar.experiments import RUNGS, rung
from kcifar.models import build_model


def batch(n=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def layer_crop_resize(images, params):
    tensors = [keras.ops.convert_to_tensor(p.astype("float32")) for p in params]
    return numpy(crop_resize(keras.ops.convert_to_tensor(images.astype("float32")), *tensors))


@pytest.mark.parametrize("min_scale, rotation, max_scale", [(0.75, 0.0, 1.0), (0.6, 15.0, 1.0), (0.3, 90.0, 1.0),
                                                            (0.8, 0.0, 1.25), (0.8, 15.0, 1.5)])
def test_same_transforms_give_the_reference_images(min_scale, rotation, max_scale):
    # The reference rounds to uint8; the layer keeps the exact float.
    x = batch(64)
    params = reference_draw(64, np.random.default_rng(3), min_scale, rotation, max_scale)
    ours = layer_crop_resize(x, params)
    assert np.abs(ours - reference_crop_resize(x, *params)).max() <= 0.5 + 1e-3


def test_full_window_without_rotation_is_the_identity():
    x = batch()
    params = (np.ones(16), np.zeros(16), np.full(16, 16.0), np.full(16, 16.0))
    np.testing.assert_allclose(layer_crop_resize(x, params), x, atol=1e-4)


@pytest.mark.parametrize("min_scale, rotation", [(0.75, 0.0), (0.6, 15.0), (1.0, 15.0)])
def test_each_image_of_a_batch_gets_its_own_transform(min_scale, rotation):
    same = np.repeat(batch(1), 16, axis=0).astype("float32")
    out = numpy(RandomCropResize(min_scale, rotation, seed=0)(same, training=True))
    assert out.shape == same.shape
    assert len({o.tobytes() for o in out}) == 16


def test_inference_passes_the_images_through():
    x = batch().astype("float32")
    np.testing.assert_array_equal(numpy(RandomCropResize(0.5, 30.0, seed=0)(x)), x)
    np.testing.assert_array_equal(numpy(RandomCropResize(0.5, 30.0, seed=0)(x, training=False)), x)


def test_same_seed_same_draws_and_the_state_moves_on():
    x = batch().astype("float32")
    a, b = RandomCropResize(0.6, 15.0, seed=7), RandomCropResize(0.6, 15.0, seed=7)
    first = numpy(a(x, training=True))
    np.testing.assert_array_equal(first, numpy(b(x, training=True)))
    assert not np.array_equal(first, numpy(a(x, training=True)))


@pytest.mark.parametrize("min_scale, rotation", [(0.6, 15.0), (0.75, 0.0)])
def test_drawn_transforms_follow_the_pipelines_distributions(min_scale, rotation):
    n = 20000
    scale, angle, cy, cx = (numpy(p) for p in RandomCropResize(min_scale, rotation, seed=1).draw(n, 32))
    uniform_quartiles = np.array([0.25, 0.5, 0.75])

    def is_uniform(u):  # u should be uniform on [0, 1]
        return u.min() >= 0 and u.max() <= 1 and np.abs(np.quantile(u, uniform_quartiles) - uniform_quartiles).max() < 0.02

    assert is_uniform((scale - min_scale) / (1 - min_scale))
    if rotation:
        assert is_uniform((np.degrees(angle) + rotation) / (2 * rotation))
    else:
        assert not angle.any()
    # Centre uniform over the places that keep the unrotated window inside.
    half = 16 * scale
    for c in (cy, cx):
        assert is_uniform((c - half) / np.maximum(32 - 2 * half, 1e-6))
    # The four draws (columns of one random call) are independent of one another.
    drawn = [scale, angle, cy, cx] if rotation else [scale, cy, cx]
    correlations = np.corrcoef(drawn)[np.triu_indices(len(drawn), 1)]
    assert np.abs(correlations).max() < 0.03


def test_a_window_larger_than_the_image_shrinks_it_and_repeats_the_edges():
    # On a left-to-right ramp, a window of side s > 1 spans the whole ramp in
    # a fraction 1/s of the output, the image kept inside the window; the
    # rest repeats the first or last column.
    ramp = np.broadcast_to(np.linspace(0, 248, 32, dtype="float32")[None, None, :, None], (256, 32, 32, 3))
    layer = RandomCropResize(1.0, max_scale=1.5, seed=0)
    scale = numpy(layer.draw(256, 32)[0])
    assert scale.min() >= 1.0 and scale.max() <= 1.5 and scale.max() > 1.4
    out = numpy(RandomCropResize(1.25, max_scale=1.25, seed=0)(ramp, training=True))[:, 16, :, 0]
    assert out.min() == ramp.min() and out.max() == ramp.max()  # the whole image is in every window
    inside = (out > ramp.min()) & (out < ramp.max())
    assert np.all(inside.sum(axis=1) <= np.ceil(32 / 1.25) + 1) and np.all(inside.sum(axis=1) >= 32 / 1.25 - 2)


@pytest.mark.parametrize("min_scale, max_scale", [(0.8, 1.25), (1.0, 1.5)])
def test_drawn_scales_are_uniform_over_the_range_and_the_image_stays_in_the_window(min_scale, max_scale):
    scale, _, cy, cx = (numpy(p) for p in RandomCropResize(min_scale, max_scale=max_scale, seed=2).draw(20000, 32))
    u = (scale - min_scale) / (max_scale - min_scale)
    assert u.min() >= 0 and u.max() <= 1 and np.abs(np.quantile(u, [0.25, 0.5, 0.75]) - [0.25, 0.5, 0.75]).max() < 0.02
    half = 16 * scale
    small, eps = scale <= 1, 1e-4
    for c in (cy, cx):  # the window [c - half, c + half] lies in the image where smaller, covers it where larger
        assert np.all((c - half >= -eps) & (c + half <= 32 + eps) | ~small)
        assert np.all((c - half <= eps) & (c + half >= 32 - eps) | small)
    assert small.any() == (min_scale < 1) and (~small).any()


def test_translation_gives_the_reference_images():
    x = batch(32).astype("float32")
    offsets = np.random.default_rng(4).integers(0, 9, (32, 2)).astype("int32")
    ours = numpy(translate(keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(offsets), 4))
    np.testing.assert_array_equal(ours, reference_translate(x, offsets, 4))


def test_translation_shifts_each_image_by_its_own_whole_pixels_with_a_black_border():
    image = batch(1).astype("float32")
    out = numpy(RandomTranslate(4, seed=0)(np.repeat(image, 1024, axis=0), training=True))
    # Every output is the image at one of the 9 x 9 offsets, exactly: moved, never resampled.
    offsets = [(dy, dx) for dy in range(9) for dx in range(9)]
    shifted = {reference_translate(image, [o], 4)[0].tobytes(): o for o in offsets}
    found = [shifted.get(o.tobytes()) for o in out]
    assert None not in found
    assert set(found) == set(offsets)  # drawn per image, each offset turns up
    assert not out[found.index((0, 0))][:4].any()  # shifted down by 4: the top rows are the black padding


def test_translation_passes_inference_through_and_repeats_with_its_seed():
    x = batch().astype("float32")
    np.testing.assert_array_equal(numpy(RandomTranslate(4, seed=0)(x)), x)
    a, b = RandomTranslate(4, seed=7), RandomTranslate(4, seed=7)
    first = numpy(a(x, training=True))
    np.testing.assert_array_equal(first, numpy(b(x, training=True)))
    assert not np.array_equal(first, numpy(a(x, training=True)))


@pytest.mark.parametrize("pad", [0, -1, 2.5, None])
def test_bad_translation(pad):
    with pytest.raises(ValueError, match=f"Received: pad={pad!r}"):
        RandomTranslate(pad)


def test_crop_magnifies_a_window():
    # On a left-to-right ramp a window of side s spans a fraction s of the range.
    ramp = np.broadcast_to(np.linspace(0, 248, 32, dtype="float32")[None, None, :, None], (64, 32, 32, 3))
    out = numpy(RandomCropResize(0.5, seed=0)(ramp, training=True))
    spans = (out[:, 16, -1, 0] - out[:, 16, 0, 0]) / (ramp[0, 16, -1, 0] - ramp[0, 16, 0, 0])
    assert spans.min() > 0.45 and spans.max() <= 1.0 + 1e-6
    assert spans.min() < 0.6  # some windows are small: the draw covers [0.5, 1]


@pytest.mark.parametrize("kwargs, message", [
    ({"min_scale": 0.0}, "Received: min_scale=0.0"), ({"min_scale": 1.5}, "Received: min_scale=1.5"),
    ({"max_scale": 0.9}, "Received: max_scale=0.9"), ({"max_scale": 2.5}, "Received: max_scale=2.5"),
    ({"max_rotation": -1.0}, "Received: max_rotation=-1.0"), ({"max_rotation": 180.0}, "Received: max_rotation=180.0"),
])
def test_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RandomCropResize(**kwargs)


@pytest.mark.parametrize("changes, names", [
    ({}, []), ({"flip": True}, ["flip"]), ({"crop_scale": 0.8}, ["crop_resize"]),
    ({"rotation": 10.0, "flip": True}, ["crop_resize", "flip"]), ({"crop_max_scale": 1.25}, ["crop_resize"]),
    ({"translate": 4, "flip": True}, ["translate", "flip"]),
])
def test_the_block_holds_what_the_config_asks(changes, names):
    assert [layer.name for layer in augmentation_layers(Config().replace(**changes), None)] == names


@pytest.mark.parametrize("changes, expected", [
    ({}, False), ({"flip": True}, True), ({"crop_scale": 0.8}, True), ({"rotation": 10.0}, True),
    ({"crop_max_scale": 1.1}, True), ({"translate": 2}, True),
])
def test_augments_exactly_when_there_is_a_block(changes, expected):
    config = Config().replace(**changes)
    assert augments(config) is expected
    assert bool(augmentation_layers(config, (1, 2, 3))) is expected


@pytest.mark.parametrize("name", [n for n in RUNGS if augments(rung(n).CONFIG)])
def test_without_augmentation_drops_the_block_and_nothing_else(name):
    config = rung(name).CONFIG
    bare = without_augmentation(config)
    assert not augments(bare) and not augmentation_layers(bare, (1, 2, 3))
    changed = {f for f in vars(config) if getattr(config, f) != getattr(bare, f)}
    assert changed and changed <= {"flip", "crop_scale", "crop_max_scale", "translate", "rotation"}


@pytest.mark.parametrize("name", [n for n in RUNGS if augments(rung(n).CONFIG)])
def test_the_block_computes_in_float32_under_mixed_precision(name):
    try:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        block = augmentation_layers(rung(name).CONFIG, (1, 2, 3))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert block and all(layer.compute_dtype == "float32" for layer in block)


def test_why_not_kerass_own_layers():
    # The reasons kcifar.augment gives, checked against this Keras: RandomCrop
    # crops a whole batch at one offset, and all four switch off compilation
    # for any model that holds them (model_supports_jit).
    same = np.repeat(batch(1).astype("float32"), 8, axis=0)
    padded = np.pad(same, ((0, 0), (4, 4), (4, 4), (0, 0)))
    crop = keras.layers.RandomCrop(32, 32, seed=0)
    assert len({o.tobytes() for o in numpy(crop(padded, training=True))}) == 1
    for layer in (crop, keras.layers.RandomZoom(0.3), keras.layers.RandomRotation(0.05),
                  keras.layers.RandomTranslation(0.1, 0.1)):
        assert layer.supports_jit is False
    assert RandomCropResize(0.5, 15.0).supports_jit and keras.layers.RandomFlip().supports_jit


def draws_per_call(layer, x):
    """The random calls each seeded layer in `layer` (a layer or a model)
    makes in one training call, by name: how far its SeedGenerator's counter
    moves (every keras.random call on a generator moves it by one, on every
    backend), and the total over all the generators the model holds."""
    def generator_of(one):
        return getattr(one, "seed_generator", None) or getattr(one, "generator", None)

    def walk(one):
        yield one
        for inner in getattr(one, "layers", []):
            yield from walk(inner)

    seeded = {one.name: generator_of(one) for one in walk(layer) if generator_of(one) is not None}
    states = [v for v in layer.variables if v.path.endswith("seed_generator_state")]
    counter = lambda generator: int(numpy(generator.state)[1])  # noqa: E731
    before = {name: counter(g) for name, g in seeded.items()}
    total_before = sum(int(numpy(v)[1]) for v in states)
    layer(x, training=True)
    return ({name: counter(g) - before[name] for name, g in seeded.items()},
            sum(int(numpy(v)[1]) for v in states) - total_before)


@pytest.mark.parametrize("make", [
    lambda: RandomCropResize(0.6, 15.0, seed=0), lambda: RandomCropResize(0.8, max_scale=1.25),
    lambda: RandomTranslate(4, seed=0), lambda: keras.layers.RandomFlip("horizontal", seed=0),
], ids=["crop-rotate", "crop-shrink", "translate", "keras-flip"])
@pytest.mark.parametrize("n", [1, 64])
def test_each_augmentation_layer_draws_once_a_batch(make, n):
    # One random call a batch, whatever its size (RandomCropResize drew in
    # four calls before: scale, angle, and the centre's two coordinates).
    layer = make()
    per_layer, total = draws_per_call(layer, batch(n).astype("float32"))
    assert per_layer == {layer.name: 1} and total == 1


# One rung of each set of random layers (trick2, 4, 6, 8 and 9 repeat the one before).
@pytest.mark.parametrize("name", ["baseline", "trick1", "trick3", "trick5", "trick7"])
def test_a_training_step_draws_once_for_each_random_layer(name):
    # The count a step of a rung makes: one random call for each layer that
    # draws (crop, translation, flip, input noise, each stage's dropout), 7
    # for rungs 5-9 (10 while the crop drew four times).
    config = rung(name).CONFIG.replace(widths=(4,) * len(rung(name).CONFIG.widths), dense_units=8)
    model = build_model(config, [125.0] * 3, [63.0] * 3, seed=0)
    per_layer, total = draws_per_call(model, batch(4).astype("float32"))
    expected = (crops(config) + (config.translate > 0) + config.flip + (config.input_noise > 0)
                + len(config.widths) * (config.dropout > 0))
    assert set(per_layer.values()) <= {1} and len(per_layer) == expected and total == expected
    assert total == {"baseline": 0, "trick1": 1, "trick3": 5, "trick5": 7, "trick7": 7}[name]


def test_a_restored_seed_state_gives_the_same_draws():
    # Resume: the generator's state is the layer's only random state, a
    # variable a checkpoint keeps, and it alone fixes the next draw.
    x = batch().astype("float32")
    ran, fresh = RandomCropResize(0.6, 15.0, seed=7), RandomCropResize(0.6, 15.0, seed=99)
    ran(x, training=True)
    assert ran.variables == [ran.seed_generator.state]
    fresh.seed_generator.state.assign(ran.seed_generator.state)
    np.testing.assert_array_equal(numpy(fresh(x, training=True)), numpy(ran(x, training=True)))
