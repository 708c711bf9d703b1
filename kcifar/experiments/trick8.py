"""Rung 8: a residual connection around each stage's convolutions, added before
its last ReLU, with a 1x1 convolution on the shortcut where the width changes;
all else as rung 7."""

from kcifar.cli import run_rung
from kcifar.experiments import trick7

CONFIG = trick7.CONFIG.replace(
    name="trick8",
    rung=8,
    change="+ skip connections (1x1 projection shortcut)",
    residual=True,
)
LECTURE = 0.93  # test accuracy the lecture reports

if __name__ == "__main__":
    run_rung(CONFIG, description=__doc__)
