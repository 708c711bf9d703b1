"""One frozen config for every rung of the ladder (and one for the step beyond it).

The defaults are rung 0, the lecture's baseline; each rung module states only
what it changes (`Config.replace`, which refuses an unknown field), so two
neighbouring rungs differ by one trick. Every default carries its reason.
"""

import dataclasses
import json

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


@dataclasses.dataclass(frozen=True)
class Config:
    name: str = "baseline"
    rung: int = 0
    change: str = "baseline: four conv stages, dense 512, Adam; overfits"

    # Network (lecture: feature maps 32x16x16, 64x8x8, 128x4x4, 256x2x2).
    widths: tuple = (32, 64, 128, 256)
    convs_per_stage: int = 2  # our reading of the lecture's figure (open)
    dense_units: int = 512  # lecture
    residual: bool = False  # rung 8: a residual addition around each stage's convolutions
    # How a residual stage halves the resolution. "pool": max pooling, as in
    # rung 7, so rung 8 keeps rung 7's convolutions and pooling and adds the
    # skip connections (the addition before the stage's last ReLU, and a 1x1
    # shortcut convolution where the width changes). "stride": a strided first 3x3 convolution instead
    # (the other reading of the lecture's legend; a quarter of the work).
    downsample: str = "pool"

    # Regularization, each off at the baseline.
    input_noise: float = 0.0  # GaussianNoise stddev, in normalized units
    batch_norm: bool = False
    bn_epsilon: float = 1e-5  # lecture's epsilon; Keras's default is 1e-3
    # Weight of the old value in BN's running statistics: PyTorch's
    # BatchNorm2d default (its momentum 0.1 is this 0.9), the lecture's
    # framework; Keras's 0.99 leaves a short run evaluating with statistics
    # still near their initial values.
    bn_momentum: float = 0.9
    dropout: float = 0.0  # rate after each of the four stages
    l2: float = 0.0  # lambda of the L2 penalty on convolution kernels

    # Augmentation, training only.
    flip: bool = False  # random horizontal flip (Keras RandomFlip, in the model)
    crop_scale: float = 1.0  # crop-and-resize: window side drawn in [crop_scale, crop_max_scale] x 32
    # Above 1 the window may be larger than the image, which then shrinks:
    # training objects need not all be larger than the test's.
    crop_max_scale: float = 1.0
    # Pad by this many black pixels and crop back at a random offset, per
    # image: a translation, torchvision's RandomCrop(32, padding=N).
    translate: int = 0
    rotation: float = 0.0  # random rotation, degrees either way

    # Optimization (lecture: Adam 1e-3, cross-entropy, He init).
    learning_rate: float = 1e-3
    lr_decay: float = 1.0  # gamma of lr = lr0 * gamma^epoch; 1.0 is constant
    epochs: int = 50  # the same on every rung, so rungs differ by their trick alone
    batch_size: int = 128  # common CIFAR choice; the lecture does not say

    def __post_init__(self):
        for field, ok, want in self.checks():
            if not ok:
                raise ValueError(f"{field} must be {want}. Received: {field}={getattr(self, field)!r}")
        object.__setattr__(self, "widths", tuple(self.widths))

    def checks(self):
        """(field, whether its value is allowed, what is allowed) for every
        field with a range."""
        return [
            ("dropout", 0.0 <= self.dropout < 1.0, "in [0, 1)"),
            ("l2", self.l2 >= 0.0, ">= 0"),
            ("input_noise", 0.0 <= self.input_noise <= 1.0, "in [0, 1]"),  # Keras's GaussianNoise allows no more
            ("crop_scale", 0.0 < self.crop_scale <= 1.0, "in (0, 1]"),
            ("crop_max_scale", 1.0 <= self.crop_max_scale <= 2.0, "in [1, 2]"),
            ("translate", isinstance(self.translate, int) and 0 <= self.translate < 16,
             "a whole number of pixels in [0, 16)"),
            ("rotation", 0.0 <= self.rotation < 180.0, "in [0, 180)"),
            ("learning_rate", self.learning_rate > 0.0, "> 0"),
            ("lr_decay", 0.0 < self.lr_decay <= 1.0, "in (0, 1]"),
            ("epochs", self.epochs >= 1, ">= 1"),
            ("batch_size", self.batch_size >= 1, ">= 1"),
            ("widths", len(self.widths) == 4 and min(self.widths) >= 1, "four positive widths"),
            ("convs_per_stage", self.convs_per_stage >= 1, ">= 1"),
            ("dense_units", self.dense_units >= 1, ">= 1"),
            ("bn_epsilon", self.bn_epsilon > 0.0, "> 0"),
            ("downsample", self.downsample in ("pool", "stride"), '"pool" or "stride"'),
            ("bn_momentum", 0.0 <= self.bn_momentum < 1.0, "in [0, 1)"),
        ]

    def replace(self, **changes):
        """A copy with `changes`; unknown fields raise ValueError."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown config field(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        return cls().replace(**{k: tuple(v) if k == "widths" else v for k, v in values.items()})

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


@dataclasses.dataclass(frozen=True)
class PretrainedConfig(Config):
    """The step beyond the ladder (`kcifar.pretrained`): a rung's config,
    whose augmentation, batch size and learning rate it uses, and the
    fine-tune's own fields. The ladder's network fields (widths, dropout,
    L2, ...) are not used: the backbone replaces that network.
    """

    image_size: int = 224  # the backbone's own: its ImageNet features are of objects that size
    head_dropout: float = 0.2  # before the new head, as keras.applications' own top
    # The head alone, on the frozen backbone: it converges within a couple.
    # Phase 2 takes the rest of `epochs` (none when --epochs is smaller).
    head_epochs: int = 2
    fine_tune_layers: int = 60  # the backbone's last layers unfrozen in phase 2 (of 270), its top blocks
    fine_tune_learning_rate: float = 1e-4  # a tenth of the head's: small steps keep ImageNet's features

    def checks(self):
        return super().checks() + [
            ("image_size", self.image_size >= 32, ">= 32 (the backbone's least)"),
            ("head_dropout", 0.0 <= self.head_dropout < 1.0, "in [0, 1)"),
            ("head_epochs", self.head_epochs >= 0, ">= 0 (a shorter run is all head)"),
            ("fine_tune_layers", self.fine_tune_layers >= 0, ">= 0"),
            ("fine_tune_learning_rate", self.fine_tune_learning_rate > 0.0, "> 0"),
        ]
