import pytest

from kcifar.bench import timing


def fake_paths(order, seconds):
    """Paths that record when they run and take `seconds[name]` per step."""

    def path(name):
        def window(steps):
            order.append((name, steps))
            return seconds[name] * steps, seconds[name] * steps / 2
        return window

    return {name: path(name) for name in seconds}


def test_paths_take_turns_in_rotating_order_after_a_warmup():
    order = []
    times = timing.interleave(fake_paths(order, {"a": 1.0, "b": 2.0, "c": 4.0}), steps=3, windows=3, warmup=1)
    assert order[:3] == [("a", 1), ("b", 1), ("c", 1)]
    assert [n for n, _ in order[3:]] == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert times["b"] == [(6.0, 3.0)] * 3


def test_summary_gives_medians_per_image():
    s = timing.summary([(1.0, 2.0), (2.0, 2.0), (4.0, 8.0)], steps=2, batch_size=8)
    assert s["windows_images_per_second"] == [16.0, 8.0, 4.0]
    assert s["images_per_second"] == 8.0
    assert s["cpu_ms_per_image"] == pytest.approx(125.0)  # 2 s / 16 images
    assert s["spread"] == pytest.approx(1.5)


def test_ratio_is_the_median_of_same_round_ratios():
    # A slow spell in round 2 hits both paths; the per-round ratio stays 0.5.
    assert timing.ratio([50, 10, 50], [100, 20, 100]) == 0.5
    assert timing.ratio([1, 3, 2], [1, 1, 1]) == 2.0
