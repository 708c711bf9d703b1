"""The step beyond the ladder: a backbone pretrained on ImageNet, fine-tuned.

The lecture's last slide adds one tool after the five tricks: "(*) Use
Pretrained Models". Here that is EfficientNetV2B0 from `keras.applications`,
its ImageNet weights, rung 5's augmentation block in front and a new
classification head. The model takes raw 32x32 images like every rung's:
resizing and the backbone's own preprocessing (`include_preprocessing`) are
Keras layers inside it, so a saved `model.keras` loads with plain Keras.

Training comes in two phases (Keras's transfer-learning guide): the head
alone on a frozen backbone, then the top of the backbone unfrozen at a lower
rate. The backbone is called with `training=False`, so its batch
normalization keeps ImageNet's moving statistics in both phases: a fine-tune
on 45000 small upsampled images would otherwise overwrite them in the first
steps.

Why EfficientNetV2B0: of the `keras.applications` backbones with
`include_preprocessing` it is the one with ImageNet accuracy near ResNet50's
(78.7% top-1 against 76.0%) at about a sixth of its work (0.72 against 4.1
GFLOPs a 224x224 image), so a fine-tune fits a free GPU's session;
MobileNetV3Small (0.06 GFLOPs, 67.7%) is cheaper but transfers worse, and
ConvNeXtTiny (4.5 GFLOPs, 82.1%) costs six times as much.
"""

import dataclasses
import os
import socket

import keras
import numpy as np
from keras import layers

from kcifar.augment import augmentation_layers
from kcifar.config import Config
from kcifar.data.readers import IMAGE_SHAPE, NUM_CLASSES

# The backbone, and the file `keras.applications` keeps its ImageNet weights
# in (without the top) under ~/.keras/models.
BACKBONE = keras.applications.EfficientNetV2B0
WEIGHTS_FILE = "efficientnetv2-b0_notop.h5"
WEIGHTS_HOST = "storage.googleapis.com"


class WeightsError(Exception):
    """Pretrained weights that cannot be had or read; the message is one line."""


@dataclasses.dataclass(frozen=True)
class PretrainedConfig(Config):
    """Rung 5's config (augmentation, batch size) and the fine-tune's own fields.

    The ladder's network fields (widths, dropout, L2, ...) are not used: the
    backbone replaces that network.
    """

    image_size: int = 224  # the backbone's own: its ImageNet features are of objects that size
    head_dropout: float = 0.2  # before the new head, as keras.applications' own top
    head_epochs: int = 2  # the head alone, on the frozen backbone: it converges within a couple
    fine_tune_layers: int = 60  # the backbone's last layers unfrozen in phase 2 (of 270), its top blocks
    fine_tune_learning_rate: float = 1e-4  # a tenth of the head's: small steps keep ImageNet's features

    def __post_init__(self):
        super().__post_init__()
        checks = [
            ("image_size", self.image_size >= 32, ">= 32 (the backbone's least)"),
            ("head_dropout", 0.0 <= self.head_dropout < 1.0, "in [0, 1)"),
            ("head_epochs", 0 <= self.head_epochs <= self.epochs, f"in [0, epochs={self.epochs}]"),
            ("fine_tune_layers", self.fine_tune_layers >= 0, ">= 0"),
            ("fine_tune_learning_rate", self.fine_tune_learning_rate > 0.0, "> 0"),
        ]
        for field, ok, want in checks:
            if not ok:
                raise ValueError(f"{field} must be {want}. Received: {field}={getattr(self, field)!r}")


def keras_models_dir():
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "models")


def resolve_weights(weights, timeout=5.0):
    """What to pass to the backbone's `weights`: None, "imagenet" or a file.

    Args:
        weights: "imagenet" (Keras's cached file, downloaded when missing),
            "none" (random initialization) or the path of a weights file in
            the legacy .h5 format Keras keeps in ~/.keras/models.

    Raises:
        WeightsError: the file is missing, or ImageNet's cannot be downloaded.
    """
    if weights == "none":
        return None
    if weights != "imagenet":
        if not os.path.isfile(weights):
            raise WeightsError(f"no weights file at {weights}; --weights takes imagenet, none or a file's path")
        return weights
    cached = os.path.join(keras_models_dir(), WEIGHTS_FILE)
    if os.path.exists(cached):
        return "imagenet"  # Keras finds it there and checks its hash
    try:
        socket.create_connection((WEIGHTS_HOST, 443), timeout=timeout).close()
    except OSError as e:
        raise WeightsError(
            f"ImageNet weights are not in the Keras cache ({cached}) and cannot be downloaded ({e}); "
            f"copy {WEIGHTS_FILE} there from a machine with internet, or pass --weights PATH, "
            "or --weights none to train from scratch"
        )
    return "imagenet"


def build_backbone(config, weights):
    """The backbone without its top, averaged to one vector an image.

    Args:
        config: a `PretrainedConfig` (its image size).
        weights: None, "imagenet" or a weights file (`resolve_weights`).
    """
    try:
        return BACKBONE(include_top=False, weights=weights, input_shape=(config.image_size, config.image_size, 3),
                        pooling="avg", include_preprocessing=True)
    except (OSError, ValueError) as e:
        if weights in (None, "imagenet"):
            raise
        raise WeightsError(f"cannot load {weights} into {BACKBONE.__name__}: {str(e).splitlines()[0]}")
    except Exception as e:  # Keras's get_file raises a bare Exception when a download fails
        if weights != "imagenet":
            raise
        raise WeightsError(f"downloading ImageNet weights failed ({str(e).splitlines()[0]}); "
                           "pass --weights PATH or --weights none")


def build_pretrained_model(config, backbone, seed=None):
    """The model that trains: augmentation, then the network (resize,
    backbone in inference mode, dropout, new head).

    The network is a nested model, as a rung's is (`models.inference_network`
    finds it); it is what is saved.

    Args:
        config: a `PretrainedConfig`.
        backbone: from `build_backbone`.
        seed: seeds the augmentation draws and the head's dropout.
    """
    seeds = None if seed is None else np.random.default_rng(seed).integers(2**31, size=3).tolist()
    inputs = keras.Input(shape=IMAGE_SHAPE, name="image")
    # float32: the backbone's Rescaling and Normalization take 0..255 values.
    x = layers.Resizing(config.image_size, config.image_size, dtype="float32", name="resize")(inputs)
    x = backbone(x, training=False)  # batch normalization with ImageNet's statistics, in both phases
    x = layers.Dropout(config.head_dropout, seed=seeds and seeds[0], name="head_dropout")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32", name="probs")(x)
    network = keras.Model(inputs, outputs, name=config.name)

    block = augmentation_layers(config, seeds and seeds[1:])
    if not block:
        raise ValueError(f"the pretrained step keeps an augmentation block. Received: config {config.name!r} "
                         "has none")
    image = keras.Input(shape=IMAGE_SHAPE, name="image")
    x = image
    for layer in block:
        x = layer(x)
    return keras.Model(image, network(x), name=f"{config.name}_training")


def set_phase(backbone, config, phase):
    """Freezes the backbone (phase 1, the head alone) or unfreezes its last
    `fine_tune_layers` layers but their batch normalization (phase 2).
    Recompile the model afterwards: trainability is read at compile time."""
    if phase not in (1, 2):
        raise ValueError(f"phase must be 1 or 2. Received: phase={phase!r}")
    backbone.trainable = phase == 2
    if phase == 2:
        top = backbone.layers[-config.fine_tune_layers:] if config.fine_tune_layers else []
        for layer in backbone.layers:
            layer.trainable = layer in top and not isinstance(layer, layers.BatchNormalization)
