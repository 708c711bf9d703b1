"""The search: keras-tuner's oracles driving the rung's HyperModel, resumable.

Every trial clears Keras's state, seeds itself from the search seed and its
trial id (the oracle's seed only drives the sampling) and keeps its
checkpoints in its own folder (see `kcifar.tune.project`), so a trial
interrupted by Ctrl-C or kill -9 resumes after its last finished epoch when
the same command runs again, and a finished trial is never run twice.
"""

import gc
import hashlib
import os
import time

import keras
import keras_tuner

from kcifar import files, runtime
from kcifar import tensorboard as tensorboard_logs
from kcifar.bench.memory import resident_mb
from kcifar.results import CHECKPOINT_FILE, CLEAN_ACCURACY
from kcifar.run_folder import Recorder, RunError, restore_checkpoint
from kcifar.tune.project import FORMAT, OBJECTIVE, TRIAL_FILE, TUNERS, SearchError, trial_label

MAX_FAILED_IN_A_ROW = 3  # keras-tuner's default: a space where every trial fails stops soon


def derived_seed(seed, *keys):
    """A seed in [1, 2**31 - 1) from the search seed and keys, e.g. a trial id.

    Never 0: keras-tuner replaces a seed of 0 by a random one.
    """
    digest = hashlib.sha256("/".join(map(str, (seed, *keys))).encode()).digest()
    return 1 + int.from_bytes(digest[:8], "big") % (2**31 - 2)


class _AtomicOracle:
    """Writes keras-tuner's state files whole, and keeps a trial with its
    tuner across restarts.

    keras-tuner writes oracle.json and trial.json in place, so a kill -9
    while writing leaves a file that cannot be reloaded. On reload it sends
    interrupted trials back to a queue any tuner may take; here a trial stays
    with the tuner id that ran it, so restarting that tuner (the same
    command, or the same --worker ID) resumes it from its checkpoint while
    other workers go on, and no trial runs twice.
    """

    def save(self):
        files.write_json(self._get_oracle_fname(), self.get_state())

    def _save_trial(self, trial):
        files.write_json(os.path.join(self._get_trial_dir(trial.trial_id), "trial.json"), trial.get_state())

    def reload(self):
        super().reload()
        state = files.read_json(self._get_oracle_fname())
        owners = {trial_id: tuner_id for tuner_id, trial_id in state["ongoing_trials"].items()}
        self._retry_queue = [t for t in self._retry_queue if t not in owners]
        for trial_id, trial in sorted(self.trials.items()):
            if trial.status != "RUNNING":
                if trial_id not in self.end_order:  # ended, but killed before oracle.json said so
                    self.end_order.append(trial_id)
            elif trial_id in owners:
                self.ongoing_trials[owners[trial_id]] = trial
            elif trial_id not in self._retry_queue:  # killed between trial.json and oracle.json
                self._retry_queue.append(trial_id)


class RandomOracle(_AtomicOracle, keras_tuner.oracles.RandomSearchOracle):
    pass


class BayesianOracle(_AtomicOracle, keras_tuner.oracles.BayesianOptimizationOracle):
    pass


class HyperbandOracle(_AtomicOracle, keras_tuner.oracles.HyperbandOracle):
    pass


def make_oracle(tuner, *, seed, max_trials=None, epochs=None, factor=3, iterations=1):
    """The oracle of a tuner name; its seed only drives the sampling."""
    # No stop after failed trials in the oracle: keras-tuner's raises before it
    # saves the trial that failed and counts the old failures again on every
    # rerun, so a stopped search could never go on. RungTuner stops instead.
    common = dict(objective=keras_tuner.Objective(OBJECTIVE, "max"), seed=derived_seed(seed, "oracle"),
                  max_consecutive_failed_trials=None)
    if tuner == "random":
        return RandomOracle(max_trials=max_trials, **common)
    if tuner == "bayesian":
        try:
            return BayesianOracle(max_trials=max_trials, **common)
        except ImportError as e:
            raise SearchError(f"the bayesian tuner needs scipy and scikit-learn: pip install 'kcifar[bayesian]' ({e})")
    if tuner == "hyperband":
        return HyperbandOracle(max_epochs=epochs, factor=factor, hyperband_iterations=iterations, **common)
    raise ValueError(f"tuner must be one of {', '.join(TUNERS)}. Received: tuner={tuner!r}")


def hyperband_budget(max_epochs, factor=3, iterations=1):
    """(trials, epochs) one Hyperband search runs, as keras-tuner schedules it."""
    oracle = keras_tuner.oracles.HyperbandOracle(max_epochs=max_epochs, factor=factor, seed=1)
    trials = epochs = 0
    for bracket in range(oracle._get_num_brackets()):
        for r in range(oracle._get_num_rounds(bracket)):
            size = oracle._get_size(bracket, r)
            start = oracle._get_epochs(bracket, r - 1) if r else 0
            trials += size
            epochs += size * (oracle._get_epochs(bracket, r) - start)
    return trials * iterations, epochs * iterations


class _SaveBestWeights(keras.callbacks.Callback):
    """Weights of the best epoch so far, written whole (keras-tuner's
    SaveBestEpoch writes in place and forgets the best of a resumed trial)."""

    def __init__(self, path, best=float("-inf")):
        super().__init__()
        self.path, self.best = path, best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(OBJECTIVE)
        if value is not None and value > self.best:
            self.best = value
            tmp = self.path.replace(".weights.h5", f".tmp-{os.getpid()}.weights.h5")
            try:
                self.model.save_weights(tmp)
                os.replace(tmp, self.path)
            finally:
                if os.path.exists(tmp):
                    os.remove(tmp)


class RungTuner(keras_tuner.Tuner):
    """Runs trials of a `RungHyperModel`: one seed, one folder per trial.

    After MAX_FAILED_IN_A_ROW failed trials in a row (a NaN loss, say) it
    stops with a RuntimeError, every trial saved: the same command goes on
    with new values, as after any stop.

    Args:
        oracle: from `make_oracle`.
        hypermodel: a `kcifar.tune.hypermodel.RungHyperModel`.
        seed: the search seed; trial seeds derive from it and the trial id.
        precision: Keras dtype policy of every trial.
        verbose: Keras's fit verbosity.
        on_trial_end: optional fn() called after each trial (the summary).
        tensorboard: a folder for TensorBoard's event files, one subfolder
            per trial named like its trial folder; None for none.
        **kwargs: `keras_tuner.Tuner` arguments (directory, project_name).
    """

    def __init__(self, oracle, hypermodel, *, seed=0, precision="float32", verbose=0,
                 on_trial_end=None, tensorboard=None, **kwargs):
        # Never let keras-tuner delete: --overwrite is handled by kcifar.tune.project.prepare.
        super().__init__(oracle, hypermodel, overwrite=False, **kwargs)
        self.seed, self.precision, self.verbose = seed, precision, verbose
        self.trial_end_hook = on_trial_end
        self.tensorboard_dir = tensorboard
        self._asks = 0
        self._failed_in_a_row = 0

    def save(self):
        if not self._is_worker():
            self.oracle.save()
        files.write_json(self._get_tuner_fname(), self.get_state())

    def pre_create_trial(self):
        # A worker asking again after an IDLE answer (Hyperband waiting on
        # other workers' rounds) would otherwise spin on the chief.
        if self._asks:
            time.sleep(min(5.0, 0.5 * self._asks))
        self._asks += 1

    def on_trial_begin(self, trial):
        self._asks = 0
        if self._is_worker():  # keras-tuner shows its trial table on the chief only
            values = ", ".join(f"{k} {v:.4g}" for k, v in trial.hyperparameters.values.items()
                               if not k.startswith("tuner/"))
            print(f"worker {self.tuner_id}: {trial_label(trial.trial_id)}: {values}", flush=True)
        super().on_trial_begin(trial)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)  # the oracle ends the trial and saves it
        if self.trial_end_hook is not None:
            self.trial_end_hook()
        failed = trial.status in (keras_tuner.engine.trial.TrialStatus.FAILED,
                                  keras_tuner.engine.trial.TrialStatus.INVALID)
        self._failed_in_a_row = self._failed_in_a_row + 1 if failed else 0
        if self._failed_in_a_row >= MAX_FAILED_IN_A_ROW:
            last = (trial.message or "").strip().splitlines()
            raise RuntimeError(f"{self._failed_in_a_row} trials in a row failed"
                               + (f" (the last: {last[-1]})" if last else ""))

    def run_trial(self, trial, *args, **kwargs):
        trial_dir = self.get_trial_dir(trial.trial_id)
        result_path = os.path.join(trial_dir, TRIAL_FILE)
        if os.path.exists(result_path):  # finished, but its end never reached the oracle
            metrics = files.read_json(result_path)["metrics"]
        else:
            with runtime.released_graph_gradients():
                metrics = self._run_trial(trial, trial_dir, result_path)
        # keras-tuner takes numbers only: a clean accuracy the trial lacks stays out.
        return {name: value for name, value in metrics.items() if value is not None}

    def _run_trial(self, trial, trial_dir, result_path):
        hp = trial.hyperparameters
        seed = derived_seed(self.seed, "trial", trial.trial_id)
        runtime.start_run(self.precision, seed)
        gc.collect()
        rss_start = resident_mb()
        model = self.hypermodel.build(hp, seed=seed)

        first = int(hp.values.get("tuner/initial_epoch", 0))
        last = int(hp.values.get("tuner/epochs", self.hypermodel.config.epochs))
        checkpoint = os.path.join(trial_dir, CHECKPOINT_FILE)  # as a run folder keeps it
        try:
            history = restore_checkpoint(checkpoint, model)[0] if os.path.exists(checkpoint) else []
        except RunError as e:
            raise keras_tuner.errors.FailedTrialError(str(e))
        parent = hp.values.get("tuner/trial_id")
        if parent is not None and not history:
            # Hyperband promotes a trial: go on from its best epoch, optimizer
            # state and learning-rate schedule included.
            model.optimizer.build(model.trainable_variables)
            model.load_weights(self._get_checkpoint_fname(parent))
        best_path = self._get_checkpoint_fname(trial.trial_id)
        best = max((row[OBJECTIVE] for row in history), default=float("-inf"))
        if not os.path.exists(best_path):
            best = float("-inf")
        if history and self.verbose:
            print(f"resuming {trial_label(trial.trial_id)} after epoch {first + len(history)} of {last}")
        restored = len(history)
        start = time.perf_counter()
        if first + len(history) < last:
            try:
                self.hypermodel.fit(
                    hp, model, seed=seed, initial_epoch=first + len(history), epochs=last,
                    # The best weights before the checkpoint: a kill between the two
                    # then retrains that epoch, and saves its weights again if best.
                    callbacks=[_SaveBestWeights(best_path, best), Recorder(trial_dir, history),
                               *tensorboard_logs.callbacks_for(self.tensorboard_dir, trial_dir)],
                    verbose=self.verbose,
                )
            except RunError as e:  # a NaN loss: this trial's values are bad, not the search
                raise keras_tuner.errors.FailedTrialError(str(e))
        wall = time.perf_counter() - start
        del model
        keras.backend.clear_session(free_memory=True)

        top = max(history, key=lambda row: row[OBJECTIVE])
        metrics = {k: top[k] for k in ("val_accuracy", "val_loss", "accuracy", "loss")}
        metrics[CLEAN_ACCURACY] = top.get(CLEAN_ACCURACY)  # absent in epochs trained before it was kept
        files.write_json(result_path, {
            "format": FORMAT,
            "trial_id": trial.trial_id,
            "tuner_id": self.tuner_id,
            "seed": seed,
            "values": {k: v for k, v in hp.values.items()},
            "metrics": metrics,
            "best_epoch": top["epoch"],
            "last_val_accuracy": history[-1]["val_accuracy"],
            "epochs": last,
            "trained_epochs": len(history),
            "resumed_after_epoch": first + restored if restored else None,
            "train_seconds": round(sum(row["train_seconds"] for row in history), 3),
            "seconds": round(sum(row["seconds"] for row in history), 3),
            "wall_seconds_this_run": round(wall, 3),
            "rss_mb_start": rss_start,
            "rss_mb_end": resident_mb(),
            "precision": self.precision,
            **runtime.describe(),
        })
        if os.path.exists(checkpoint):
            os.remove(checkpoint)
        return metrics


def settings_of(*, config, space, tuner, epochs, seed, precision, data, limit_train,
                max_trials=None, factor=3, iterations=1):
    """The settings a search is compared on when it is continued."""
    return {
        "rung": config.name,
        "config": config.to_dict(),
        "tuner": tuner,
        "epochs": epochs,
        "seed": seed,
        "precision": precision,
        "space": [r.to_dict() for r in space],
        "hyperband": {"factor": factor, "iterations": iterations} if tuner == "hyperband" else None,
        "max_trials": max_trials,
        "data": {"description": data.description, "train": len(data.y_train), "val": len(data.y_val),
                 "limit_train": limit_train},
        "backend": keras.backend.backend(),
    }
