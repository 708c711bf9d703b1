"""Training batches: shuffled and sliced, reproducible.

The order of every epoch is keyed by (seed, epoch), so a resumed run sees
exactly the batches an uninterrupted one would, whatever was fetched before
the interruption. Images stay uint8 until the model casts them; the
augmentation is the model's own block of layers (kcifar.augment), so nothing
here depends on the rung.
"""

import math

import keras
import numpy as np


def steps_per_epoch(images, batch_size):
    """Batches in an epoch of `images` training images: the last may be
    smaller. The learning-rate schedule counts epochs in these steps."""
    return math.ceil(images / batch_size)


class TrainBatches(keras.utils.PyDataset):
    """Shuffled training batches of (uint8 images, labels).

    Args:
        x: uint8 images (N, 32, 32, 3).
        y: int labels (N,).
        batch_size: images per batch; the last batch may be smaller.
        seed: the run's seed.
    """

    def __init__(self, x, y, batch_size, seed):
        # One worker, no processes: batches are made in order, on demand.
        super().__init__(workers=1, use_multiprocessing=False)
        self.x, self.y = x, y
        self.batch_size, self.seed = batch_size, seed
        self.epoch = 0  # set by EpochSync before each epoch
        self._order_epoch, self._order = None, None

    def __len__(self):
        return steps_per_epoch(len(self.x), self.batch_size)

    def order(self):
        if self._order_epoch != self.epoch:
            rng = np.random.default_rng([self.seed, self.epoch])
            self._order, self._order_epoch = rng.permutation(len(self.x)), self.epoch
        return self._order

    def __getitem__(self, index):
        picked = self.order()[index * self.batch_size : (index + 1) * self.batch_size]
        return self.x[picked], self.y[picked]


class EpochSync(keras.callbacks.Callback):
    """Tells the batches which epoch is starting (also after a resume)."""

    def __init__(self, batches):
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.epoch = epoch
