"""Beyond the ladder: an ImageNet backbone fine-tuned (the lecture's "(*) Use Pretrained Models")."""

from kcifar.cli import run_rung
from kcifar.experiments import trick5
from kcifar.config import PretrainedConfig

CONFIG = PretrainedConfig.from_dict(trick5.CONFIG.to_dict()).replace(
    name="pretrained",
    rung=10,
    change="EfficientNetV2B0 from ImageNet, rung 5's augmentation, a new head; fine-tuned in two phases",
    epochs=10,  # 2 for the head, 8 for the top of the backbone: fine-tuning converges in a few epochs
)
LECTURE = None  # the lecture names the tool and reports no figure

if __name__ == "__main__":
    run_rung(CONFIG, description=__doc__)
