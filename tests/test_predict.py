"""python -m kcifar.predict: your own images, any size, classified; bad ones named."""

import numpy as np
import pytest
from PIL import Image
from helpers import save_tiny_model

from kcifar.data import CLASS_NAMES
from kcifar.predict import ImageError, main, read_image, top_classes

RED, GREEN, BLUE = (220, 20, 30), (20, 200, 40), (30, 40, 210)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, tiny_data):
    path = str(tmp_path_factory.mktemp("model") / "model.keras")
    return path, save_tiny_model(path, tiny_data)


def solid(size, colour, mode="RGB"):
    return Image.new("RGB", size, colour).convert(mode)


@pytest.mark.parametrize("name, image, colour", [
    ("big.png", solid((300, 200), RED, "RGBA"), RED),
    ("small.jpg", solid((20, 20), (128, 128, 128), "L"), (128, 128, 128)),
    ("palette.gif", solid((64, 48), (0, 51, 204), "P"), (0, 51, 204)),  # a web-safe colour: no dither
    ("cmyk.jpg", solid((40, 90), GREEN, "CMYK"), GREEN),
    ("exact.bmp", solid((32, 32), RED), RED),
])
def test_any_size_and_mode_becomes_32x32_rgb(tmp_path, name, image, colour):
    path = str(tmp_path / name)
    image.save(path)
    array = read_image(path)
    assert array.shape == (32, 32, 3) and array.dtype == np.uint8
    # A lossy format moves colours a little; a plain colour stays that colour.
    assert np.abs(array.astype(int) - colour).max() <= 12


def three_stripes(path, exif=None):
    """96x32: red, green and blue thirds, left to right."""
    array = np.zeros((32, 96, 3), np.uint8)
    for i, colour in enumerate((RED, GREEN, BLUE)):
        array[:, 32 * i:32 * (i + 1)] = colour
    Image.fromarray(array).save(path, **({"exif": exif} if exif else {}))
    return path


@pytest.mark.parametrize("resize, left, middle, right", [
    ("crop", GREEN, GREEN, GREEN), ("stretch", RED, GREEN, BLUE)])
def test_crop_keeps_the_central_square_stretch_the_whole(tmp_path, resize, left, middle, right):
    array = read_image(three_stripes(str(tmp_path / "wide.png")), resize).astype(int)
    for column, colour in ((1, left), (16, middle), (30, right)):
        assert np.abs(array[16, column] - colour).max() <= 3


def test_exif_orientation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise: the left third on top
    array = read_image(three_stripes(str(tmp_path / "turned.jpg"), exif), "stretch").astype(int)
    assert np.abs(array[1, 16] - RED).max() <= 12 and np.abs(array[30, 16] - BLUE).max() <= 12


@pytest.mark.parametrize("content, reason", [
    (None, "no such file"), (b"hello", "not an image file Pillow can read"), ("folder", "a folder")])
def test_unreadable_images_raise_one_line(tmp_path, content, reason):
    path = tmp_path / "x.png"
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageError, match=reason):
        read_image(str(path))


def test_truncated_image_is_unreadable(tmp_path):
    path = tmp_path / "cut.png"
    solid((64, 64), RED).save(path)
    path.write_bytes(path.read_bytes()[:80])
    with pytest.raises(ImageError, match="unreadable image"):
        read_image(str(path))


def test_top_classes_most_probable_first():
    probs = np.array([0.05, 0.3, 0.0, 0.4, 0.05, 0.05, 0.05, 0.05, 0.05, 0.0])
    assert top_classes(probs, 3) == [("cat", 0.4), ("automobile", 0.3), ("airplane", 0.05)]


def test_classifies_the_good_images_and_names_the_bad(tmp_path, tiny_model, capsys):
    path, model = tiny_model
    good = [str(tmp_path / "a.png"), str(tmp_path / "b.jpg")]
    solid((100, 70), RED).save(good[0])
    solid((10, 10), BLUE).save(good[1])
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")

    assert main([path, good[0], str(bad), good[1], str(tmp_path / "missing.jpg"), "--top", "4"]) == 0

    out, err = capsys.readouterr()
    probs = model.predict(np.stack([read_image(p) for p in good]), verbose=0)
    lines = out.splitlines()
    assert len(lines) == 2
    for line, image_path, row in zip(lines, good, probs):
        head, _, rest = line.partition(": ")
        pairs = [pair.rsplit(" ", 1) for pair in rest.split(", ")]
        assert head == image_path and len(pairs) == 4
        for name, prob in pairs:
            assert float(prob) == pytest.approx(row[CLASS_NAMES.index(name)], abs=6e-4)
        assert pairs[0][0] == CLASS_NAMES[int(np.argmax(row))]
    assert err.splitlines() == [
        f"python -m kcifar.predict: skipped {bad}: not an image file Pillow can read",
        f"python -m kcifar.predict: skipped {tmp_path / 'missing.jpg'}: no such file",
    ]


def test_status_1_when_no_image_could_be_read(tmp_path, tiny_model, capsys):
    assert main([tiny_model[0], str(tmp_path / "missing.jpg")]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == "python -m kcifar.predict: error: no image could be read"


@pytest.mark.parametrize("top", ["0", "11"])
def test_top_out_of_range_is_a_usage_error(tiny_model, top, tmp_path, capsys):
    assert main([tiny_model[0], str(tmp_path / "a.png"), "--top", top]) == 2
    err = capsys.readouterr().err
    assert err == f"python -m kcifar.predict: error: --top must be in 1..10. Received: --top {top}\n"


def test_bad_model_is_status_2(tmp_path, capsys):
    image = str(tmp_path / "a.png")
    solid((32, 32), RED).save(image)
    assert main([str(tmp_path / "none.keras"), image]) == 2
    assert capsys.readouterr().err.strip().endswith("none.keras: no such file")
