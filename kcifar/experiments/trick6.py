"""Rung 6: the learning rate decays exponentially, once per epoch."""

from kcifar.cli import run_rung
from kcifar.experiments import trick5

CONFIG = trick5.CONFIG.replace(
    name="trick6",
    rung=6,
    change="+ exponential LR decay (gamma 0.95 per epoch)",
    lr_decay=0.95,  # open: lr falls ~12x over 50 epochs, to ~8e-5
)
LECTURE = 0.906  # test accuracy the lecture reports

if __name__ == "__main__":
    run_rung(CONFIG, description=__doc__)
