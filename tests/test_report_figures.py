"""kcifar.report.figures: PNGs that decode, have their size, and repeat byte for byte."""

import os

import pytest
from PIL import Image
from helpers import write_run

from kcifar.report import figures, runs


@pytest.fixture(scope="module")
def groups(tmp_path_factory):
    """Two rungs; one on two backends, one with two seeds and a decaying learning rate."""
    root = tmp_path_factory.mktemp("runs")
    write_run(root, name="baseline", backend="jax", test_accuracy=0.6, train_accuracy=0.95)
    write_run(root, name="baseline", backend="torch", test_accuracy=0.5, train_accuracy=0.9)
    write_run(root, name="trick6", seed=0, epochs=1, test_accuracy=0.8, train_accuracy=0.85)
    write_run(root, name="trick6", seed=1, epochs=1, test_accuracy=0.9, train_accuracy=0.8)
    found, skipped = runs.collect([str(root)])
    assert not skipped
    return runs.group_runs(found)


def draw(kind, groups, path):
    if kind == "ladder":
        figures.ladder(groups, path)
    else:
        getattr(figures, kind)(groups[-1].runs[0], path)


@pytest.mark.parametrize("kind", ["ladder", "curves", "classes"])
def test_figure_decodes_with_its_size_and_repeats_byte_for_byte(tmp_path, groups, kind):
    first, second = str(tmp_path / "a.png"), str(tmp_path / "b.png")
    draw(kind, groups, first)
    draw(kind, groups, second)
    with Image.open(first) as image:
        image.load()
        assert image.format == "PNG"
        assert image.size == figures.pixels(kind)
        assert "Software" not in image.info
    with open(first, "rb") as a, open(second, "rb") as b:
        assert a.read() == b.read()
    assert sorted(os.listdir(tmp_path)) == ["a.png", "b.png"]  # no temporary file left


def test_ladder_without_runs_shows_the_lecture_alone(tmp_path):
    path = str(tmp_path / "ladder.png")
    figures.ladder([], path)
    with Image.open(path) as image:
        assert image.size == figures.pixels("ladder")


def test_user_style_does_not_change_the_figure(tmp_path, groups):
    import matplotlib

    draw("curves", groups, str(tmp_path / "plain.png"))
    with matplotlib.rc_context({"lines.linewidth": 7, "axes.facecolor": "red", "figure.dpi": 33}):
        draw("curves", groups, str(tmp_path / "styled.png"))
    assert (tmp_path / "plain.png").read_bytes() == (tmp_path / "styled.png").read_bytes()


def test_run_title_says_backend_device_epochs_seed_and_data(groups):
    title = figures.run_title(groups[0].runs[0])
    for text in ("jax 1.2.3", "cpu: x86_64 x2", "seed 0", "3 epochs", "cifar10-jpg.tar.xz", "900 train"):
        assert text in title
