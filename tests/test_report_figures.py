"""kcifar.report.figures: what is drawn (bar heights, curve points) equals
the results files' numbers, and the PNGs decode, have their size and repeat
byte for byte."""

import os

import numpy as np
import pytest
from PIL import Image
from helpers import write_run

from kcifar import files
from kcifar.experiments import RUNGS, rung
from kcifar.report import figures, runs


@pytest.fixture(scope="module")
def groups(tmp_path_factory):
    """Two rungs; one on two backends, one with two seeds and a decaying learning rate."""
    root = tmp_path_factory.mktemp("runs")
    write_run(root, name="baseline", backend="jax", test_accuracy=0.6, train_accuracy=0.95)
    write_run(root, name="baseline", backend="torch", test_accuracy=0.5, train_accuracy=0.9)
    write_run(root, name="trick6", seed=0, epochs=1, test_accuracy=0.8, train_accuracy=0.85)
    write_run(root, name="trick6", seed=1, epochs=1, test_accuracy=0.9, train_accuracy=0.8)
    found, _, skipped = runs.collect([str(root)])
    assert not skipped
    return runs.group_runs(found)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A small-budget ladder of all ten rungs, 4 epochs each, one rung with two seeds."""
    root = tmp_path_factory.mktemp("small")
    for i, name in enumerate(RUNGS):
        write_run(root, name=name, epochs=4, budget="small", test_accuracy=0.1 * (i % 10),
                  train_accuracy=0.05 + 0.09 * i)
    write_run(root, name="trick3", seed=1, epochs=4, budget="small", test_accuracy=0.5, train_accuracy=0.7)
    found, _, skipped = runs.collect([str(root)])
    assert not skipped
    return runs.group_runs(found)


def draw(kind, groups, path):
    if kind in ("ladder", "epochs"):
        return getattr(figures, kind)(groups, path)
    return getattr(figures, kind)(groups[-1].runs[0], path)


def bars(ax, label):
    """(x centre, bottom, top) of every bar drawn with `label`, in drawing order."""
    return [(p.get_x() + p.get_width() / 2, p.get_y(), p.get_y() + p.get_height())
            for c in ax.containers if c.get_label() == label for p in c]


def labelled(lines):
    """The curves of a plot, without the unlabelled guides (the zero line)."""
    return [line for line in lines if not line.get_label().startswith("_")]


def history_column(run, column):
    """A history.csv column read from the file itself, as floats."""
    return [float(row[column]) for row in files.read_csv(os.path.join(run.path, "history.csv"))]


@pytest.mark.parametrize("kind", ["ladder", "epochs", "curves", "classes"])
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


def test_ladder_bars_are_the_lectures_and_the_runs_figures(tmp_path, groups):
    (ax,) = draw("ladder", groups, str(tmp_path / "ladder.png")).axes
    lecture = bars(ax, "lecture")
    assert [round(x) for x, _, _ in lecture] == list(range(10))
    assert [top for _, _, top in lecture] == pytest.approx([100 * rung(name).LECTURE for name in RUNGS])
    # baseline on jax 60%, on torch 50%; trick6 the mean of 80% and 90%.
    test = bars(ax, "test")
    assert [round(x) for x, _, _ in test] == [0, 0, 6]
    np.testing.assert_allclose([(bottom, top) for _, bottom, top in test], [(0, 60), (0, 50), (0, 85)])
    # The gap runs from the test accuracy to the training accuracy (mean 82.5% for trick6).
    gap = bars(ax, "gap")
    assert [x for x, _, _ in gap] == pytest.approx([x for x, _, _ in test])
    np.testing.assert_allclose([(bottom, top) for _, bottom, top in gap], [(60, 95), (50, 90), (85, 82.5)])


def test_ladder_of_a_smaller_budget_has_no_lecture_figures(tmp_path, small):
    fig = figures.ladder(small, str(tmp_path / "ladder-small.png"), budget="small")
    (ax,) = fig.axes
    assert bars(ax, "lecture") == []
    expected = [100 * g.mean("test_accuracy") for g in small]
    assert [top for _, _, top in bars(ax, "test")] == pytest.approx(expected)
    assert [round(x) for x, _, _ in bars(ax, "test")] == list(range(10))
    assert "small budget, 4 epochs" in fig.get_suptitle()
    assert ax.get_legend() is None and len(fig.legends) == 1  # the legend is outside the plot


def test_ladder_without_runs_shows_the_lecture_alone(tmp_path):
    path = str(tmp_path / "ladder.png")
    (ax,) = figures.ladder([], path).axes
    assert len(bars(ax, "lecture")) == 10 and bars(ax, "test") == []
    with Image.open(path) as image:
        assert image.size == figures.pixels("ladder")


def test_epochs_chart_draws_every_rungs_validation_accuracy_and_gap_from_history(tmp_path, small):
    fig = figures.epochs(small, str(tmp_path / "epochs-small.png"), budget="small")
    val_ax, gap_ax = fig.axes
    val_lines, gap_lines = (labelled(ax.lines) for ax in fig.axes)
    assert len(val_lines) == len(gap_lines) == 10
    for group, val_line, gap_line in zip(small, val_lines, gap_lines):
        accuracy = np.mean([history_column(run, "accuracy") for run in group.runs], axis=0)
        val = np.mean([history_column(run, "val_accuracy") for run in group.runs], axis=0)
        assert list(val_line.get_xdata()) == [1, 2, 3, 4] == list(gap_line.get_xdata())
        np.testing.assert_allclose(val_line.get_ydata(), 100 * val)
        np.testing.assert_allclose(gap_line.get_ydata(), 100 * (accuracy - val))
        assert val_line.get_label().startswith(f"{group.first['rung']} {group.first['name']}")
    assert "mean of 2 seeds" in val_lines[3].get_label()
    # Ten rungs told apart by colour and by marker alike.
    assert len({line.get_color() for line in val_lines}) == 10
    assert len({line.get_marker() for line in val_lines}) == 10
    assert list(val_ax.get_xticks()) == [1, 2, 3, 4]
    assert val_ax.get_legend() is None and len(fig.legends) == 1


def test_curves_are_the_history_and_the_test_result(tmp_path, groups):
    run = groups[0].runs[0]
    acc, loss, lr = figures.curves(run, str(tmp_path / "curves.png")).axes
    train, val, test = acc.lines
    assert list(train.get_xdata()) == [1, 2, 3]
    np.testing.assert_allclose(train.get_ydata(), 100 * np.array(history_column(run, "accuracy")))
    np.testing.assert_allclose(val.get_ydata(), 100 * np.array(history_column(run, "val_accuracy")))
    assert (list(test.get_xdata()), list(test.get_ydata())) == ([3], [pytest.approx(100 * run.metrics["test_accuracy"])])
    np.testing.assert_allclose(loss.lines[0].get_ydata(), history_column(run, "loss"))
    np.testing.assert_allclose(loss.lines[1].get_ydata(), history_column(run, "val_loss"))
    np.testing.assert_allclose(lr.lines[0].get_ydata(), history_column(run, "learning_rate"))


@pytest.mark.parametrize("name, penalized", [("trick3", False), ("trick4", True), ("trick9", True)])
def test_loss_legend_says_which_losses_hold_the_l2_penalty(tmp_path, small, name, penalized):
    """Keras adds the L2 penalty to the training and validation losses, not
    to the test cross-entropy: with L2 the legend says so, without it not."""
    run = next(g.runs[0] for g in small if g.runs[0].metrics["name"] == name)
    loss = figures.curves(run, str(tmp_path / "curves.png")).axes[1]
    labels = [text.get_text() for text in loss.get_legend().get_texts()]
    if penalized:
        assert labels == ["training (running + L2 penalty)", "validation + L2 penalty",
                          f"test: {run.metrics['test_loss']:.3f} (cross-entropy alone)"]
    else:
        assert labels == ["training (running)", "validation", f"test: {run.metrics['test_loss']:.3f}"]


def test_one_epoch_gets_one_whole_epoch_tick(tmp_path, groups):
    axes = figures.curves(groups[-1].runs[0], str(tmp_path / "curves.png")).axes
    assert [list(ax.get_xticks()) for ax in axes] == [[1], [1], [1]]


@pytest.mark.parametrize("first, last, ticks", [
    (1, 1, [1]), (1, 3, [1, 2, 3]), (1, 20, list(range(2, 21, 2))), (1, 50, [1] + list(range(5, 51, 5))),
])
def test_epoch_ticks_are_whole_epochs(first, last, ticks):
    assert figures.epoch_ticks(first, last) == ticks


def test_classes_bars_are_the_per_class_accuracy(tmp_path, groups):
    run = groups[0].runs[0]
    bars_ax = figures.classes(run, str(tmp_path / "classes.png")).axes[0]
    widths = [p.get_width() for p in bars_ax.patches]
    assert widths == pytest.approx([100 * a for a in run.metrics["per_class_accuracy"]])


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
    assert "1 epoch, batch" in figures.run_title(groups[-1].runs[0])


@pytest.mark.parametrize("values, limits", [
    ([19.8, 20.0], (5, 25)),  # a one-epoch run: its noise is not drawn as a large difference
    ([40.0, 93.0], (40, 100)),
    ([96.0, 99.5], (80, 100)),
    ([0.5, 3.0], (0, 20)),
])
def test_accuracy_axes_span_at_least_twenty_points(values, limits):
    assert figures.accuracy_limits(values) == limits


@pytest.fixture(scope="module")
def beyond(tmp_path_factory):
    """Rung 0 and rung 9, and the pretrained step on two backends."""
    root = tmp_path_factory.mktemp("beyond")
    write_run(root, name="baseline", test_accuracy=0.5, train_accuracy=0.9)
    write_run(root, name="trick9", test_accuracy=0.7, train_accuracy=0.8)
    write_run(root, name="pretrained", test_accuracy=0.9, train_accuracy=0.95)
    write_run(root, name="pretrained", backend="torch", test_accuracy=0.8, train_accuracy=0.85)
    found, _, skipped = runs.collect([str(root)])
    assert not skipped
    return runs.group_runs(found)


def test_ladder_draws_a_step_beyond_it_after_a_dashed_line_under_its_name(tmp_path, beyond):
    fig = figures.ladder(beyond, str(tmp_path / "ladder.png"))
    (ax,) = fig.axes
    ticks = dict(zip(ax.get_xticks(), (t.get_text() for t in ax.get_xticklabels())))
    # The ten rungs as ever, then the step under its name: no unnamed rung 10.
    assert [ticks[x] for x in range(10)] == [f"{n}\n{name}" for n, name in enumerate(RUNGS)]
    assert list(ticks)[10:] == [10.5] and ticks[10.5] == "beyond the ladder\npretrained"
    assert not any(text.startswith("10\n") for text in ticks.values())
    # Its two backends' bars stand over its tick, beside no lecture figure.
    test = bars(ax, "test")
    assert [round(x) for x, _, _ in test[:2]] == [0, 9]
    assert np.mean([x for x, _, _ in test[2:]]) == pytest.approx(10.5)
    assert [top for _, _, top in test] == pytest.approx([50, 70, 90, 80])
    assert len(bars(ax, "lecture")) == 10 and max(x for x, _, _ in bars(ax, "lecture")) < 9.5
    # The dashed line between rung 9 and the step, and the legend says what it means.
    (line,) = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert 9.5 < line.get_xdata()[0] < 10.5 - 0.42
    labels = [text.get_text() for text in fig.legends[0].get_texts()]
    assert any(label.startswith("end of the ladder") for label in labels)
    assert ax.get_xlim()[1] > 10.5 + 0.42


def test_ladder_of_rungs_alone_has_no_place_beyond_it(tmp_path, groups):
    fig = figures.ladder(groups, str(tmp_path / "ladder.png"))
    (ax,) = fig.axes
    assert list(ax.get_xticks()) == list(range(10)) and ax.get_xlim() == pytest.approx((-0.6, 9.6))
    assert not any(line.get_linestyle() == "--" for line in ax.lines)
    assert not any("ladder" in text.get_text() for text in fig.legends[0].get_texts())


def test_epochs_and_curves_name_a_step_beyond_the_ladder_in_a_look_no_rung_has(tmp_path, beyond):
    val_lines = labelled(figures.epochs(beyond, str(tmp_path / "epochs.png")).axes[0].lines)
    labels = [line.get_label() for line in val_lines]
    assert labels[0].startswith("0 baseline") and labels[1].startswith("9 trick9")
    assert all(label.startswith("beyond the ladder: pretrained") for label in labels[2:])
    # Not rung 0's colour and marker, which its number 10 would give it.
    for line in val_lines[2:]:
        assert line.get_color() not in figures.RUNG_COLOURS and line.get_marker() not in figures.RUNG_MARKERS
    title = figures.run_title(beyond[-1].runs[0])
    assert title.startswith("pretrained (beyond the ladder): ") and "rung 10" not in title
