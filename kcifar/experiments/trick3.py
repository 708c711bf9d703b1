"""Rung 3: dropout 0.3 after each of the four stages."""

from kcifar.cli import run_rung
from kcifar.experiments import trick2

CONFIG = trick2.CONFIG.replace(
    name="trick3",
    rung=3,
    change="+ dropout 0.3 after each stage",
    dropout=0.3,  # lecture
)
LECTURE = 0.866  # test accuracy the lecture reports

if __name__ == "__main__":
    run_rung(CONFIG, description=__doc__)
