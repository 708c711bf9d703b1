"""A run's settings: every value checked once, when they are made, in one
line; the rung command and a Python caller of kcifar.train.train meet the
same checks."""

import dataclasses
import math
import sys

import pytest

from kcifar.settings import RunSettings, check_time_limit


@pytest.mark.parametrize("limit", [0, -1, float("nan")])
def test_a_time_limit_that_is_not_positive_is_refused(limit):
    message = f"--time-limit must be a positive number of seconds. Received: --time-limit {limit:g}"
    for check in (lambda: RunSettings(time_limit=limit), lambda: check_time_limit(limit)):
        with pytest.raises(ValueError) as refused:
            check()
        assert str(refused.value) == message
    check_time_limit(None)
    check_time_limit(math.inf)


@pytest.mark.parametrize("changes, message", [
    ({"precision": "float64"}, "--precision must be one of float32, mixed_bfloat16, mixed_float16. "
                               "Received: --precision float64"),
    ({"budget": "huge"}, "--budget must be one of full, small, custom. Received: --budget huge"),
])
def test_a_precision_or_budget_that_no_run_knows_is_refused(changes, message):
    with pytest.raises(ValueError) as refused:
        RunSettings(**changes)
    assert str(refused.value) == message
    with pytest.raises(ValueError) as refused:
        dataclasses.replace(RunSettings(), **changes)  # a copy is checked as the original was
    assert str(refused.value) == message


def test_tensorboard_logs_without_tensorflow_are_refused_in_one_line(monkeypatch):
    assert RunSettings(tensorboard=None).tensorboard is None  # no logs, no TensorFlow needed
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(ImportError) as refused:
        RunSettings(tensorboard="logs")
    assert "\n" not in str(refused.value) and 'pip install -e ".[tensorflow]"' in str(refused.value)


def test_the_settings_are_one_frozen_value():
    assert RunSettings(budget="custom").budget == "custom"  # what a full run with other epochs or images records
    settings = RunSettings(seed=3, resume=True)
    with pytest.raises(AttributeError):
        settings.seed = 4
    assert dataclasses.replace(settings, seed=4) == RunSettings(seed=4, resume=True)
