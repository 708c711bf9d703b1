"""The report's figures, drawn headless on matplotlib's Agg canvas.

Each figure has a fixed size (`SIZES` inches at `DPI`) and is drawn with
matplotlib's default style whatever the user's matplotlibrc says, and saved
without matplotlib's version in the file, so the same results files give the
same PNG bytes. Files are written whole (tmp + rename). Every function
returns the Figure it drew, so that what is drawn can be checked.
"""

import contextlib
import math

import matplotlib
import matplotlib.style
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FormatStrFormatter

from kcifar import files
from kcifar.experiments import BEYOND, RUNGS
from kcifar.report.runs import CUSTOM, FULL, data_label, is_beyond, lecture_of, lecture_text
from kcifar.data.split import TRAIN_SAMPLE_SIZE
from kcifar.results import CLEAN_ACCURACY

DPI = 100
SIZES = {"ladder": (13, 7.5), "epochs": (16, 6), "curves": (15, 4.8), "classes": (14, 6.2)}
LECTURE_BAR = dict(facecolor="0.88", edgecolor="0.35", hatch="///", linewidth=0.8)
VARIANT_HATCH = ".."
GAP_ALPHA = 0.3
GAP_BAR = dict(edgecolor="0.25", hatch="\\\\\\\\", linewidth=0)  # leaning the other way from the lecture's
# One colour and one marker per rung: Paul Tol's "muted" scheme (nine colours
# that readers with the common colour-vision deficiencies tell apart) and
# black; the markers tell rungs apart where colours alone would not.
RUNG_COLOURS = ("#332288", "#88CCEE", "#44AA99", "#117733", "#999933",
                "#DDCC77", "#CC6677", "#882255", "#AA4499", "#000000")
RUNG_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "<", ">", "*")
# Steps beyond the ladder: grey, and markers no rung uses, so that no step
# takes a rung's look from its number.
BEYOND_COLOUR = "#888888"
BEYOND_MARKERS = ("h", "p", "d")
# The ladder chart's space between the last rung and the first step beyond
# the ladder, in slots: room for the dashed line that ends the ladder.
BEYOND_SPACE = 0.5
BEYOND_LINE = dict(color="0.3", ls="--", lw=1)
# Bars of one backend, device, precision and data set share a colour: the
# Okabe-Ito colours, made for colour-blind readers.
SERIES_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442")
SERIES_LINES = ("-", "--", ":", "-.")


def pixels(kind):
    """(width, height) in pixels of a figure of `kind`."""
    width, height = SIZES[kind]
    return round(width * DPI), round(height * DPI)


@contextlib.contextmanager
def _figure(kind, path):
    """Yields a new Figure of `kind`, then writes it to `path` as PNG."""
    with matplotlib.style.context("default"):
        fig = Figure(figsize=SIZES[kind], dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        yield fig
        with files.atomic_path(path) as tmp:
            # No "Software" entry: it names matplotlib's version, which is
            # not part of the results.
            fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})


def epoch_ticks(first, last):
    """Whole-epoch ticks from `first` to `last`: every epoch up to 13, else
    multiples of 2, 5, 10, ..., and the first epoch where it has room."""
    step = next(s for s in (1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000, 10**9) if (last - first) / s <= 12)
    ticks = list(range(math.ceil(first / step) * step, last + 1, step))
    if not ticks or ticks[0] - first > step / 2:
        ticks.insert(0, first)
    return ticks


def _epoch_axis(ax, epochs):
    ax.set_xticks(epoch_ticks(min(epochs), max(epochs)))
    ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
    ax.set_xlabel("epoch")


def accuracy_limits(values, least_span=20):
    """y limits (%) of an accuracy axis: whole tens around `values`, at least
    `least_span` points apart, within 0-100, so that a short run's tiny
    differences are not drawn as large ones."""
    low, high = 10 * math.floor(min(values) / 10), 10 * math.ceil(max(values) / 10)
    if high - low < least_span:
        middle = (low + high) / 2
        low, high = middle - least_span / 2, middle + least_span / 2
    low, high = max(low, 0), min(high, 100)
    return (low, high) if high - low >= least_span else ((0, least_span) if low == 0 else (100 - least_span, 100))


def run_title(run):
    m = run.metrics
    budget = {FULL: "", CUSTOM: ", custom run"}.get(run.budget, f", {run.budget} budget")
    step = "beyond the ladder" if is_beyond(m["name"]) else f"rung {m['rung']}"
    return (
        f"{m['name']} ({step}): {m['change']}\n"
        f"{m['backend']} {m['backend_version']}, {m['device']}, {m['precision']}, seed {m['seed']}, "
        f"{m['epochs']} epoch{'s' * (m['epochs'] != 1)}{budget}, batch {m['batch_size']}; "
        f"data: {data_label(m['data'])}"
    )


def curves(run, path):
    """Accuracy, loss and learning rate per epoch, and the test result at the end."""
    m, history = run.metrics, run.history
    epochs = [row["epoch"] for row in history]
    column = {k: np.array([row[k] for row in history]) for k in history[0]}
    ms = 7 if len(epochs) <= 2 else 3  # a run of an epoch or two is points, not lines: make them seen
    with _figure("curves", path) as fig:
        acc, loss, lr = fig.subplots(1, 3)
        acc.plot(epochs, 100 * column["accuracy"], "o-", ms=ms, label="training (running, over the epoch)")
        acc.plot(epochs, 100 * column["val_accuracy"], "s-", ms=ms, label="validation")
        shown = [*column["accuracy"], *column["val_accuracy"], m["test_accuracy"]]
        if all(v is not None for v in column[CLEAN_ACCURACY]):  # runs before it have none
            acc.plot(epochs, 100 * column[CLEAN_ACCURACY].astype(float), "^-", ms=ms,
                     label=f"training, clean (inference mode, {min(m['data']['train'], TRAIN_SAMPLE_SIZE)} images)")
            shown += list(column[CLEAN_ACCURACY])
        acc.plot(epochs[-1], 100 * m["test_accuracy"], "*", ms=13, color="C3",
                 label=f"test, after the last epoch: {m['test_accuracy']:.2%}")
        acc.set(title="Accuracy", ylabel="accuracy (%)", ylim=accuracy_limits([100 * v for v in shown]))
        # Keras adds the L2 penalty to the training and the validation loss;
        # the test loss is the cross-entropy alone (kcifar.results).
        l2 = run.config.get("l2", 0.0) > 0
        penalty = " + L2 penalty" if l2 else ""
        loss.plot(epochs, column["loss"], "o-", ms=ms, label=f"training (running{penalty})")
        loss.plot(epochs, column["val_loss"], "s-", ms=ms, label=f"validation{penalty}")
        loss.plot(epochs[-1], m["test_loss"], "*", ms=13, color="C3",
                  label=f"test: {m['test_loss']:.3f}" + (" (cross-entropy alone)" if l2 else ""))
        loss.set(title="Loss", ylabel="cross-entropy (nats)")
        lr.plot(epochs, column["learning_rate"], "o-", ms=ms, color="C2")
        lr.set(title="Learning rate (Adam, during each epoch)", ylabel="learning rate",
               ylim=(0, 1.15 * column["learning_rate"].max()))
        lr.yaxis.set_major_formatter(FormatStrFormatter("%.1e"))
        for ax in (acc, loss, lr):
            _epoch_axis(ax, epochs)
            ax.grid(alpha=0.3)
        acc.legend(fontsize=8)
        loss.legend(fontsize=8)
        fig.suptitle(run_title(run), fontsize=10, wrap=True)  # the data line outgrows a narrow figure
    return fig


def classes(run, path):
    """Per-class test accuracy and the confusion matrix of one run."""
    m = run.metrics
    names = m["class_names"]
    per_class = 100 * np.array(m["per_class_accuracy"])
    confusion = np.array(m["confusion_matrix"])
    with _figure("classes", path) as fig:
        bars, matrix = fig.subplots(1, 2, width_ratios=[1, 1.25])
        y = np.arange(len(names))
        bars.barh(y, per_class, color="C0")
        for yi, value in zip(y, per_class):
            bars.text(min(value + 1, 88), yi, f"{value:.1f}%", va="center", fontsize=8,
                      bbox=dict(facecolor="white", edgecolor="none", alpha=0.75, pad=1))
        bars.axvline(100 * m["test_accuracy"], color="C3", ls="--",
                     label=f"all classes: {m['test_accuracy']:.2%}")
        bars.set(yticks=y, yticklabels=names, xlim=(0, 100), xlabel="test accuracy (%)",
                 title=f"Per-class test accuracy ({m['data']['test']} test images)")
        bars.invert_yaxis()
        bars.legend(loc="lower right", fontsize=8)
        bars.grid(axis="x", alpha=0.3)
        image = matrix.imshow(confusion, cmap="Blues")
        threshold = confusion.max() / 2
        for (i, j), count in np.ndenumerate(confusion):
            matrix.text(j, i, str(count), ha="center", va="center", fontsize=7,
                        color="white" if count > threshold else "black")
        matrix.set(xticks=y, yticks=y, xlabel="predicted class", ylabel="true class",
                   title="Confusion matrix (test images)")
        matrix.set_xticklabels(names, rotation=45, ha="right")
        matrix.set_yticklabels(names)
        fig.colorbar(image, ax=matrix, label="test images", shrink=0.8)
        fig.suptitle(run_title(run), fontsize=10, wrap=True)  # the data line outgrows a narrow figure
    return fig


def _series(groups):
    """The series of `groups` in order, and the data sets they use."""
    series = sorted({g.runs[0].series for g in groups})
    return series, {s[3]: g.first["data"] for g in groups for s in [g.runs[0].series]}


def _budget_line(groups, budget):
    """The title's second line: the budget, its epochs and the data."""
    series, datasets = _series(groups)
    counts = sorted({g.first["epochs"] for g in groups})
    line = f"{budget} budget"
    if counts:
        line += f", {'/'.join(map(str, counts))} epoch{'s' * (counts != [1])}"
    if len(datasets) == 1:
        line += f"; data: {data_label(*datasets.values())}"
    return line


def ladder(groups, path, budget=FULL):
    """Test and training accuracy per rung, the gap between them shaded, and
    the lecture's figure beside each rung where `budget` is the full one (the
    lecture reports full training only). Groups of one rung side by side;
    mean and spread over seeds. Steps beyond the ladder come after a dashed
    line, under their names, with no lecture figure: their numbers are no
    rung's.

    Args:
        groups: the `Group`s of one budget.
        path: the PNG to write.
        budget: the budget they were trained on.
    """
    lecture_shown = budget == FULL
    rungs = [g for g in groups if not g.beyond]
    numbers = sorted(set(range(len(RUNGS))) | {g.first["rung"] for g in rungs})
    series, datasets = _series(groups)
    colour = {s: SERIES_COLOURS[i % len(SERIES_COLOURS)] for i, s in enumerate(series)}
    by_rung = {n: [g for g in rungs if g.first["rung"] == n] for n in numbers}
    by_step = {}
    for group in groups:
        if group.beyond:
            by_step.setdefault(group.first["name"], []).append(group)
    beyond_x = [len(numbers) + BEYOND_SPACE + i for i in range(len(by_step))]
    slots = max([lecture_shown + len(members) for members in by_rung.values()]
                + [len(members) for members in by_step.values()]) or 1
    width = 0.84 / slots
    with _figure("ladder", path) as fig:
        ax = fig.subplots()
        for x, number in enumerate(numbers):
            members = by_rung[number]
            offsets = (np.arange(lecture_shown + len(members)) - (lecture_shown + len(members) - 1) / 2) * width
            lecture = lecture_of(number)
            if lecture_shown and lecture is not None:
                ax.bar(x + offsets[0], 100 * lecture, width, label="lecture", **LECTURE_BAR)
                _label(ax, x + offsets[0], f"{lecture_text(lecture)} lecture")
            for group, offset in zip(members, offsets[lecture_shown:]):
                _group_bars(ax, group, x + offset, width, colour[group.runs[0].series])
        for x, members in zip(beyond_x, by_step.values()):
            offsets = (np.arange(len(members)) - (len(members) - 1) / 2) * width
            for group, offset in zip(members, offsets):
                _group_bars(ax, group, x + offset, width, colour[group.runs[0].series])
        if by_step:
            ax.axvline(len(numbers) - 0.5 + BEYOND_SPACE / 2, **BEYOND_LINE)
        if not groups:
            ax.text(0.5, 0.5, "no finished runs yet: only the lecture's figures", transform=ax.transAxes,
                    ha="center", fontsize=12, bbox=dict(facecolor="white", edgecolor="0.5"))
        right = beyond_x[-1] + 0.6 if by_step else len(numbers) - 0.4
        ax.set(ylim=(0, 101), ylabel="accuracy (%)", xlabel="rung", xlim=(-0.6, right))
        ax.grid(axis="y", alpha=0.3)
        names = [RUNGS[n] if 0 <= n < len(RUNGS) else "" for n in numbers]
        ax.set_xticks([*range(len(numbers)), *beyond_x],
                      [f"{n}\n{name}" for n, name in zip(numbers, names)]
                      + [f"beyond the ladder\n{name}" for name in by_step])
        handles = [Patch(label="lecture (reported test accuracy)", **LECTURE_BAR)] if lecture_shown else []
        handles += [Patch(color=colour[s], label=_series_label(s, len(datasets))) for s in series]
        if groups:
            handles += [Patch(facecolor=("0.5", GAP_ALPHA), label="gap: training minus test accuracy", **GAP_BAR),
                        Line2D([], [], color="black", lw=2, label="running training accuracy, last epoch"
                               + (" (mean)" if any(len(g.runs) > 1 for g in groups) else ""))]
        if any(g.runs[0].variant for g in groups):
            handles.append(Patch(facecolor="white", edgecolor="black", hatch=VARIANT_HATCH,
                                 label="config changed from the rung's (see the table)"))
        if any(len(g.runs) > 1 for g in groups):
            handles += [Line2D([], [], color="black", marker="o", ms=3, ls="none", label="one seed's test accuracy"),
                        Line2D([], [], color="black", lw=1, label="error bar: +-1 std over seeds")]
        if by_step:
            handles.append(Line2D([], [], **BEYOND_LINE, label="end of the ladder; to its right, steps beyond it "
                                                               "(no lecture figure)"))
        fig.legend(handles=handles, loc="outside lower center", fontsize=8, ncols=3)
        what = "test and training accuracy per rung"
        if lecture_shown:
            what += ", beside the lecture's reported test accuracy"
        fig.suptitle(f"CIFAR-10 ladder: {what}\n{_budget_line(groups, budget)}", fontsize=11)
    return fig


def _group_bars(ax, group, x, width, colour):
    test, train = group.mean("test_accuracy"), group.mean("train_accuracy")
    spread = group.spread("test_accuracy")
    style = dict(color=colour, capsize=3, error_kw=dict(lw=1))
    if group.runs[0].variant:
        style.update(hatch=VARIANT_HATCH, edgecolor="black", linewidth=0.5)
    ax.bar(x, 100 * test, width, yerr=None if spread is None else 100 * spread, label="test", **style)
    # The gap: from the test accuracy up (or down) to the training accuracy.
    # Hatched, so that a gap below the test accuracy (training under test) shows on the bar too.
    ax.bar(x, 100 * (train - test), width, bottom=100 * test, label="gap", **GAP_BAR, facecolor=(colour, GAP_ALPHA))
    ax.hlines(100 * train, x - width / 2, x + width / 2, colors="black", lw=2, label="train")
    if len(group.runs) > 1:
        values = 100 * np.array(group.values("test_accuracy"))
        ax.plot(np.full(len(values), x), values, "o", color="black", ms=3)
    _label(ax, x, f"{test:.1%} test")  # the gap, epochs and seeds are in the table beside the figure


def _label(ax, x, text):
    """Writes `text` upwards inside the foot of the bar at `x`."""
    ax.text(x, 2, text, rotation=90, ha="center", va="bottom", fontsize=10,
            bbox=dict(facecolor="white", edgecolor="none", alpha=0.75, pad=1))


def _series_label(series, datasets):
    backend, device, precision, data = series
    label = f"ours: {backend} on {device}"
    if precision != "float32":
        label += f", {precision}"
    if datasets > 1:
        label += f", data sha256:{data[0][:8]} ({data[1]} train)"
    return label


def per_epoch(group):
    """(epochs, validation accuracy %, gap in percentage points) of a group,
    each the mean over its seeds; the gap is training (running) minus
    validation accuracy, as the test set is measured once, at the end."""
    epochs = [row["epoch"] for row in group.runs[0].history]
    accuracy = np.mean([[row["accuracy"] for row in run.history] for run in group.runs], axis=0)
    val = np.mean([[row["val_accuracy"] for row in run.history] for run in group.runs], axis=0)
    return epochs, 100 * val, 100 * (accuracy - val)


def epochs(groups, path, budget=FULL):
    """Every rung's validation accuracy per epoch, and its gap per epoch
    (training minus validation accuracy), one line per group; a step beyond
    the ladder in grey, under its name."""
    series, datasets = _series(groups)
    style = {s: SERIES_LINES[i % len(SERIES_LINES)] for i, s in enumerate(series)}
    with _figure("epochs", path) as fig:
        val_ax, gap_ax = fig.subplots(1, 2)
        all_epochs = [1]  # histories count epochs from 1
        for group in groups:
            number = group.first["rung"]
            x, val, gap = per_epoch(group)
            all_epochs += x
            label = group.label
            if len(series) > 1:
                label += f" ({_series_label(group.runs[0].series, len(datasets)).removeprefix('ours: ')})"
            if group.runs[0].variant:
                label += ", changed config"
            if len(group.runs) > 1:
                label += f", mean of {len(group.runs)} seeds"
            if group.beyond:
                look = dict(color=BEYOND_COLOUR, marker=BEYOND_MARKERS[BEYOND.index(group.first["name"])
                                                                   % len(BEYOND_MARKERS)])
            else:
                look = dict(color=RUNG_COLOURS[number % len(RUNG_COLOURS)],
                            marker=RUNG_MARKERS[number % len(RUNG_MARKERS)])
            line = dict(**look, ls=style[group.runs[0].series], ms=5, lw=1.5, markevery=max(1, len(x) // 10))
            if group.runs[0].variant:  # the rung's colour and marker, hollow: told apart from the rung itself
                line.update(mfc="white", lw=1.0)
            val_ax.plot(x, val, label=label, **line)
            gap_ax.plot(x, gap, label=label, **line)
        val_ax.set(title="Validation accuracy per epoch", ylabel="validation accuracy (%)",
                   ylim=accuracy_limits([v for g in groups for v in per_epoch(g)[1]]))
        gap_ax.set(title="Gap per epoch: training (running) minus validation accuracy",
                   ylabel="gap (percentage points)")
        gap_ax.axhline(0, color="black", lw=0.8)
        for ax in (val_ax, gap_ax):
            _epoch_axis(ax, all_epochs)
            ax.grid(alpha=0.3)
        handles, labels = val_ax.get_legend_handles_labels()
        # Centred beside the plots, clear of the title above them.
        fig.legend(handles, labels, loc="outside right center", fontsize=9, title="rung")
        fig.suptitle(f"CIFAR-10 ladder per epoch (the test set is measured once, after the last epoch)\n"
                     f"{_budget_line(groups, budget)}", fontsize=11)
    return fig
