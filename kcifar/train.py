"""Training one rung: how its model is compiled (`compile_model`) and trained
(`fit_rung`), and `train`, which runs it into a run folder and scores it:
its test accuracy, and the gaps between its training and test accuracies
(`metrics_record`), the lesson's numbers.

How a run is run (its seed, precision, resume, time limit, ...) is one
`kcifar.settings.RunSettings`. A `Run` is one run as it trains: its folder
(`kcifar.run_folder` reads and writes the files), its history, its best
epoch and its time limit. A rung fits once; the step beyond the ladder
(`kcifar.pretrained`) fits once per phase through the same `Run`.
"""

import contextlib
import datetime
import json
import time

import keras
import numpy as np

from kcifar import machine, runtime
from kcifar import tensorboard as tensorboard_logs
from kcifar.data import CLASS_NAMES, NUM_CLASSES
from kcifar.models import build_model, inference_network
from kcifar.pipeline import EpochSync, TrainBatches, steps_per_epoch
from kcifar.results import BEST_FIELDS, CLEAN_ACCURACY, METRICS_FORMAT, PARTIAL_FORMAT, counted
from kcifar.run_folder import (BestEpoch, Recorder, Stopped, TimeLimit, clear_partial, finish_run, kept_run,
                               mark_partial, prepare_run_dir, restore_checkpoint, saved_phase)
from kcifar.settings import RunSettings


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


def train(config, data, run_dir, settings=None):
    """Trains `config` on `data` into `run_dir`, then tests it once; returns
    the metrics dict (`metrics_record`). With `settings.resume`, a complete
    run's metrics are returned as they are.

    Args:
        config: a `kcifar.config.Config` (epochs and batch size included).
        data: a `kcifar.data.Cifar10`.
        run_dir: the run folder (`kcifar.results` lists its files).
        settings: a `kcifar.settings.RunSettings` (default: its defaults).

    Raises:
        kcifar.run_folder.RunError: the run cannot start or go on.
        kcifar.run_folder.Stopped: the time limit stopped it.
    """
    settings = settings or RunSettings()
    kept = kept_run(run_dir, settings.resume, settings.overwrite)
    if kept is not None:
        return kept
    with running(config, data, run_dir, settings) as run:
        model = compile_model(config, data, run.steps_per_epoch, settings.seed)
        run.restore(model)
        run.fit_epochs(config.epochs)
        return run.finish()


@contextlib.contextmanager
def running(config, data, run_dir, settings, **recorded):
    """A `Run` of `config` in `run_dir` (a folder `kept_run` lets it start
    in), inside the backends' settings for it: their determinism switches,
    and TensorFlow's traced graphs released after it.

    Args:
        config, data, run_dir, settings: as `train`'s.
        **recorded: what settings.json records beyond the config and the
            settings (the pretrained step's starting weights).
    """
    with runtime.released_graph_gradients(), runtime.deterministic(settings.deterministic):
        yield Run(config, data, run_dir, settings, recorded)


class Run:
    """One run as it trains into its folder: Keras started for it
    (precision, seeds), then `restore`, which takes the compiled model,
    `fit_epochs` once per phase, and `finish`. The folder is made ready
    (settings.json written, or a resume checked against it) when the run
    first needs it: in `restore`, or in `saved_phase`, which the pretrained
    step asks before it compiles its model.

    Args:
        config, data, run_dir, settings: as `train`'s.
        recorded: as `running`'s.
    """

    def __init__(self, config, data, run_dir, settings, recorded):
        self.config, self.data, self.run_dir, self.settings = config, data, run_dir, settings
        self.started = time.time() if settings.started is None else settings.started
        self.recorded, self.opened, self.checkpoint = recorded, False, None
        runtime.start_run(settings.precision, settings.seed)
        self.steps_per_epoch = steps_per_epoch(len(data.y_train), config.batch_size)
        self.history, self.best, self.limit = [], BestEpoch(), None

    def open(self):
        """Makes the folder ready, once; keeps the checkpoint to resume from."""
        if not self.opened:
            record = settings_record(self.config, self.data, self.settings, **self.recorded)
            self.checkpoint = prepare_run_dir(self.run_dir, record, self.settings.overwrite)
            self.opened = True

    def saved_phase(self):
        """The training phase the checkpoint was saved in (1 without one):
        the model is compiled for it before `restore`."""
        self.open()
        return saved_phase(self.checkpoint) if self.checkpoint else 1

    def restore(self, model):
        """Takes the compiled `model` the run trains: puts the checkpoint's
        state (weights, optimizer, random generators, history, best epoch)
        into it if there is one, makes the callbacks of every phase (the
        recorder, the time limit, whose count starts now, TensorBoard's), and
        keeps its network, what is tested and saved."""
        self.open()
        if self.checkpoint:
            self.history, self.best = restore_checkpoint(self.checkpoint, model)
        if self.history:
            print(f"resuming {self.run_dir} after epoch {len(self.history)} of {self.config.epochs}", flush=True)
        if len(self.history) < self.config.epochs:
            clear_partial(self.run_dir)
        self.recorder = Recorder(self.run_dir, self.history, best=self.best)
        self.callbacks = [self.recorder]
        if self.settings.time_limit is not None:
            # The test passes still to come (the last epoch's weights, then the
            # best validation epoch's) cost about this many validation passes.
            test_per_val = 2 * len(self.data.y_test) / max(len(self.data.y_val), 1)
            self.limit = TimeLimit(self.started + self.settings.time_limit, self.history, test_per_val,
                                   self.config.epochs)
            self.callbacks.append(self.limit)
        self.callbacks += tensorboard_logs.callbacks_for(self.settings.tensorboard, self.run_dir)
        self.model, self.network = model, inference_network(model)  # the network: without the augmentation block

    def done(self, epochs):
        """Whether no epoch up to `epochs` is left to train: the run has
        them, or the time limit has stopped it."""
        return len(self.history) >= epochs or self.stopped

    @property
    def stopped(self):
        return self.limit is not None and self.limit.stopped

    def fit_epochs(self, epochs, phase=1):
        """Trains the model on from the epochs done up to `epochs`
        (`fit_rung`), checkpointing every epoch in `phase` (nothing when
        `done`)."""
        if self.done(epochs):
            return
        self.recorder.phase = phase
        fit_rung(self.model, self.config, self.data, seed=self.settings.seed, initial_epoch=len(self.history),
                 epochs=epochs, verbose=self.settings.verbose, callbacks=self.callbacks)

    def finish(self):
        """Tests the trained model once and writes the run's last files
        (model.keras, metrics.json); returns the metrics dict. A run the
        time limit stopped is marked partial instead, and raises Stopped."""
        if self.stopped:
            marker = partial_record(self.config, self.history, self.settings.time_limit, self.started)
            mark_partial(self.run_dir, marker)
            raise Stopped(f"stopped by --time-limit after {len(self.history)} of "
                          f"{counted(self.config.epochs, 'epoch')}; --resume continues")
        eval_start = time.perf_counter()
        probs = self.network.predict(self.data.x_test, batch_size=512, verbose=0)
        test = score_predictions(probs, self.data.y_test)
        read_out = self.best and best_read_out(self.network, self.model, self.best, len(self.history), test,
                                               self.data)
        metrics = metrics_record(self.config, self.data, self.history, test, self.settings,
                                 eval_seconds=time.perf_counter() - eval_start, best=read_out)
        finish_run(self.run_dir, self.network, metrics)
        return metrics


def score_predictions(probs, labels):
    """Accuracy, cross-entropy, per-class accuracy and confusion matrix of
    the class probabilities `probs` against `labels`."""
    labels = np.asarray(labels).astype(int)
    predicted = probs.argmax(axis=1)
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), int)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    picked = probs[np.arange(len(labels)), labels].astype(np.float64)
    return {
        "test_accuracy": float((predicted == labels).mean()),
        "test_loss": float(-np.log(np.clip(picked, 1e-12, 1.0)).mean()),
        "per_class_accuracy": [round(float(a), 4) for a in per_class],
        "confusion_matrix": confusion.tolist(),
    }


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


def metrics_record(config, data, history, test, settings, *, eval_seconds, best=None):
    """What metrics.json holds: the run's settings, its test scores
    (`score_predictions`), the last epoch's training and
    validation figures, the generalization gaps (training accuracy minus
    test accuracy: Keras's running one, which the lecture's figures show,
    and the clean one), the best validation epoch's figures (`best`:
    best_epoch, best_val_accuracy, best_test_accuracy; None in each for a
    run that did not keep them), its times, the machine and the data."""
    train_seconds = sum(row["train_seconds"] for row in history)
    last = history[-1]
    return {
        "format": METRICS_FORMAT,
        "name": config.name,
        "rung": config.rung,
        "change": config.change,
        "epochs": len(history),
        "batch_size": config.batch_size,
        "seed": settings.seed,
        "budget": settings.budget,
        "precision": settings.precision,
        "deterministic": settings.deterministic,
        **test,
        "train_accuracy": last["accuracy"],
        "val_accuracy": last["val_accuracy"],
        "val_loss": last["val_loss"],
        "gap": last["accuracy"] - test["test_accuracy"],
        CLEAN_ACCURACY: last[CLEAN_ACCURACY],
        "clean_gap": last[CLEAN_ACCURACY] - test["test_accuracy"],
        **(best or dict.fromkeys(BEST_FIELDS)),
        "train_seconds": round(train_seconds, 3),
        "wall_seconds": round(sum(row["seconds"] for row in history) + eval_seconds, 3),
        "images_per_second": round(len(data.y_train) * len(history) / max(train_seconds, 1e-9), 1),
        **runtime.describe(),
        "code": machine.code_version(),
        "data": {
            **data_record(data), "description": data.description, "format": data.format,
            "test": len(data.y_test),
        },
        "class_names": list(CLASS_NAMES),
    }


def settings_record(config, data, settings, **recorded):
    """What settings.json holds, as it reads back from the file: what a
    resume must match (`kcifar.run_folder.changed_settings`), and the code
    that started the run. `recorded`: as `running`'s."""
    return json.loads(json.dumps({
        "config": config.to_dict(), "seed": settings.seed, "precision": settings.precision,
        "budget": settings.budget, "data": data_record(data), **recorded, "code": machine.code_version(),
    }))


def partial_record(config, history, time_limit, started):
    """What partial.json holds: the epochs done and planned, why and when
    the run stopped, its last validation accuracy, the machine."""
    now = time.time()
    return {
        "format": PARTIAL_FORMAT,
        "name": config.name,
        "rung": config.rung,
        "epochs_done": len(history),
        "epochs_planned": config.epochs,
        "reason": "time-limit",
        "time_limit_seconds": time_limit,
        "elapsed_seconds": round(now - started, 1),
        "stopped_at": datetime.datetime.fromtimestamp(now, datetime.timezone.utc).isoformat(timespec="seconds"),
        "val_accuracy": history[-1]["val_accuracy"],
        **runtime.describe(),
        "code": machine.code_version(),
    }


def data_record(data):
    """What a results file says of the data: no path of the machine that ran it.
    Its notes name a training subset (--limit-train) or a custom set, so that
    even a stopped run's settings.json says what it trained on."""
    return {"source": data.source, "checksum": data.checksum,
            "train": len(data.y_train), "val": len(data.y_val), "notes": list(data.notes)}
