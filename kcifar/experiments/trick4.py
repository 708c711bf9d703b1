"""Rung 4: L2 penalty on the convolution kernels."""

from kcifar.cli import run_rung
from kcifar.experiments import trick3

CONFIG = trick3.CONFIG.replace(
    name="trick4",
    rung=4,
    change="+ L2 on conv kernels (lambda 5e-6)",
    # The lecture's code: Adam(weight_decay=1e-5), whose gradient term 1e-5 x w
    # is L2(5e-6)'s (docs/lecture.md, "The lecture's code").
    l2=5e-6,
)
LECTURE = 0.875  # test accuracy the lecture reports

if __name__ == "__main__":
    run_rung(CONFIG, description=__doc__)
