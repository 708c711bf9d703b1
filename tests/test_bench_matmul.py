import types

import keras
import pytest

from kcifar.bench import matmul

# Three timed calls of 2.0, 0.5 and 1.25 seconds: the minimum (0.5) is none
# of the mean (1.25), the median (1.25), the first or the last call.
TICKS = (10.0, 12.0, 20.0, 20.5, 30.0, 31.25)


def scripted_clock(monkeypatch, ticks=TICKS):
    """Replaces the clock matmul reads (and only that one) by `ticks`; a call
    past the script raises StopIteration, so an extra timed call shows."""
    ticks = iter(ticks)
    monkeypatch.setattr(matmul, "time", types.SimpleNamespace(perf_counter=lambda: next(ticks)))


def test_best_seconds_is_the_fastest_timed_call_after_one_warm_up(monkeypatch):
    calls, synced = [], []
    scripted_clock(monkeypatch)
    seconds = matmul.best_seconds(lambda: calls.append(1) or len(calls), repeats=3, sync=synced.append)
    assert seconds == 0.5
    assert len(calls) == 4 and synced == [1, 2, 3, 4]  # each result waited for, the warm-up's too


def test_numpy_rate_is_2n3_flops_over_the_best_time(monkeypatch):
    scripted_clock(monkeypatch)
    assert matmul.numpy_rate(n=64, repeats=3) == pytest.approx(2 * 64**3 / 0.5 / 1e9, rel=1e-12)


def test_backend_rate_is_2n3_flops_over_the_best_time(monkeypatch):
    scripted_clock(monkeypatch)
    rate = matmul.backend_rate(keras.backend.backend(), n=64, repeats=3)
    assert rate == pytest.approx(2 * 64**3 / 0.5 / 1e9, rel=1e-12)


def test_rates_are_measured_on_a_real_matmul():
    # The real clock: a 64 x 64 matmul is done in well under a second.
    assert 2 * 64**3 / 1e9 < matmul.numpy_rate(n=64, repeats=1) < 1e6
    assert 2 * 64**3 / 1e9 < matmul.backend_rate(keras.backend.backend(), n=64, repeats=1) < 1e6


def test_unknown_backend_has_no_rate():
    assert matmul.backend_rate("mxnet", n=8) is None
