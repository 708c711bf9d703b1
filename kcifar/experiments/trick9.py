"""Rung 9: the residual network, twice as wide again (128 ... 1024)."""

from kcifar.cli import run_rung
from kcifar.experiments import trick8

CONFIG = trick8.CONFIG.replace(
    name="trick9",
    rung=9,
    change="+ double width again (128-1024)",
    widths=(128, 256, 512, 1024),  # lecture
)
LECTURE = 0.945  # test accuracy the lecture reports

if __name__ == "__main__":
    run_rung(CONFIG, description=__doc__)
