"""A rung's own model as a keras-tuner HyperModel.

The searched values (see `kcifar.tune.space`) replace the rung's dropout
rate, L2 lambda and learning rate; everything else is the rung's CONFIG,
built by the same `compile_model` as the experiments, so the best values drop
straight into `python -m kcifar.experiments.<rung> --config best_config.json`.
"""

import keras_tuner

from kcifar.pipeline import steps_per_epoch
from kcifar.train import compile_model, fit_rung


def declare(hp, r):
    """The trial's value of range `r` (declared in `hp` on first use)."""
    return hp.Float(r.name, r.low, r.high, sampling=r.sampling)


class RungHyperModel(keras_tuner.HyperModel):
    """Builds and trains the rung's model with the trial's values.

    Args:
        config: the rung's Config (epochs and batch size as searched).
        data: a `kcifar.data.Cifar10`; only its train and validation splits
            are used.
        space: the `kcifar.tune.space.Range`s to search.
    """

    def __init__(self, config, data, space):
        super().__init__(name=f"{config.name}_hypermodel")
        self.config, self.data, self.space = config, data, tuple(space)
        self.steps_per_epoch = steps_per_epoch(len(data.y_train), config.batch_size)

    def declare_hyperparameters(self, hp):
        for r in self.space:
            declare(hp, r)

    def config_for(self, hp):
        """The rung's Config with the trial's values."""
        return self.config.replace(**{r.name: float(declare(hp, r)) for r in self.space})

    def build(self, hp, seed=None):
        """The rung's compiled model; `seed` seeds its dropout masks (see
        `kcifar.models.build_model`), so a resumed trial sees the same ones."""
        return compile_model(self.config_for(hp), self.data, self.steps_per_epoch, seed)

    def fit(self, hp, model, *, seed, callbacks=(), initial_epoch=0, epochs=None, verbose=0):
        """Trains as a run does (`kcifar.train.fit_rung`), validating on the
        split carved from the training set."""
        return fit_rung(model, self.config_for(hp), self.data, seed=seed, callbacks=callbacks,
                        initial_epoch=initial_epoch, epochs=epochs, verbose=verbose)
