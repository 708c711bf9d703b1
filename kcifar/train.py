"""Training one rung: how its model is compiled (`compile_model`) and
trained (`fit_rung`), and `train`, which runs it into a run folder.

A rung trains in one phase. The step beyond the ladder (`kcifar.pretrained`)
trains in two, each with its own trainable layers and optimizer: its
`FineTune` says how. The folder itself (resume checks, the checkpoint after
every epoch, the time limit, metrics.json) is `kcifar.run_folder`'s.
"""

import math
import os
import time

import keras
import numpy as np

from kcifar import files, runtime
from kcifar import tensorboard as tensorboard_logs
from kcifar.budgets import FULL
from kcifar.models import build_model, inference_network
from kcifar.pipeline import EpochSync, TrainBatches
from kcifar.results import CLEAN_ACCURACY, METRICS_FILE, score_predictions, state
from kcifar.run_folder import (BestEpoch, Recorder, Stopped, TimeLimit, clear_partial, finish_run, metrics_record,
                               prepare_run_dir, restore_checkpoint, saved_phase, settings_record, stop_partial)


def compile_for_training(model, learning_rate, jit_compile="auto"):
    """Compiles `model` as every kcifar run trains: Adam, cross-entropy on
    the class indices, accuracy. The one compile of rungs, tuner trials and
    each phase of the pretrained step.

    Args:
        model: a built Keras model.
        learning_rate: a float or a Keras learning-rate schedule.
        jit_compile: Keras's; "auto" means XLA on JAX, XLA on TensorFlow
            only with a GPU, eager on torch (`python -m kcifar.bench --jit`
            measures the other choice on CPU).
    """
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    return model


def learning_rate(config, steps_per_epoch):
    """The rung's learning rate: constant, or from rung 6 on decaying once
    per epoch, lr0 * gamma^epoch (a staircase over the epoch's steps, so
    that every batch of an epoch takes the same rate, as the lecture's
    per-epoch schedule does)."""
    if config.lr_decay == 1.0:
        return config.learning_rate
    return keras.optimizers.schedules.ExponentialDecay(
        config.learning_rate, decay_steps=steps_per_epoch, decay_rate=config.lr_decay, staircase=True
    )


def compile_model(config, data, steps_per_epoch, seed=None, jit_compile="auto"):
    """Builds the rung's model (`build_model`, normalized with `data`'s
    training statistics) and compiles it with its `learning_rate`."""
    model = build_model(config, *data.channel_stats(), seed=seed)
    return compile_for_training(model, learning_rate(config, steps_per_epoch), jit_compile)


class OnePhase:
    """How a rung's model is made: one model, compiled once, one phase
    (`kcifar.pretrained.FineTune` is the two-phase one)."""

    settings = {}  # nothing beyond the config to record

    def phase_ends(self, config):
        return [config.epochs]

    def compile(self, config, data, steps_per_epoch, seed, phase, model=None, jit_compile="auto"):
        return compile_model(config, data, steps_per_epoch, seed, jit_compile)


def fit_rung(model, config, data, *, seed, callbacks=(), initial_epoch=0, epochs=None, verbose=1):
    """Trains `model` (from `compile_model`) on `data`'s training split: the
    one training call of runs and tuner trials.

    Batches are shuffled by (seed, epoch) and augmented by the model; every
    epoch ends with a validation pass and the clean training accuracy
    (`CleanTrainAccuracy`), both in its logs before `callbacks` see them.

    Args:
        model: the compiled model.
        config: the rung's Config (batch size and epochs).
        data: a `kcifar.data.Cifar10`; its test split is not touched.
        seed: the run's seed (keys the batch order).
        callbacks: Keras callbacks, after the ones above.
        initial_epoch: epochs already done (a resume).
        epochs: the epoch to stop after (default: the config's).
        verbose: Keras's progress bar setting.
    """
    batches = TrainBatches(data.x_train, data.y_train, config.batch_size, seed)
    batches.epoch = initial_epoch  # Keras may peek at a batch before the first epoch begins
    return model.fit(
        batches,
        validation_data=(data.x_val, data.y_val),
        batch_size=config.batch_size,  # of the validation pass
        shuffle=False,  # the batches shuffle themselves by (seed, epoch); Keras's batch-order
        # shuffle draws from Python's global generator, which a resume does not restore
        epochs=config.epochs if epochs is None else epochs,
        initial_epoch=initial_epoch,
        callbacks=[EpochSync(batches), CleanTrainAccuracy(*data.train_sample()), *callbacks],
        verbose=verbose,
    )


class CleanTrainAccuracy(keras.callbacks.Callback):
    """Adds the clean training accuracy to each epoch's logs.

    Keras's running `accuracy` is taken with augmentation, noise and dropout
    on and averaged over an epoch of changing weights: it is what the
    lecture's training figures show. This one is the network at the epoch's
    end, in inference mode (no augmentation, noise or dropout; batch
    normalization with its moving statistics), on a fixed sample of the
    training split (`Cifar10.train_sample`): what the network has learnt of
    its training images, measured as the test images are. It comes before the
    callbacks that read the logs.

    Args:
        x: uint8 images of the sample.
        y: their labels.
    """

    def __init__(self, x, y):
        super().__init__()
        self.x, self.y = x, np.asarray(y).astype(int)

    def on_train_begin(self, logs=None):
        self.network = inference_network(self.model)  # shares the model's weights

    def on_epoch_end(self, epoch, logs=None):
        probs = self.network.predict(self.x, batch_size=512, verbose=0)
        logs[CLEAN_ACCURACY] = float((probs.argmax(axis=1) == self.y).mean())


def train(config, data, run_dir, *, seed=0, precision="float32", budget=FULL, resume=False,
          overwrite=False, deterministic=False, verbose=1, tensorboard=None, time_limit=None, started=None,
          recipe=None):
    """Trains `config` on `data` into `run_dir`; returns the metrics dict.

    Args:
        config: a `kcifar.config.Config` (epochs and batch size included).
        data: a `kcifar.data.Cifar10`.
        run_dir: the run folder (`kcifar.results` lists its files).
        seed: seeds weights, batches, augmentation, noise and dropout.
        precision: "float32", "mixed_bfloat16" or "mixed_float16".
        budget: the name of the `kcifar.budgets` budget that made `config`
            and `data` (recorded, and compared on resume).
        resume: continue from the folder's checkpoint; a complete run is
            returned as it is.
        overwrite: delete the folder's run files first.
        deterministic: the backends' determinism switches (slower).
        verbose: Keras's progress bar setting.
        tensorboard: a folder for TensorBoard's event files (Keras's callback,
            per-epoch scalars) in a subfolder named like `run_dir`; None for
            none. Needs TensorFlow whichever backend trains.
        time_limit: seconds from `started` within which the run, its test
            evaluation included, must end (`kcifar.run_folder.TimeLimit`); None for none. A run
            it stops keeps its checkpoint, writes partial.json and raises
            `Stopped`. Not a setting of the run: a resume may use another.
        started: when the limit's clock started, a `time.time()` value
            (default: now).
        recipe: how the model is made and compiled, phase by phase
            (default `OnePhase()`, a rung's).

    Raises:
        ValueError: `time_limit` is not a positive number.
        kcifar.run_folder.RunError: the run cannot start or go on.
        kcifar.run_folder.Stopped: the time limit stopped it.
    """
    if time_limit is not None and not time_limit > 0:
        raise ValueError(f"time_limit must be positive seconds. Received: time_limit={time_limit!r}")
    if tensorboard is not None:
        tensorboard_logs.check()  # before the run folder is made
    with runtime.released_graph_gradients(), runtime.deterministic(deterministic):
        return _train(config, data, run_dir, seed=seed, precision=precision, budget=budget, resume=resume,
                      overwrite=overwrite, deterministic=deterministic, verbose=verbose,
                      tensorboard=tensorboard, time_limit=time_limit,
                      started=time.time() if started is None else started, recipe=recipe or OnePhase())


def _train(config, data, run_dir, *, seed, precision, budget, resume, overwrite, deterministic, verbose, tensorboard,
           time_limit, started, recipe):
    if resume and state(run_dir) == "complete" and not overwrite:
        return files.read_json(os.path.join(run_dir, METRICS_FILE))
    settings = settings_record(config, data, seed=seed, precision=precision, budget=budget, **recipe.settings)
    checkpoint = prepare_run_dir(run_dir, settings, resume, overwrite)
    runtime.start_run(precision, seed)
    steps_per_epoch = math.ceil(len(data.y_train) / config.batch_size)
    phase = saved_phase(checkpoint) if checkpoint else 1
    model = recipe.compile(config, data, steps_per_epoch, seed, phase)
    history, best = restore_checkpoint(checkpoint, model) if checkpoint else ([], BestEpoch())
    if history:
        print(f"resuming {run_dir} after epoch {len(history)} of {config.epochs}", flush=True)
    if len(history) < config.epochs:
        clear_partial(run_dir)

    limit = None
    if time_limit is not None:
        # The test passes still to come (the last epoch's weights, then the
        # best validation epoch's) cost about this many validation passes.
        test_per_val = 2 * len(data.y_test) / max(len(data.y_val), 1)
        limit = TimeLimit(started + time_limit, history, test_per_val, config.epochs)
    # A rung has one phase, ending at config.epochs; the pretrained step two.
    for number, end in enumerate(recipe.phase_ends(config), start=1):
        if len(history) >= end or (limit is not None and limit.stopped):
            continue
        if number != phase:  # new trainable layers, a new optimizer
            model, phase = recipe.compile(config, data, steps_per_epoch, seed, number, model), number
        fit_rung(model, config, data, seed=seed, initial_epoch=len(history), epochs=end, verbose=verbose,
                 callbacks=[Recorder(run_dir, history, phase, best), *([limit] if limit else []),
                            *tensorboard_logs.callbacks_for(tensorboard, run_dir)])
    if limit is not None and limit.stopped:
        raise Stopped(stop_partial(run_dir, config, history, time_limit, started))

    eval_start = time.perf_counter()
    network = inference_network(model)  # without the augmentation block
    test = score_predictions(network.predict(data.x_test, batch_size=512, verbose=0), data.y_test)
    read_out = best and best_read_out(network, model, best, len(history), test, data)
    eval_seconds = time.perf_counter() - eval_start
    metrics = metrics_record(config, data, history, test, seed=seed, budget=budget, precision=precision,
                             deterministic=deterministic, eval_seconds=eval_seconds, best=read_out)
    finish_run(run_dir, network, metrics)
    return metrics


def best_read_out(network, model, best, epochs, test, data):
    """The second read-out: the best validation epoch and the test accuracy
    of its weights (the last epoch's `test` when it is the last), measured
    with them in place and the last epoch's put back after: the saved model
    is the last epoch's."""
    best_test = test["test_accuracy"]
    if best.epoch != epochs:
        last = [keras.ops.convert_to_numpy(w) for w in model.weights]
        for variable, value in zip(model.weights, best.weights):
            variable.assign(value)
        probs = network.predict(data.x_test, batch_size=512, verbose=0)
        best_test = score_predictions(probs, data.y_test)["test_accuracy"]
        for variable, value in zip(model.weights, last):
            variable.assign(value)
    return {"best_epoch": best.epoch, "best_val_accuracy": best.val_accuracy, "best_test_accuracy": best_test}
