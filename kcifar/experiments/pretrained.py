"""Beyond the ladder: an ImageNet backbone fine-tuned (the lecture's "(*) Use Pretrained Models")."""

import functools
import os

from kcifar.cli import run_rung
from kcifar.command import UsageError
from kcifar.config import PretrainedConfig
from kcifar.experiments import trick5

CONFIG = PretrainedConfig.from_dict(trick5.CONFIG.to_dict()).replace(
    name="pretrained",
    rung=10,
    change="EfficientNetV2B0 from ImageNet, rung 5's augmentation, a new head; fine-tuned in two phases",
    epochs=10,  # 2 for the head, 8 for the top of the backbone: fine-tuning converges in a few epochs
)
LECTURE = None  # the lecture names the tool and reports no figure


def weights_flag(parser):
    """Declares the step's own flag, --weights."""
    parser.add_argument("--weights", default="imagenet", type=weights_source, metavar="imagenet|none|PATH",
                        help="the backbone's starting weights: ImageNet's (Keras's cached file, downloaded when "
                             "missing), none (random), or a file in the .h5 format Keras keeps in "
                             "~/.keras/models (default imagenet)")


def weights_source(text):
    """--weights as typed; UsageError for a file that is not there, checked
    with the other flags, before Keras loads."""
    if text not in ("imagenet", "none") and not os.path.isfile(text):
        raise UsageError(f"--weights must be imagenet, none or a weights file. Received: --weights {text}")
    return text


def trainer(args):
    """The step's training from the weights --weights names, had before the
    data loads: a run that cannot get them ends first (RunError, one line)."""
    from kcifar import pretrained

    return functools.partial(pretrained.train, weights=pretrained.resolve_weights(args.weights))


def main(argv=None):
    """The step's command: a rung's, with --weights."""
    return run_rung(CONFIG, argv, __doc__, flags=weights_flag, trainer=trainer)


if __name__ == "__main__":
    main()
