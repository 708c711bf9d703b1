"""kcifar.tune.space: what a rung searches, and ranges that make sense."""

import math

import pytest

from kcifar.experiments import rung
from kcifar.tune.space import DEFAULT_RANGES, Range, search_space


@pytest.mark.parametrize("name, ranges, learning_rate, expected", [
    ("trick3", {}, False, ("dropout",)),
    ("trick4", {}, False, ("dropout", "l2")),
    ("trick9", {}, False, ("dropout", "l2")),
    ("trick4", {}, True, ("dropout", "l2", "learning_rate")),
    ("trick3", {"learning_rate": Range("learning_rate", 1e-4, 1e-3, "log")}, False, ("dropout", "learning_rate")),
])
def test_search_space_tunes_what_the_rung_uses(name, ranges, learning_rate, expected):
    space = search_space(rung(name).CONFIG, ranges, learning_rate)
    assert tuple(r.name for r in space) == expected
    for r in space:
        assert r == ranges.get(r.name, DEFAULT_RANGES[r.name])


def test_a_held_regularizer_is_not_searched_and_keeps_the_rungs_value():
    space = search_space(rung("trick6").CONFIG, hold=("dropout",))
    assert tuple(r.name for r in space) == ("l2",)
    assert tuple(r.name for r in search_space(rung("trick6").CONFIG, hold=("l2",), learning_rate=True)) == (
        "dropout", "learning_rate")


@pytest.mark.parametrize("name, ranges, hold, message", [
    ("trick3", {}, ("l2",), "trick3 has no l2 to hold"),
    ("trick3", {}, ("dropout",), "nothing left to search"),
    ("trick6", {"dropout": Range("dropout", 0.1, 0.5)}, ("dropout",), "dropout is held at the rung's 0.3"),
])
def test_bad_holds(name, ranges, hold, message):
    with pytest.raises(ValueError, match=message):
        search_space(rung(name).CONFIG, ranges, hold=hold)


@pytest.mark.parametrize("name", ["baseline", "trick1", "trick2"])
def test_rung_without_dropout_or_l2_is_refused(name):
    with pytest.raises(ValueError, match="no dropout and no L2"):
        search_space(rung(name).CONFIG)


def test_range_for_a_knob_the_rung_lacks_is_refused():
    with pytest.raises(ValueError, match="trick3 has no l2"):
        search_space(rung("trick3").CONFIG, {"l2": Range("l2", 1e-5, 1e-3, "log")})


@pytest.mark.parametrize("name, low, high, sampling, message", [
    ("dropout", 0.3, 0.3, "linear", "empty or inverted"),
    ("dropout", 0.5, 0.1, "linear", "empty or inverted"),
    ("dropout", 0.1, 1.0, "linear", "below 1"),
    ("dropout", -0.1, 0.5, "linear", ">= 0"),
    ("l2", 0.0, 1e-2, "log", "log scale"),
    ("l2", 1e-3, 1e-5, "log", "empty or inverted"),
    ("l2", 1e-5, math.inf, "log", "finite"),
    ("l2", 1e-5, 1e-3, "cubic", "sampling"),
])
def test_bad_ranges(name, low, high, sampling, message):
    with pytest.raises(ValueError, match=message):
        Range(name, low, high, sampling)
