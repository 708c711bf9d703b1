"""The step beyond the ladder: a backbone pretrained on ImageNet, fine-tuned.

The lecture's last slide adds one tool after the five tricks: "(*) Use
Pretrained Models". Here that is EfficientNetV2B0 from `keras.applications`,
its ImageNet weights, rung 5's augmentation block in front and a new
classification head. The model takes raw 32x32 images like every rung's:
resizing and the backbone's own preprocessing (`include_preprocessing`) are
Keras layers inside it, so a saved `model.keras` loads with plain Keras.

Training comes in two phases (Keras's transfer-learning guide): the head
alone on a frozen backbone, then the top of the backbone unfrozen at a lower
rate; `train` runs them, each through a rung's fit and run folder. The
backbone is called with `training=False`, so its batch normalization keeps
ImageNet's moving statistics in both phases: a fine-tune on 45000 small
upsampled images would otherwise overwrite them in the first steps.

Why EfficientNetV2B0: of the `keras.applications` backbones with
`include_preprocessing` it is the one with ImageNet accuracy near ResNet50's
(78.7% top-1 against 76.0%) at about a sixth of its work (0.72 against 4.1
billion multiply-adds a 224x224 image, as their papers count), so a
fine-tune fits a free GPU's time limit; MobileNetV3Small (0.06 billion,
67.7%) is cheaper but transfers worse, and ConvNeXtTiny (4.5 billion, 82.1%)
costs six times as much.
"""

import os
import socket
import urllib.request

import keras
from keras import layers

from kcifar import augment
from kcifar.augment import augments
from kcifar.data.readers import IMAGE_SHAPE, NUM_CLASSES
from kcifar.models import layer_seeds, training_model
from kcifar.run_folder import RunError, kept_run
from kcifar.settings import RunSettings
from kcifar.train import compile_for_training, running

# The backbone, and the file `keras.applications` keeps its ImageNet weights
# in (without the top) under ~/.keras/models.
BACKBONE = keras.applications.EfficientNetV2B0
WEIGHTS_FILE = "efficientnetv2-b0_notop.h5"
WEIGHTS_HOST = "storage.googleapis.com"


class WeightsError(RunError):
    """Pretrained weights that cannot be had or read; the message is one line."""


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
    if urllib.request.getproxies().get("https"):
        return "imagenet"  # reached through a proxy, which a direct probe cannot tell; build_backbone says if not
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
    except Exception as e:  # Keras's get_file raises a bare Exception when a download fails
        first = (str(e).splitlines() or [type(e).__name__])[0]
        if weights == "imagenet":  # a download cut off, timed out, or failing its hash check
            raise WeightsError(f"getting ImageNet weights failed ({first}); pass --weights PATH or --weights none")
        if weights is not None and isinstance(e, (OSError, ValueError)):
            raise WeightsError(f"cannot load {weights} into {BACKBONE.__name__}: {first}")
        raise


def build_pretrained_model(config, backbone, seed=None):
    """The model that trains: augmentation, then the network (resize,
    backbone in inference mode, dropout, new head).

    The network is what is saved (`models.inference_network` finds it
    behind the block, as in a rung's model).

    Args:
        config: a `PretrainedConfig`.
        backbone: from `build_backbone`.
        seed: seeds the augmentation draws and the head's dropout.
    """
    if not augments(config):
        raise ValueError(f"the pretrained step keeps an augmentation block. Received: config {config.name!r} "
                         "has none")
    head_seeds, augment_seeds = layer_seeds(seed, 1, augment.SEEDS)
    inputs = keras.Input(shape=IMAGE_SHAPE, name="image")
    # float32: the backbone's Rescaling and Normalization take 0..255 values.
    x = layers.Resizing(config.image_size, config.image_size, dtype="float32", name="resize")(inputs)
    x = backbone(x, training=False)  # batch normalization with ImageNet's statistics, in both phases
    x = layers.Dropout(config.head_dropout, seed=head_seeds and head_seeds[0], name="head_dropout")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32", name="probs")(x)
    return training_model(keras.Model(inputs, outputs, name=config.name), config, augment_seeds)


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


def phase_ends(config):
    """The epoch each phase ends after: the head's `head_epochs` (or the
    whole run when it is shorter), then the run's last."""
    return [min(config.head_epochs, config.epochs), config.epochs]


def compile_phase(model, backbone, config, phase, jit_compile="auto"):
    """`model` set up for `phase` (`set_phase`) and compiled with a new Adam
    at the phase's rate (`train.compile_for_training`): the config's
    learning rate for the head, `fine_tune_learning_rate` for the top of the
    backbone."""
    set_phase(backbone, config, phase)
    rate = config.learning_rate if phase == 1 else config.fine_tune_learning_rate
    return compile_for_training(model, rate, jit_compile)


def train(config, data, run_dir, settings=None, weights=None):
    """Trains the step into `run_dir` in its two phases, as `train.train`
    trains a rung (the same run folder, fit, test and metrics), then tests it
    once; returns the metrics dict.

    A resume restores the checkpoint into the model compiled for the phase it
    was saved in, and goes on from there: a new optimizer only where a new
    phase begins, as in an uninterrupted run.

    Args:
        config: a `PretrainedConfig`.
        data, run_dir, settings: as `train.train`'s.
        weights: the backbone's starting weights, from `resolve_weights`:
            None (random), "imagenet" or a file.
    """
    settings = settings or RunSettings()
    kept = kept_run(run_dir, settings.resume, settings.overwrite)
    if kept is not None:
        return kept
    # Recorded in settings.json (a resume must start from the same), without
    # the folder of a weights file: no path of the machine that ran it.
    recorded = {"weights": "none" if weights is None else os.path.basename(weights)}
    with running(config, data, run_dir, settings, **recorded) as run:
        backbone = build_backbone(config, weights)
        model = build_pretrained_model(config, backbone, settings.seed)
        phase = run.saved_phase()
        compile_phase(model, backbone, config, phase)
        run.restore(model)
        for number, end in enumerate(phase_ends(config), start=1):
            if run.done(end):
                continue
            if number != phase:  # new trainable layers, a new optimizer
                phase = number
                compile_phase(model, backbone, config, phase)
            run.fit_epochs(end, phase)
        return run.finish()
