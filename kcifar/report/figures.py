"""The report's figures, drawn headless on matplotlib's Agg canvas.

Each figure has a fixed size (`SIZES` inches at `DPI`) and is drawn with
matplotlib's default style whatever the user's matplotlibrc says, and saved
without matplotlib's version in the file, so the same results files give the
same PNG bytes. Files are written whole (tmp + rename).
"""

import contextlib

import matplotlib
import matplotlib.style
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.lines import Line2D
from matplotlib.ticker import FormatStrFormatter, MaxNLocator

from kcifar import files
from kcifar.experiments import RUNGS
from kcifar.report.runs import data_label, lecture_of, lecture_text

DPI = 100
SIZES = {"ladder": (12, 7.5), "curves": (15, 4.8), "classes": (14, 6.2)}
LECTURE_BAR = dict(facecolor="0.88", edgecolor="0.35", hatch="///", linewidth=0.8)
VARIANT_HATCH = ".."


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


def run_title(run):
    m = run.metrics
    return (
        f"{m['name']} (rung {m['rung']}): {m['change']}\n"
        f"{m['backend']} {m['backend_version']}, {m['device']}, {m['precision']}, seed {m['seed']}, "
        f"{m['epochs']} epochs, batch {m['batch_size']}; data: {data_label(m['data'])}"
    )


def curves(run, path):
    """Accuracy, loss and learning rate per epoch, and the test result at the end."""
    m, history = run.metrics, run.history
    epochs = [row["epoch"] for row in history]
    column = {k: np.array([row[k] for row in history]) for k in history[0]}
    with _figure("curves", path) as fig:
        acc, loss, lr = fig.subplots(1, 3)
        acc.plot(epochs, 100 * column["accuracy"], "o-", ms=3, label="training (running, over the epoch)")
        acc.plot(epochs, 100 * column["val_accuracy"], "s-", ms=3, label="validation")
        acc.plot(epochs[-1], 100 * m["test_accuracy"], "*", ms=13, color="C3",
                 label=f"test, after the last epoch: {m['test_accuracy']:.2%}")
        acc.set(title="Accuracy", xlabel="epoch", ylabel="accuracy (%)")
        loss.plot(epochs, column["loss"], "o-", ms=3, label="training (running, with regularization)")
        loss.plot(epochs, column["val_loss"], "s-", ms=3, label="validation")
        loss.plot(epochs[-1], m["test_loss"], "*", ms=13, color="C3", label=f"test: {m['test_loss']:.3f}")
        loss.set(title="Loss", xlabel="epoch", ylabel="cross-entropy (nats)")
        lr.plot(epochs, column["learning_rate"], "o-", ms=3, color="C2")
        lr.set(title="Learning rate (Adam, during each epoch)", xlabel="epoch", ylabel="learning rate",
               ylim=(0, 1.15 * column["learning_rate"].max()))
        lr.yaxis.set_major_formatter(FormatStrFormatter("%.1e"))
        for ax in (acc, loss, lr):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
        acc.legend(fontsize=8)
        loss.legend(fontsize=8)
        fig.suptitle(run_title(run), fontsize=10)


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
        fig.suptitle(run_title(run), fontsize=10)


def ladder(groups, path):
    """Test accuracy per rung beside the lecture's figure, training accuracy
    and the gap; groups of one rung side by side, mean and spread over seeds."""
    numbers = sorted(set(range(len(RUNGS))) | {g.first["rung"] for g in groups})
    series = sorted({g.runs[0].series for g in groups})
    colour = {s: f"C{i % 10}" for i, s in enumerate(series)}
    datasets = {g.runs[0].series[3]: g.first["data"] for g in groups}
    by_rung = {n: [g for g in groups if g.first["rung"] == n] for n in numbers}
    width = 0.84 / max(1 + len(members) for members in by_rung.values())
    with _figure("ladder", path) as fig:
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2.3, 1])
        for x, number in enumerate(numbers):
            members = by_rung[number]
            offsets = (np.arange(1 + len(members)) - len(members) / 2) * width
            lecture = lecture_of(number)
            if lecture is not None:
                top.bar(x + offsets[0], 100 * lecture, width, **LECTURE_BAR)
                _label(top, x + offsets[0], f"{lecture_text(lecture)} lecture")
            for group, offset in zip(members, offsets[1:]):
                _group_bars(top, bottom, group, x + offset, width, colour[group.runs[0].series])
        if not groups:
            for ax in (top, bottom):
                ax.text(0.5, 0.5, "no finished runs yet: only the lecture's figures", transform=ax.transAxes,
                        ha="center", fontsize=12, bbox=dict(facecolor="white", edgecolor="0.5"))
        top.set(ylim=(0, 101), ylabel="test accuracy (%)")
        top.grid(axis="y", alpha=0.3)
        bottom.axhline(0, color="black", lw=0.8)
        bottom.set(ylabel="gap: train - test\n(percentage points)", xlabel="rung")
        bottom.grid(axis="y", alpha=0.3)
        names = [RUNGS[n] if 0 <= n < len(RUNGS) else "" for n in numbers]
        bottom.set_xticks(range(len(numbers)), [f"{n}\n{name}" for n, name in zip(numbers, names)])
        handles = [Patch(label="lecture (reported test accuracy)", **LECTURE_BAR)]
        handles += [Patch(color=colour[s], label=_series_label(s, len(datasets))) for s in series]
        if any(g.runs[0].variant for g in groups):
            handles.append(Patch(facecolor="white", edgecolor="black", hatch=VARIANT_HATCH,
                                 label="config changed from the rung's (see the table)"))
        if groups:
            handles += [Line2D([], [], color="black", lw=2, label="training accuracy, last epoch (mean)"),
                        Line2D([], [], color="black", marker="o", ms=3, ls="none", label="one seed's test accuracy"),
                        Line2D([], [], color="black", lw=1, label="error bar: +-1 std over seeds")]
        fig.legend(handles=handles, loc="outside lower center", fontsize=8, ncols=3)
        title = "CIFAR-10 ladder: test accuracy per rung, ours beside the lecture's reported figure"
        if len(datasets) == 1:
            title += f"\ndata: {data_label(*datasets.values())}"
        fig.suptitle(title, fontsize=11)


def _group_bars(top, bottom, group, x, width, colour):
    test, train, gap = (group.mean(k) for k in ("test_accuracy", "train_accuracy", "gap"))
    spread, gap_spread = group.spread("test_accuracy"), group.spread("gap")
    style = dict(color=colour, capsize=3, error_kw=dict(lw=1))
    if group.runs[0].variant:
        style.update(hatch=VARIANT_HATCH, edgecolor="black", linewidth=0.5)
    top.bar(x, 100 * test, width, yerr=None if spread is None else 100 * spread, **style)
    if len(group.runs) > 1:
        values = 100 * np.array(group.values("test_accuracy"))
        top.plot(np.full(len(values), x), values, "o", color="black", ms=3)
    top.hlines(100 * train, x - width / 2, x + width / 2, colors="black", lw=2)
    top.vlines(x, 100 * min(test, train), 100 * max(test, train), colors="black", lw=0.8, linestyles=":")
    seeds = len(group.runs)
    _label(top, x, f"{test:.1%}, {group.first['epochs']} ep, {seeds} seed{'s' * (seeds > 1)}")
    bottom.bar(x, 100 * gap, width, yerr=None if gap_spread is None else 100 * gap_spread, **style)


def _label(ax, x, text):
    """Writes `text` upwards inside the foot of the bar at `x`."""
    ax.text(x, 2, text, rotation=90, ha="center", va="bottom", fontsize=7,
            bbox=dict(facecolor="white", edgecolor="none", alpha=0.75, pad=1))


def _series_label(series, datasets):
    backend, device, precision, data = series
    label = f"ours: {backend} on {device}"
    if precision != "float32":
        label += f", {precision}"
    if datasets > 1:
        label += f", data sha256:{data[0][:8]} ({data[1]} train)"
    return label
