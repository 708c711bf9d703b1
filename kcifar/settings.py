"""How one run is run, beside what it trains: `RunSettings`.

A rung's `Config` says what trains; a run's settings say how one run of it
goes: its seed, precision and budget, what it does with a folder that
already holds a run, the backends' determinism switches, its progress bars,
TensorBoard logs and time limit. The rung command makes them from its flags,
and `kcifar.train.train` takes them whole; they are checked here, once,
whoever makes them. Nothing here imports Keras but the check that TensorBoard
can write, for a run that asks for its logs.
"""

import dataclasses

from kcifar.budgets import BUDGETS, CUSTOM, FULL
from kcifar.config import PRECISIONS


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """How one run is run; every value checked when made.

    Args:
        seed: seeds weights, batches, augmentation, noise and dropout.
        precision: "float32", "mixed_bfloat16" or "mixed_float16".
        budget: the name of the `kcifar.budgets` budget that made the
            config and the data, or "custom" for the full budget with other
            epochs or training images (recorded, and compared on resume).
        resume: continue the run the folder holds from its last finished
            epoch; a complete run is kept as it is.
        overwrite: delete the folder's run files and start afresh (over
            `resume`).
        deterministic: the backends' determinism switches (slower).
        verbose: Keras's progress bar setting: 0 none, 1 a bar, 2 a line
            an epoch.
        tensorboard: a folder for TensorBoard's event files (Keras's
            callback, per-epoch scalars), a subfolder per run; None for
            none. Needs TensorFlow whichever backend trains.
        time_limit: seconds from `started` within which the run, its test
            evaluation included, must end; None for none. A run it stops
            keeps its checkpoint for a resume, which may use another limit.
        started: when the time limit's clock started, a `time.time()`
            value; None: when the run starts.

    Raises:
        ValueError: a value out of range, in one line.
        ImportError: TensorBoard logs without TensorFlow, in one line.
    """

    seed: int = 0
    precision: str = "float32"
    budget: str = FULL
    resume: bool = False
    overwrite: bool = False
    deterministic: bool = False
    verbose: int = 1
    tensorboard: str | None = None
    time_limit: float | None = None
    started: float | None = None

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}. "
                             f"Received: --precision {self.precision}")
        if self.budget not in (*BUDGETS, CUSTOM):
            raise ValueError(f"--budget must be one of {', '.join((*BUDGETS, CUSTOM))}. "
                             f"Received: --budget {self.budget}")
        check_time_limit(self.time_limit)
        if self.tensorboard is not None:
            from kcifar import tensorboard  # imports Keras: only for a run that writes logs

            tensorboard.check()


def check_time_limit(seconds):
    """ValueError (one line) unless `seconds` is None or positive."""
    if seconds is not None and not seconds > 0:  # NaN too
        raise ValueError(f"--time-limit must be a positive number of seconds. Received: --time-limit {seconds:g}")
