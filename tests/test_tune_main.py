"""python -m kcifar.tune end to end on tiny data: a search, its resume after
kill -9, and one clear line for each bad input."""

import json
import os
import re
import subprocess
import sys
import time

import keras
import pytest
from helpers import REPO, subprocess_env

from kcifar import cli
from kcifar.experiments import rung
from kcifar.tune import hypermodel, project, search
from kcifar.tune.__main__ import main

# One batch of 54 of the 108 tiny training images per epoch: one step shape,
# so one compiled training step per trial (JAX compiles each shape anew).
SMALL = ["--limit-train", "54", "--batch-size", "54"]


def search_argv(tiny_dir, out, *extra):
    return ["--rung", "trick4", "--data", tiny_dir, "--out", str(out), "--project", "p", *SMALL, "--quiet", *extra]


def assert_one_error_line(err, message):
    errors = [line for line in err.splitlines() if line.startswith("python -m kcifar.tune: error: ")]
    assert len(errors) == 1 and message in errors[0], err  # (the data loader's progress bar may precede it)


def read_json(*parts):
    with open(os.path.join(*parts)) as f:
        return json.load(f)


def run_tune(argv, tmp_path_factory, capsys):
    """(exit status, stdout) of `python -m kcifar.tune ARGV`.

    Under JAX in a child process: JAX compiles each trial's training step anew
    (a trial's dropout rate and lambda are constants of the program), and the
    children share a compilation cache, so trial k of the session's seed-0
    searches compiles once. TensorFlow and torch run here, in this process.
    """
    if keras.backend.backend() != "jax":
        status = main(argv)
        return status, capsys.readouterr().out
    done = subprocess.run([sys.executable, "-m", "kcifar.tune", *argv], cwd=REPO, env=subprocess_env(tmp_path_factory),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.returncode, done.stdout


def test_search_extends_continues_and_exports_a_best_config(tiny_dir, tmp_path, tmp_path_factory, capsys,
                                                            monkeypatch):
    # keras-tuner's own run_trial imports tensorboard on TensorFlow, which
    # TensorFlow 2.21 no longer installs; the search must not need it.
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    folder = tmp_path / "p"
    argv = search_argv(tiny_dir, tmp_path, "--epochs", "1")
    outputs = [run_tune(argv + ["--max-trials", "1"], tmp_path_factory, capsys)[1]]
    outputs.append(run_tune(argv + ["--max-trials", "2"], tmp_path_factory, capsys)[1])  # extends the search
    first = {t: (folder / f"trial_{t}" / project.TRIAL_FILE).read_bytes() for t in ("0", "1")}
    outputs.append(run_tune(argv + ["--max-trials", "2"], tmp_path_factory, capsys)[1])  # complete: nothing to do
    assert ["search: starting" in o for o in outputs] == [True, False, False]
    assert ["search: continuing" in o for o in outputs] == [False, True, True]
    assert {t: (folder / f"trial_{t}" / project.TRIAL_FILE).read_bytes() for t in ("0", "1")} == first  # not rerun
    out = outputs[-1]

    rows = read_json(folder, "summary.json")["trials"]
    assert [(r["trial"], r["status"], r["epochs"]) for r in rows] == [("0", "COMPLETED", 1), ("1", "COMPLETED", 1)]
    assert rows[0]["seed"] != rows[1]["seed"]  # each trial seeds itself
    for t in ("0", "1"):  # each trial keeps its own checkpoints
        assert sorted(os.listdir(folder / f"trial_{t}")) == [
            "checkpoint.weights.h5", "history.csv", project.TRIAL_FILE, "trial.json"]
    assert (folder / "summary.csv").read_text().count("\n") == 3
    assert (folder / "summary.png").stat().st_size > 0

    best = read_json(folder, "best_config.json")
    top = max(rows, key=lambda r: r["val_accuracy"])
    assert best["rung"] == "trick4" and best["val_accuracy"] == top["val_accuracy"]
    assert best["changes"] == {"dropout": top["dropout"], "l2": top["l2"], "batch_size": 54}  # SMALL's
    args = cli.parser("trick4", "").parse_args(["--config", str(folder / "best_config.json")])
    config = cli.configure(rung("trick4").CONFIG, args)
    assert (config.dropout, config.l2, config.batch_size) == (top["dropout"], top["l2"], 54)
    assert f"--config {folder / 'best_config.json'}" in out


def test_trials_are_numbered_as_keras_tuner_shows_them(tiny_dir, tmp_path, tmp_path_factory, capsys):
    argv = [a for a in search_argv(tiny_dir, tmp_path, "--epochs", "1", "--max-trials", "2") if a != "--quiet"]
    _, out = run_tune(argv, tmp_path_factory, capsys)
    assert "Running Trial #1" in out and "Running Trial #2" in out  # keras-tuner's own lines
    shown = dict(re.findall(r"Trial (\d+) Complete \[[^\]]*\]\s+val_accuracy: (\S+)", out))
    result = read_json(tmp_path, "p", "summary.json")
    assert [(r["number"], r["trial"]) for r in result["trials"]] == [(1, "0"), (2, "1")]
    best = result["best"]
    # The trial kcifar calls best is the one keras-tuner showed under that number, with that score.
    assert f"best: trial {best['number']} (trial_{best['trial']}) val_accuracy" in out
    assert float(shown[str(best["number"])]) == best["val_accuracy"]
    assert read_json(tmp_path, "p", "best_config.json")["trial_number"] == best["number"]


def test_ctrl_c_mid_trial_says_so_on_a_line_of_its_own(capsys, monkeypatch):
    import kcifar.tune.__main__ as tune_main

    def interrupted(args):
        keras.utils.Progbar(10).update(3, values=[("loss", 2.3826)])  # a trial's bar, left open
        raise KeyboardInterrupt

    monkeypatch.setattr(tune_main, "run", interrupted)
    assert main(["--rung", "trick4"]) == 130
    out, err = capsys.readouterr()
    assert "loss: 2.3826" in out.splitlines()[-1] and out.endswith("\n")
    assert err.splitlines() == ["python -m kcifar.tune: interrupted; run the same command again to continue "
                                "(finished trials are kept)"]


def test_search_never_gets_the_test_set(tiny_dir, tmp_path, monkeypatch):
    seen = []

    class Spy(hypermodel.RungHyperModel):
        def __init__(self, config, data, space):
            seen.append(data)
            super().__init__(config, data, space)

    monkeypatch.setattr(hypermodel, "RungHyperModel", Spy)
    monkeypatch.setattr(search.RungTuner, "search", lambda self, **kwargs: None)  # no trials: just the set-up
    assert main(search_argv(tiny_dir, tmp_path, "--max-trials", "1")) == 0
    assert len(seen) == 1 and len(seen[0].y_test) == 0 and len(seen[0].x_test) == 0
    assert (len(seen[0].y_train), len(seen[0].y_val)) == (54, 12)


def test_resume_after_kill(tiny_dir, tmp_path, tmp_path_factory, capsys):
    argv = search_argv(tiny_dir, tmp_path, "--max-trials", "2", "--epochs", "2")
    folder = tmp_path / "p"
    log = open(tmp_path / "killed.log", "w")
    child = subprocess.Popen([sys.executable, "-m", "kcifar.tune", *argv], cwd=REPO,
                             env=subprocess_env(tmp_path_factory), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        # Trial 1's checkpoint appears after its first epoch: trial 0 is done, trial 1 half done.
        while not (folder / "trial_1" / "checkpoint.npz").exists():
            assert child.poll() is None, (tmp_path / "killed.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the search never reached trial 1"
            time.sleep(0.02)
    finally:
        child.kill()  # SIGKILL: no clean-up of any kind
        child.wait(30)
        log.close()
    done = (folder / "trial_0" / project.TRIAL_FILE).read_bytes()

    status, out = run_tune(argv, tmp_path_factory, capsys)  # the same command continues
    assert status == 0 and "search: continuing" in out
    assert (folder / "trial_0" / project.TRIAL_FILE).read_bytes() == done  # not rerun
    resumed = read_json(folder, "trial_1", project.TRIAL_FILE)
    assert resumed["resumed_after_epoch"] == 1 and resumed["trained_epochs"] == 2
    history = (folder / "trial_1" / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in history] == ["epoch", "1", "2"]
    rows = read_json(folder, "summary.json")["trials"]
    assert [(r["trial"], r["status"], r["epochs"]) for r in rows] == [("0", "COMPLETED", 2), ("1", "COMPLETED", 2)]
    assert not (folder / "trial_1" / "checkpoint.npz").exists()


@pytest.mark.slow
def test_hyperband_promotes_trials(tiny_dir, tmp_path, tmp_path_factory, capsys):
    # --epochs 2 --factor 2: two brackets, 5 trials; one trial goes on from another's best epoch.
    argv = search_argv(tiny_dir, tmp_path, "--tuner", "hyperband", "--epochs", "2", "--factor", "2")
    assert run_tune(argv, tmp_path_factory, capsys)[0] == 0
    rows = read_json(tmp_path, "p", "summary.json")["trials"]
    assert len(rows) == 5 and all(r["status"] == "COMPLETED" for r in rows)
    promoted = [r for r in rows if r["from_trial"] is not None]
    assert len(promoted) == 1
    parent = next(r for r in rows if r["trial"] == promoted[0]["from_trial"])
    assert (promoted[0]["epochs"], promoted[0]["trained_epochs"]) == (2, 1)
    assert parent["epochs"] == 1
    assert (promoted[0]["dropout"], promoted[0]["l2"]) == (parent["dropout"], parent["l2"])
    assert sum(r["trained_epochs"] for r in rows) == 7


@pytest.mark.parametrize("extra, message", [
    (["--rung", "trick99"], "unknown rung 'trick99'"),
    (["--rung", "baseline"], "rung baseline has no dropout and no L2"),
    (["--rung", "trick3", "--l2-range", "1e-5,1e-3"], "rung trick3 has no l2"),
    (["--tuner", "grid"], "unknown tuner 'grid'"),
    (["--dropout-range", "0.3,0.3"], "dropout range is empty or inverted"),
    (["--l2-range", "1e-2,1e-6"], "l2 range is empty or inverted"),
    (["--dropout-range", "0.1"], "two numbers"),
    (["--max-trials", "0"], "--max-trials must be at least 1. Received: --max-trials 0"),
    (["--max-trials", "x"], "invalid int value"),
    (["--epochs", "0"], "--epochs must be at least 1. Received: --epochs 0"),
    (["--tuner", "hyperband", "--max-trials", "5"], "hyperband takes no --max-trials"),
    (["--tuner", "hyperband", "--factor", "1"], "--factor must be at least 2. Received: --factor 1"),
    (["--precision", "float8"], "argument --precision: invalid choice: 'float8'"),
    (["--project", "../elsewhere"], "--project must be"),
    (["--worker", "chief-2"], "must not contain 'chief'"),
    (["--worker", "w1", "--overwrite"], "only the chief may --overwrite"),
    (["--chief", "--worker", "w1"], "not allowed with argument"),
    (["--oracle", "localhost"], "--oracle must be HOST:PORT"),
    (["--data", "/no/such/folder"], "no such file or folder"),
    (["--rung", "trick3", "--hold", "dropout"], "nothing left to search"),
    (["--hold", "noise"], "argument --hold: invalid choice: 'noise'"),
])
def test_bad_input_is_one_line(tiny_dir, tmp_path, capsys, extra, message):
    assert main(search_argv(tiny_dir, tmp_path) + extra) == 2
    assert_one_error_line(capsys.readouterr().err, message)
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("setup, message", [
    ({"format": 99, "keras_tuner": "1.4.8", "settings": {}}, "written by kcifar.tune format 99"),
    ({"format": 1, "keras_tuner": "1.4.8", "settings": {"rung": "trick4", "epochs": 50}}, "other settings"),
    (None, "not a kcifar.tune project"),
])
def test_incompatible_project_is_one_line_and_kept(tiny_dir, tmp_path, capsys, setup, message):
    folder = tmp_path / "p"
    (folder / "trial_0").mkdir(parents=True)
    (folder / "trial_0" / "trial.json").write_text("{}")
    if setup is not None:
        setup["keras_tuner"] = project.keras_tuner_version()
        (folder / project.SETTINGS_FILE).write_text(json.dumps(setup))
    before = sorted(p.name for p in folder.rglob("*"))
    assert main(search_argv(tiny_dir, tmp_path, "--max-trials", "1", "--epochs", "1")) == 2
    assert_one_error_line(capsys.readouterr().err, message)
    assert sorted(p.name for p in folder.rglob("*")) == before


def test_ambient_keras_tuner_variables_are_refused(tiny_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    assert main(search_argv(tiny_dir, tmp_path)) == 2
    assert_one_error_line(capsys.readouterr().err, "KERASTUNER_ORACLE_IP set in the environment")
