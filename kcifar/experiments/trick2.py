"""Rung 2: batch normalization after every convolution (no conv bias)."""

from kcifar.cli import run_rung
from kcifar.experiments import trick1

CONFIG = trick1.CONFIG.replace(
    name="trick2",
    rung=2,
    change="+ batch normalization (eps 1e-5)",
    batch_norm=True,
)
LECTURE = 0.84  # test accuracy the lecture reports

if __name__ == "__main__":
    run_rung(CONFIG, description=__doc__)
