"""The ladder: one module per rung, each the rung before it plus one trick.

    python -m kcifar.experiments            # list the rungs
    python -m kcifar.experiments.trick4     # train one rung
    python -m kcifar.ladder --run baseline..trick4   # a range, resumable

Each module holds CONFIG (a `kcifar.config.Config`), LECTURE (the test
accuracy the lecture reports for the rung) and runs itself under __main__.
A value commented "lecture" is the lecture's; one commented "open" is a
choice the lecture leaves open, with ours and its reason (docs/lecture.md
lists them).
"""

import importlib

# Ladder order. A new rung is a module here, the rung before it plus one
# change, and its name in this list (docs/layout.md, "Adding a rung").
RUNGS = ("baseline", "trick1", "trick2", "trick3", "trick4", "trick5", "trick6", "trick7", "trick8", "trick9")
# Steps beyond the ladder: run like a rung, never part of its range or charts.
BEYOND = ("pretrained",)


def rung(name):
    """The module of a rung by name; ValueError for an unknown one."""
    if name not in RUNGS:
        raise ValueError(f"unknown rung {name!r}; one of {', '.join(RUNGS)}")
    return importlib.import_module(f"kcifar.experiments.{name}")


def step(name):
    """The module of a rung or of a step beyond the ladder, by name;
    ValueError for an unknown one."""
    if name not in RUNGS + BEYOND:
        raise ValueError(f"unknown step {name!r}; one of {', '.join(RUNGS + BEYOND)}")
    return importlib.import_module(f"kcifar.experiments.{name}")
