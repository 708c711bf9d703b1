"""Rung 0, the baseline: four conv stages, dense 512, Adam 1e-3; it overfits."""

from kcifar.cli import run_rung
from kcifar.config import Config

CONFIG = Config()
LECTURE = 0.78  # test accuracy the lecture reports

if __name__ == "__main__":
    run_rung(CONFIG, description=__doc__)
