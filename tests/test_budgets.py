import pytest

from kcifar import budgets
from kcifar.experiments import RUNGS, rung


@pytest.mark.parametrize("name", RUNGS)
def test_full_is_each_rungs_own_schedule(name):
    config = rung(name).CONFIG
    assert budgets.apply(config, "full") == config


@pytest.mark.parametrize("name", RUNGS)
def test_small_trains_every_rung_alike_and_decays_by_the_same_factor(name):
    config = rung(name).CONFIG
    small = budgets.apply(config, "small")
    budget = budgets.get("small")
    assert small.epochs == budget.epochs
    # Over the short run the rate falls as far as over the full schedule.
    assert small.lr_decay ** small.epochs == pytest.approx(config.lr_decay ** config.epochs, rel=1e-9)
    assert small.replace(epochs=config.epochs, lr_decay=config.lr_decay) == config  # nothing else changes


def test_rung6_decay_is_rescaled_from_its_full_schedule():
    small = budgets.apply(rung("trick6").CONFIG, "small")
    # 0.96 per epoch over 50 epochs is 0.96 ** 2.5 per epoch over 20.
    assert small.lr_decay == pytest.approx(0.96 ** (50 / budgets.get("small").epochs))


def test_unknown_budget():
    with pytest.raises(ValueError, match="Received: budget='tiny'"):
        budgets.get("tiny")
