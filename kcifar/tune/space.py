"""What a search looks at: continuous ranges of Config fields, and which of
them a rung can use.

Only the regularization the rung already has is searched: the dropout rate
when the rung has dropout (trick3 and up), the L2 lambda when it has an L2
penalty (trick4 and up), and the learning rate only when asked. A rung with
neither (baseline, trick1, trick2) is refused: its model has no such knob.
Nothing here imports Keras, so bad ranges fail fast.
"""

import dataclasses
import math

# Searched in this order; the names are Config fields, so a trial's values
# are config changes as they are.
REGULARIZERS = ("dropout", "l2")
SAMPLINGS = ("linear", "log")


@dataclasses.dataclass(frozen=True)
class Range:
    """A continuous search range for one Config field.

    Args:
        name: the Config field ("dropout", "l2" or "learning_rate").
        low: smallest value.
        high: largest value (> low).
        sampling: "linear" or "log" (log needs low > 0).
    """

    name: str
    low: float
    high: float
    sampling: str = "linear"

    def __post_init__(self):
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {', '.join(SAMPLINGS)}. Received: sampling={self.sampling!r}")
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError(f"{self.name} range must be finite. Received: {self.low},{self.high}")
        if self.low >= self.high:
            raise ValueError(
                f"{self.name} range is empty or inverted: LOW must be below HIGH. Received: {self.low},{self.high}"
            )
        if self.sampling == "log" and self.low <= 0:
            raise ValueError(
                f"{self.name} is searched on a log scale: LOW must be > 0. Received: {self.low},{self.high}"
            )
        if self.low < 0:
            raise ValueError(f"{self.name} range must be >= 0. Received: {self.low},{self.high}")
        if self.name == "dropout" and self.high >= 1.0:
            raise ValueError(f"dropout range must stay below 1. Received: {self.low},{self.high}")

    def to_dict(self):
        return dataclasses.asdict(self)


DEFAULT_RANGES = {
    "dropout": Range("dropout", 0.0, 0.6),
    "l2": Range("l2", 1e-6, 1e-2, "log"),
    "learning_rate": Range("learning_rate", 1e-4, 1e-2, "log"),
}


def search_space(config, ranges=None, learning_rate=False, hold=()):
    """The ranges to search for a rung: its regularizers, and the learning rate if asked.

    Args:
        config: the rung's `kcifar.config.Config`.
        ranges: dict name -> Range set by the user; a range for a regularizer
            the rung does not use is an error (the rung's model has no such knob).
        learning_rate: also search the learning rate.
        hold: regularizers kept at the rung's own value, not searched (a
            study that varies lambda alone holds dropout at the lecture's 0.3).

    Returns:
        A tuple of `Range`, regularizers first.
    """
    ranges = dict(ranges or {})
    used = [name for name in REGULARIZERS if getattr(config, name)]
    if not used:
        raise ValueError(
            f"rung {config.name} has no dropout and no L2 penalty to tune; "
            "use trick3 (dropout) or trick4..trick9 (dropout and L2)"
        )
    for name in REGULARIZERS:
        if name in ranges and name not in used:
            raise ValueError(f"rung {config.name} has no {name} to tune; drop its range or pick a later rung")
    for name in hold:
        if name not in used:
            raise ValueError(f"rung {config.name} has no {name} to hold; hold one of {', '.join(used)}. "
                             f"Received: hold {name}")
        if name in ranges:
            raise ValueError(f"{name} is held at the rung's {getattr(config, name):g}: drop its range or the hold")
    if "learning_rate" in ranges:
        learning_rate = True
    names = [name for name in used if name not in hold] + (["learning_rate"] if learning_rate else [])
    if not names:
        raise ValueError(f"nothing left to search: every regularizer of {config.name} is held")
    return tuple(ranges.get(name, DEFAULT_RANGES[name]) for name in names)
