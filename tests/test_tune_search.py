"""kcifar.tune.search: seeds, the Hyperband budget, the oracle's state after a
kill, and a finished trial that is never trained twice."""

import json
import os

import keras_tuner
import pytest

from kcifar import files
from kcifar.experiments import rung
from kcifar.tune import project, search
from kcifar.tune.hypermodel import RungHyperModel
from kcifar.tune.space import search_space


def test_derived_seeds_are_fixed_distinct_and_never_zero():
    seeds = [search.derived_seed(0, "trial", f"{i:02d}") for i in range(200)]
    assert seeds == [search.derived_seed(0, "trial", f"{i:02d}") for i in range(200)]
    assert len(set(seeds)) == 200 and all(1 <= s < 2**31 for s in seeds)
    assert search.derived_seed(1, "trial", "00") != seeds[0]
    assert search.derived_seed(0, "oracle") not in seeds


@pytest.mark.parametrize("max_epochs, factor, iterations, expected", [
    (1, 3, 1, (1, 1)),  # one bracket of one trial
    (2, 2, 1, (5, 7)),  # brackets of 2x1 epochs + 1 promoted (+1), and 2x2 epochs
    (3, 3, 1, (6, 11)),  # 3x1 + 1 promoted (+2), and 2x3
    (2, 2, 2, (10, 14)),
])
def test_hyperband_budget(max_epochs, factor, iterations, expected):
    assert search.hyperband_budget(max_epochs, factor, iterations) == expected


@pytest.mark.parametrize("tuner, kwargs, cls", [
    ("random", {"max_trials": 4}, search.RandomOracle),
    ("bayesian", {"max_trials": 4}, search.BayesianOracle),
    ("hyperband", {"epochs": 3}, search.HyperbandOracle),
])
def test_make_oracle(tuner, kwargs, cls):
    oracle = search.make_oracle(tuner, seed=0, **kwargs)
    assert isinstance(oracle, cls)
    assert oracle.objective.name == "val_accuracy" and oracle.objective.direction == "max"
    assert oracle.seed == search.derived_seed(0, "oracle")
    assert getattr(oracle, "max_epochs", None) == kwargs.get("epochs")
    assert oracle.max_trials == kwargs.get("max_trials")


def _oracle(folder):
    oracle = search.RandomOracle(objective=keras_tuner.Objective("val_accuracy", "max"), max_trials=5, seed=1)
    oracle._set_project_dir(str(folder), "p")
    hp = keras_tuner.HyperParameters()
    hp.Float("dropout", 0.0, 0.6)
    oracle.update_space(hp)
    return oracle


def test_oracle_state_survives_a_kill(tmp_path):
    oracle = _oracle(tmp_path)
    first = oracle.create_trial("w1")
    second = oracle.create_trial("w2")
    third = oracle.create_trial("w3")
    # w3's trial ended but the kill came before oracle.json said so.
    third.status = "COMPLETED"
    oracle.update_trial(third.trial_id, {"val_accuracy": 0.5})
    saved = files.read_json(os.path.join(tmp_path, "p", "oracle.json"))
    oracle.end_trial(third)
    files.write_json(os.path.join(tmp_path, "p", "oracle.json"), saved)
    # A fourth trial was written but the kill came before oracle.json listed it.
    fourth = oracle.create_trial("w4")
    files.write_json(os.path.join(tmp_path, "p", "oracle.json"), saved)

    again = _oracle(tmp_path)
    again.reload()
    # Interrupted trials stay with the tuner that ran them: restarting it resumes them.
    assert {t: trial.trial_id for t, trial in again.ongoing_trials.items()} == {
        "w1": first.trial_id, "w2": second.trial_id}
    assert again.create_trial("w2").trial_id == second.trial_id
    assert again.end_order == [third.trial_id]
    assert again._retry_queue == [fourth.trial_id]
    assert again.create_trial("w5").trial_id == fourth.trial_id  # not lost, not duplicated
    assert len(again.trials) == 4


def test_state_files_are_written_whole_or_not_at_all(tmp_path, monkeypatch):
    oracle = _oracle(tmp_path)
    trial = oracle.create_trial("tuner0")
    paths = [os.path.join(tmp_path, "p", name) for name in (
        "oracle.json", os.path.join(f"trial_{trial.trial_id}", "trial.json"))]
    before = [open(path).read() for path in paths]
    for path in paths:
        json.loads(open(path).read())
    trial.status = "COMPLETED"

    def killed(*args):  # a kill after the new file is written, before the rename
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    for save in (oracle.save, lambda: oracle._save_trial(trial)):
        with pytest.raises(KeyboardInterrupt):  # keras-tuner's own writes never rename
            save()
    assert [open(path).read() for path in paths] == before
    assert not [n for n in os.listdir(os.path.join(tmp_path, "p")) if ".tmp-" in n]


def test_failed_trials_in_a_row_stop_a_search_that_the_same_command_continues(tiny_data, tmp_path,
                                                                             monkeypatch):
    config = rung("trick4").CONFIG.replace(epochs=1)

    def tuner():
        return search.RungTuner(search.make_oracle("random", seed=0, max_trials=5),
                                RungHyperModel(config, tiny_data, search_space(config)),
                                directory=str(tmp_path), project_name="p")

    def nan_loss(self, trial, *args):
        raise keras_tuner.errors.FailedTrialError(f"trial {trial.trial_id}: loss became NaN")

    monkeypatch.setattr(search.RungTuner, "_run_trial", nan_loss)
    with pytest.raises(RuntimeError, match=r"^3 trials in a row failed \(the last: .*trial 2: loss became NaN\)"):
        tuner().search(verbose=0)
    folder = tmp_path / "p"
    statuses = {t: files.read_json(folder / f"trial_{t}" / "trial.json")["status"] for t in ("0", "1", "2")}
    assert statuses == {"0": "FAILED", "1": "FAILED", "2": "FAILED"}  # the last one saved too
    assert files.read_json(folder / "oracle.json")["ongoing_trials"] == {}

    tuner().search(verbose=0)  # new trials, not the failed ones again; two fit in max_trials
    assert sorted(p.name for p in folder.glob("trial_*")) == [f"trial_{t}" for t in range(5)]


def test_finished_trial_is_reported_again_not_retrained(tiny_data, tmp_path, monkeypatch):
    config = rung("trick4").CONFIG.replace(epochs=1)
    hypermodel = RungHyperModel(config, tiny_data, search_space(config))
    tuner = search.RungTuner(search.make_oracle("random", seed=0, max_trials=2), hypermodel,
                             directory=str(tmp_path), project_name="p")
    trial = tuner.oracle.create_trial("tuner0")
    metrics = {"val_accuracy": 0.25, "val_loss": 2.0, "accuracy": 0.5, "loss": 1.0}
    files.write_json(os.path.join(tuner.get_trial_dir(trial.trial_id), project.TRIAL_FILE), {"metrics": metrics})

    def no_training(*args, **kwargs):
        raise AssertionError("a finished trial was built again")

    monkeypatch.setattr(hypermodel, "build", no_training)
    assert tuner.run_trial(trial) == metrics
