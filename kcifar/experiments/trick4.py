"""Rung 4: L2 penalty on the convolution kernels."""

from kcifar.cli import run_rung
from kcifar.experiments import trick3

CONFIG = trick3.CONFIG.replace(
    name="trick4",
    rung=4,
    change="+ L2 on conv kernels (lambda 1e-4)",
    l2=1e-4,  # open: a penalty near 0.2 at init, below the loss; kcifar.tune searches it
)
LECTURE = 0.875  # test accuracy the lecture reports

if __name__ == "__main__":
    run_rung(CONFIG, description=__doc__)
