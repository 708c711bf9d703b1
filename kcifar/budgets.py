"""Named training budgets: the whole ladder at one cost.

"full" is each rung's own schedule (50 epochs on the 45000 training images).
A smaller budget trains every rung on the same fixed stratified subset of the
training split for the same number of epochs; validation and test stay whole.
It rescales the learning-rate decay so that the rate falls by the same factor
over the short run as over the rung's full schedule (gamma ** full_epochs ==
gamma' ** epochs): the rescaling belongs to the budget, not to the rung.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Budget:
    train_images: int | None  # None: the whole training split
    epochs: int | None  # None: the rung's own


FULL = "full"
BUDGETS = {
    FULL: Budget(None, None),
    # Rungs 0-8 took 150 minutes of training steps on a 2-core CPU with
    # TensorFlow, rung 9 alone 61 (the metrics.json files in
    # experiments/small). 5000 images and 20 epochs let the baseline overfit
    # as it does at full scale, so the tricks have something to close (10000
    # images and 10 epochs, at the same cost, overfit less).
    "small": Budget(5000, 20),
}
# What a run of the full budget records when it trains other epochs than its
# rung's (--epochs, --config) or a subset of the training split
# (--limit-train): the report sets it apart from the rung's result. Not a
# --budget of its own; its run folder is named as a full run's.
CUSTOM = "custom"


def get(name):
    """The budget of that name; ValueError for an unknown one."""
    if name not in BUDGETS:
        raise ValueError(f"budget must be one of {', '.join(BUDGETS)}. Received: budget={name!r}")
    return BUDGETS[name]


def recorded(name, epochs, rung_epochs, subset):
    """The budget a run records: `name`, but CUSTOM for a run of the full
    budget with other epochs than its rung's or on a subset of the training
    split.

    Args:
        name: the budget asked for.
        epochs: the epochs the run trains.
        rung_epochs: its rung's own epochs.
        subset: True when it trains on a subset of the training split.
    """
    if name == FULL and (subset or epochs != rung_epochs):
        return CUSTOM
    return name


def apply(config, name):
    """The config a budget trains: its epochs, and the decay rescaled to them."""
    budget = get(name)
    if budget.epochs is None or budget.epochs == config.epochs:
        return config
    decay = config.lr_decay ** (config.epochs / budget.epochs)
    return config.replace(epochs=budget.epochs, lr_decay=decay)
