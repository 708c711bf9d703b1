"""Rung 1: Gaussian noise on the training inputs (learn hard)."""

from kcifar.cli import run_rung
from kcifar.experiments import baseline

CONFIG = baseline.CONFIG.replace(
    name="trick1",
    rung=1,
    change="+ Gaussian noise on the inputs (stddev 0.1)",
    input_noise=0.1,  # open: in normalized units ~6 grey levels, noisy yet recognizable
)
LECTURE = 0.80  # test accuracy the lecture reports

if __name__ == "__main__":
    run_rung(CONFIG, description=__doc__)
