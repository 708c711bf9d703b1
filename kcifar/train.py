"""Training one rung into one run folder, resumable after any interruption.

The lesson comes first: how a rung's model is compiled (`compile_model`)
and trained (`fit_rung`), and `train`, which runs it into a folder. Below
them is the run folder's machinery. Its files, and the order they are
written in, are `kcifar.results`'s (settings first, metrics.json last). The
checkpoint holds the model's variables including the random generators of
its noise, dropout and augmentation layers, the optimizer's variables (so
the step count and the learning-rate schedule), and the history; batches
are keyed by (seed, epoch), so a resumed run ends where an uninterrupted
one would.

A rung trains in one phase. The step beyond the ladder (`kcifar.pretrained`)
trains in two, each with its own trainable layers and optimizer: its
`FineTune` says how, and the checkpoint records the phase it was saved in.
"""

import datetime
import json
import math
import os
import time

import keras
import numpy as np

from kcifar import files, machine, runtime
from kcifar import tensorboard as tensorboard_logs
from kcifar.budgets import FULL
from kcifar.data import CLASS_NAMES
from kcifar.models import build_model, inference_network
from kcifar.pipeline import EpochSync, TrainBatches

from kcifar.results import (CHECKPOINT_FILE, CLEAN_ACCURACY, HISTORY_COLUMNS, HISTORY_FILE, METRICS_FILE,
                            METRICS_FORMAT, MODEL_FILE, PARTIAL_FILE, PARTIAL_FORMAT, RUN_FILES, SETTINGS_FILE,
                            counted, score_predictions, state)


class RunError(Exception):
    """A run that cannot start or go on; the message is one line."""


class Stopped(Exception):
    """A run that a time limit stopped between epochs, resumable; the message
    is the one line to print. Not an error: the command exits 0."""


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
        run_dir: the run folder (see the module docstring).
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
            evaluation included, must end (`TimeLimit`); None for none. A run
            it stops keeps its checkpoint, writes partial.json and raises
            `Stopped`. Not a setting of the run: a resume may use another.
        started: when the limit's clock started, a `time.time()` value
            (default: now).
        recipe: how the model is made and compiled, phase by phase
            (default `OnePhase()`, a rung's).

    Raises:
        RunError: the run cannot start or go on.
        Stopped: the time limit stopped it.
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
    settings = json.loads(json.dumps({  # as it reads back from settings.json
        "config": config.to_dict(), "seed": seed, "precision": precision, "budget": budget,
        "data": data_record(data), **recipe.settings, "code": machine.code_version(),
    }))
    checkpoint = prepare_run_dir(run_dir, settings, resume, overwrite)
    runtime.start_run(precision, seed)
    steps_per_epoch = math.ceil(len(data.y_train) / config.batch_size)
    phase = saved_phase(checkpoint) if checkpoint else 1
    model = recipe.compile(config, data, steps_per_epoch, seed, phase)
    history = restore_checkpoint(checkpoint, model) if checkpoint else []
    if history:
        print(f"resuming {run_dir} after epoch {len(history)} of {config.epochs}", flush=True)

    limit = None
    if time_limit is not None:
        limit = TimeLimit(started + time_limit, history, len(data.y_test) / max(len(data.y_val), 1), config.epochs)
    if len(history) < config.epochs:
        marker = os.path.join(run_dir, PARTIAL_FILE)
        if os.path.exists(marker):  # it described the stop before this resume
            os.remove(marker)
    # A rung has one phase, ending at config.epochs; the pretrained step two.
    for number, end in enumerate(recipe.phase_ends(config), start=1):
        if len(history) >= end or (limit is not None and limit.stopped):
            continue
        if number != phase:  # new trainable layers, a new optimizer
            model, phase = recipe.compile(config, data, steps_per_epoch, seed, number, model), number
        fit_rung(model, config, data, seed=seed, initial_epoch=len(history), epochs=end, verbose=verbose,
                 callbacks=[Recorder(run_dir, history, phase), *([limit] if limit else []),
                            *tensorboard_logs.callbacks_for(tensorboard, run_dir)])
    if limit is not None and limit.stopped:
        raise Stopped(stop_partial(run_dir, config, history, time_limit, started))

    eval_start = time.perf_counter()
    network = inference_network(model)  # without the augmentation block
    probs = network.predict(data.x_test, batch_size=512, verbose=0)
    test = score_predictions(probs, data.y_test)
    eval_seconds = time.perf_counter() - eval_start
    with files.atomic_path(os.path.join(run_dir, MODEL_FILE)) as tmp:
        network.save(tmp)
    metrics = metrics_record(config, data, history, test, seed=seed, budget=budget, precision=precision,
                             deterministic=deterministic, eval_seconds=eval_seconds)
    files.write_json(os.path.join(run_dir, METRICS_FILE), metrics)
    if os.path.exists(os.path.join(run_dir, CHECKPOINT_FILE)):
        os.remove(os.path.join(run_dir, CHECKPOINT_FILE))
    return metrics


# The run folder: settings checked on resume, the history and checkpoint after
# every epoch, the time limit, and the marker of a stopped run.


def data_record(data):
    """What a results file says of the data: no path of the machine that ran it.
    Its notes name a training subset (--limit-train) or a custom set, so that
    even a stopped run's settings.json says what it trained on."""
    return {"source": os.path.basename(os.path.normpath(data.source)), "checksum": data.checksum,
            "train": len(data.y_train), "val": len(data.y_val), "notes": list(data.notes)}


def metrics_record(config, data, history, test, *, seed, budget, precision, deterministic, eval_seconds):
    """What metrics.json holds: the run's settings, its test scores
    (`score_predictions`), the last epoch's training and validation figures
    and both gaps, its times, the machine and the data."""
    train_seconds = sum(row["train_seconds"] for row in history)
    last = history[-1]
    return {
        "format": METRICS_FORMAT,
        "name": config.name,
        "rung": config.rung,
        "change": config.change,
        "epochs": len(history),
        "batch_size": config.batch_size,
        "seed": seed,
        "budget": budget,
        "precision": precision,
        "deterministic": deterministic,
        **test,
        "train_accuracy": last["accuracy"],
        "val_accuracy": last["val_accuracy"],
        "val_loss": last["val_loss"],
        "gap": last["accuracy"] - test["test_accuracy"],
        CLEAN_ACCURACY: last[CLEAN_ACCURACY],
        "clean_gap": last[CLEAN_ACCURACY] - test["test_accuracy"],
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


def prepare_run_dir(run_dir, settings, resume, overwrite):
    """Makes the folder ready; returns the checkpoint path to resume, or None."""
    try:
        os.makedirs(run_dir, exist_ok=True)
        probe = os.path.join(run_dir, f".write-test-{os.getpid()}")
        open(probe, "w").close()
        os.remove(probe)
    except OSError as e:
        raise RunError(f"cannot write to run folder {run_dir}: {e.strerror or e}")
    present = [f for f in RUN_FILES if os.path.exists(os.path.join(run_dir, f))]
    if overwrite:
        for f in present:
            os.remove(os.path.join(run_dir, f))
        present = []
    if present and not resume:
        raise RunError(
            f"{run_dir} already holds a run; pass --resume to continue it "
            "or --overwrite to start afresh"
        )
    settings_path = os.path.join(run_dir, SETTINGS_FILE)
    if os.path.exists(settings_path):
        try:
            saved = files.read_json(settings_path)
        except (OSError, ValueError) as e:
            raise RunError(f"{settings_path} is unreadable ({e}); use --overwrite")
        changed = changed_settings(saved, settings)
        if changed:
            raise RunError(
                f"{run_dir} was started with other settings ({', '.join(changed)} differ); "
                "use the same flags, another --out, or --overwrite"
            )
    else:
        files.write_json(settings_path, settings)
    checkpoint = os.path.join(run_dir, CHECKPOINT_FILE)
    return checkpoint if resume and os.path.exists(checkpoint) else None


def changed_settings(saved, settings):
    """The settings that differ, for a resume. The code version may change
    between the two; folders written before a setting existed (budget,
    data checksum, data notes) are compared on what they hold, and their
    data description, which named a machine path, is not compared."""
    saved = {"budget": FULL, **saved}
    changed = {k for k in set(saved) | set(settings) if k != "code" and saved.get(k) != settings.get(k)}
    old, new = saved.get("data", {}), settings.get("data", {})
    if "description" in old or "notes" not in old:
        common = (set(old) & set(new)) - {"description"}
        if {"train", "val"} <= common and all(old[k] == new[k] for k in common):
            changed.discard("data")
    return sorted(changed)


class Recorder(keras.callbacks.Callback):
    """Keeps the history and writes a checkpoint after every epoch.

    A NaN loss stops the run before its epoch is saved, so the last good
    checkpoint stays for a later --resume.
    """

    def __init__(self, run_dir, history, phase=1):
        super().__init__()
        self.run_dir, self.history, self.phase = run_dir, history, phase

    def on_epoch_begin(self, epoch, logs=None):
        self.start = self.test_start = time.perf_counter()
        self.lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_test_begin(self, logs=None):
        self.test_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if not all(math.isfinite(logs.get(k, 0.0)) for k in ("loss", "val_loss")):
            raise RunError(
                f"loss became NaN or infinite in epoch {epoch + 1}; the last good "
                f"checkpoint (epoch {epoch}) is kept in {self.run_dir}"
            )
        now = time.perf_counter()
        self.history.append({
            "epoch": epoch + 1,
            **{k: float(logs[k]) for k in ("loss", "accuracy", "val_loss", "val_accuracy", CLEAN_ACCURACY)},
            "learning_rate": self.lr,
            "train_seconds": round(self.test_start - self.start, 3),
            "seconds": round(now - self.start, 3),
        })
        save_checkpoint(self.run_dir, self.model, self.history, self.phase)
        files.write_csv(os.path.join(self.run_dir, HISTORY_FILE), self.history, HISTORY_COLUMNS)


class TimeLimit(keras.callbacks.Callback):
    """Stops training after an epoch when the next one and the final test
    evaluation would not end by `deadline` (a `time.time()` value).

    The estimate comes from the epochs this process has timed: their mean,
    leaving out the first (it compiles) once there are others, and the last
    validation pass scaled to the test split. The first epoch always runs.
    """

    def __init__(self, deadline, history, test_per_val, epochs):
        super().__init__()
        self.deadline, self.history, self.test_per_val, self.epochs = deadline, history, test_per_val, epochs
        self.done_before = len(history)
        self.stopped = False

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 >= self.epochs:  # the run's last epoch, not its phase's
            return
        timed = self.history[self.done_before:]
        steady = timed[1:] or timed
        epoch_seconds = sum(row["seconds"] for row in steady) / len(steady)
        test_seconds = (timed[-1]["seconds"] - timed[-1]["train_seconds"]) * self.test_per_val
        if time.time() + epoch_seconds + test_seconds > self.deadline:
            self.model.stop_training = self.stopped = True


def save_checkpoint(run_dir, model, history, phase=1):
    arrays = {f"model_{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(model.variables)}
    arrays.update({f"opt_{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(model.optimizer.variables)})
    arrays["history"] = np.array(json.dumps(history))
    arrays["phase"] = np.array(phase)  # the optimizer's variables are this phase's
    with files.atomic_path(os.path.join(run_dir, CHECKPOINT_FILE)) as tmp:
        np.savez(tmp, **arrays)


def saved_phase(path):
    """The training phase a checkpoint was saved in (1 for one-phase runs)."""
    try:
        with np.load(path) as f:
            return int(f["phase"]) if "phase" in f.files else 1
    except (OSError, ValueError) as e:
        raise RunError(f"{path} is unreadable ({e}); use --overwrite")


def restore_checkpoint(path, model):
    """Assigns the saved state to `model` (compiled in the checkpoint's
    phase); returns the history."""
    try:
        with np.load(path) as f:
            saved = {k: f[k] for k in f.files}
    except (OSError, ValueError) as e:
        raise RunError(f"{path} is unreadable ({e}); use --overwrite")
    model.optimizer.build(model.trainable_variables)
    for prefix, variables in (("model", model.variables), ("opt", model.optimizer.variables)):
        count = sum(k.startswith(prefix + "_") for k in saved)
        if count != len(variables):
            raise RunError(f"{path} does not match this model ({count} vs {len(variables)} {prefix} variables)")
        for i, v in enumerate(variables):
            v.assign(saved[f"{prefix}_{i}"])
    return json.loads(str(saved["history"]))


def stop_partial(run_dir, config, history, time_limit, started):
    """Writes the partial-run marker; returns the line that says so."""
    now = time.time()
    files.write_json(os.path.join(run_dir, PARTIAL_FILE), {
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
    })
    return f"stopped by --time-limit after {len(history)} of {counted(config.epochs, 'epoch')}; --resume continues"
