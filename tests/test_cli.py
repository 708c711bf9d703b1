import json
import os
import subprocess
import sys

import keras
import pytest

from kcifar import files
from kcifar.cli import run_rung
from kcifar.experiments import rung

TINY = rung("trick4").CONFIG.replace(widths=(4, 4, 4, 4), dense_units=8, batch_size=64)


def run(argv, capsys):
    try:
        result = run_rung(TINY, argv)
        code = 0
    except SystemExit as e:
        result, code = None, e.code
    captured = capsys.readouterr()
    return code, result, captured.out, captured.err


@pytest.mark.parametrize("flags, message", [
    (["--epochs", "0"], "--epochs must be at least 1. Received: --epochs 0"),
    (["--batch-size", "-3"], "--batch-size must be at least 1. Received: --batch-size -3"),
    (["--seeds", "1,x"], "--seeds must be integers"),
    (["--limit-train", "0"], "--limit-train must be at least 10 (one image per class). Received: --limit-train 0"),
    (["--limit-train", "3"], "--limit-train must be at least 10 (one image per class)"),
    (["--limit-train", "109"], "--limit-train must be at most 108, the training split's images. "
                               "Received: --limit-train 109"),
    (["--data", "/no/such/data"], "/no/such/data: no such file or folder"),
    (["--budget", "small", "--epochs", "3"], "--budget small fixes the epochs and training images"),
    (["--budget", "small", "--limit-train", "50"], "--budget small fixes the epochs and training images"),
])
def test_bad_flags_end_in_one_line(tiny_dir, tmp_path, capsys, flags, message):
    argv = ["--data", tiny_dir, "--out", str(tmp_path)] + flags
    code, _, _, err = run(argv, capsys)
    assert code == 2
    last = err.strip().splitlines()[-1]  # above it, at most the decoding progress bar
    assert message in last and last.startswith("python -m kcifar.experiments.trick4: error:")
    assert err.count("error") == 1
    assert not any(os.scandir(tmp_path))  # nothing half-written


@pytest.mark.parametrize("changes, message", [
    ({"dropout": 1.5}, "dropout must be in [0, 1). Received: dropout=1.5"),
    ({"l2": -0.1}, "l2 must be >= 0. Received: l2=-0.1"),
    ({"changes": {"dropuot": 0.2}}, "unknown config field(s): dropuot"),
    ({"rung": "trick3", "changes": {}}, "is for rung trick3, not trick4"),
])
def test_bad_config_file(tiny_dir, tmp_path, capsys, changes, message):
    path = tmp_path / "best.json"
    path.write_text(json.dumps(changes))
    code, _, _, err = run(["--data", tiny_dir, "--out", str(tmp_path / "runs"), "--config", str(path)], capsys)
    assert code == 2 and message in err
    assert not (tmp_path / "runs").exists()


def test_unwritable_out(tiny_dir, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code, _, _, err = run(["--data", tiny_dir, "--out", str(tmp_path / "file"), "--epochs", "1"], capsys)
    assert code == 1 and "cannot write to run folder" in err


@pytest.mark.parametrize("marker, found, advice", [
    ("metrics.json", "complete", "--resume to keep it (a complete run is skipped)"),
    ("partial.json", "partial", "--resume to continue it from its last finished epoch"),
    ("settings.json", "started", "--resume to continue it from its last finished epoch"),
])
def test_a_folder_holding_a_run_is_an_input_error_that_says_how_to_resume(tiny_dir, tmp_path, capsys, marker,
                                                                          found, advice):
    # Seed 1's folder holds a run: refused before seed 0 trains or any data loads.
    held = tmp_path / f"trick4-{keras.backend.backend()}-seed1"
    held.mkdir()
    (held / marker).write_text("{}")
    code, _, out, err = run(["--data", "/no/such/data", "--out", str(tmp_path), "--seeds", "0,1"], capsys)
    assert code == 2
    assert err.strip().splitlines() == [
        f"python -m kcifar.experiments.trick4: error: {held} already holds a {found} run; run the same command "
        f"with {advice}, or with --overwrite to delete it and start afresh"]
    assert os.listdir(tmp_path) == [held.name] and os.listdir(held) == [marker]


@pytest.mark.parametrize("quiet", [False, True])
def test_ctrl_c_mid_epoch_says_so_on_a_line_of_its_own(tiny_dir, tmp_path, capsys, monkeypatch, quiet):
    import kcifar.train

    def interrupted(config, data, run_dir, settings):
        if settings.verbose:
            keras.utils.Progbar(10).update(3, values=[("loss", 2.3826)])  # a bar's line, left open
        raise KeyboardInterrupt

    monkeypatch.setattr(kcifar.train, "train", interrupted)
    code, _, out, err = run(["--data", tiny_dir, "--out", str(tmp_path)] + ["--quiet"] * quiet, capsys)
    assert code == 130
    assert err.splitlines()[-1] == ("python -m kcifar.experiments.trick4: error: interrupted; run the same command "
                                    "with --resume to continue")
    if quiet:
        assert out == ""  # no bar, no line to end
    else:
        assert "loss: 2.3826" in out.splitlines()[-1] and out.endswith("\n")


def test_config_file_and_seeds_make_one_run_each(tiny_dir, tmp_path, capsys):
    best = tmp_path / "best.json"
    best.write_text(json.dumps({"rung": "trick4", "changes": {"dropout": 0.1, "l2": 0.002}, "val_accuracy": 0.5}))
    argv = ["--data", tiny_dir, "--out", str(tmp_path / "runs"), "--epochs", "1", "--seeds", "0,1",
            "--config", str(best), "--quiet", "--limit-train", "50"]
    code, results, out, _ = run(argv, capsys)
    assert code == 0 and [m["seed"] for m in results] == [0, 1]
    for seed in (0, 1):
        run_dir = tmp_path / "runs" / f"trick4-{keras.backend.backend()}-seed{seed}"
        settings, metrics = (files.read_json(run_dir / f) for f in ("settings.json", "metrics.json"))
        assert settings["config"]["dropout"] == 0.1 and settings["config"]["l2"] == 0.002
        assert settings["data"]["train"] == 50
        assert settings["budget"] == metrics["budget"] == "custom"  # other epochs and images than the rung's
    assert out.count("  run folder: ") == 2 and out.count(" gap ") == 2  # one summary line per seed


def test_a_budget_names_its_folder_and_is_recorded(tiny_dir, tmp_path, capsys, monkeypatch):
    from kcifar import budgets

    monkeypatch.setitem(budgets.BUDGETS, "small", budgets.Budget(50, 2))
    code, results, _, _ = run(["--data", tiny_dir, "--out", str(tmp_path), "--budget", "small", "--quiet"], capsys)
    assert code == 0
    run_dir = tmp_path / f"trick4-small-{keras.backend.backend()}-seed0"
    settings, metrics = (files.read_json(run_dir / f) for f in ("settings.json", "metrics.json"))
    assert settings["budget"] == metrics["budget"] == "small"
    assert settings["config"]["epochs"] == metrics["epochs"] == 2 and settings["data"]["train"] == 50
    # The code version: this checkout's commit (or nothing outside a git checkout).
    assert set(metrics["code"]) == set(settings["code"]) == {"commit", "dirty"}
    assert not os.path.isabs(settings["data"]["source"]) and not os.path.isabs(metrics["data"]["source"])


@pytest.mark.parametrize("flags, budget", [
    ([], "full"), (["--epochs", "50"], "full"),  # the rung's own epochs
    (["--epochs", "3"], "custom"), (["--limit-train", "500"], "custom"), (["--budget", "small"], "small"),
])
def test_a_run_of_the_full_budget_with_other_epochs_or_images_records_custom(tmp_path, flags, budget):
    from kcifar import results
    from kcifar.cli import checked_flags, parser, recorded_budget

    args = parser("p", "").parse_args(flags)
    config, _ = checked_flags(TINY, args)
    assert recorded_budget(args, TINY, config) == budget
    assert results.folder_name("trick4", budget, "jax", 0) == ("trick4-small-jax-seed0" if budget == "small"
                                                               else "trick4-jax-seed0")


def test_flags_are_checked_before_keras_loads(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from kcifar.experiments import trick4; from kcifar.cli import run_rung\n"
         "try:\n    run_rung(trick4.CONFIG, ['--epochs', '0'])\n"
         "except SystemExit as e:\n    print('keras' in sys.modules, e.code)"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.stdout.split() == ["False", "2"]


def test_unknown_backend_is_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "kcifar.experiments.trick4", "--out", str(tmp_path)],
        env=dict(os.environ, KERAS_BACKEND="theano"), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "python -m kcifar.experiments.trick4: error: KERAS_BACKEND must be one of tensorflow, torch, jax. "
        "Received: KERAS_BACKEND='theano'"
    ]


def test_help_explains_every_flag(capsys):
    with pytest.raises(SystemExit):
        run_rung(TINY, ["--help"])
    out = capsys.readouterr().out
    for flag in ("--data", "--epochs", "--batch-size", "--seed", "--seeds", "--limit-train", "--out",
                 "--precision", "--resume", "--overwrite", "--deterministic", "--config", "--budget"):
        assert flag in out


def test_only_the_pretrained_step_takes_weights(capsys):
    from kcifar.experiments import pretrained

    assert run(["--weights", "none"], capsys)[0] == 2  # a rung trains from scratch: the flag is unknown there
    with pytest.raises(SystemExit):
        pretrained.main(["--help"])
    assert "--weights" in capsys.readouterr().out


@pytest.mark.parametrize("module", ["kcifar.experiments", "kcifar.ladder.__main__", "kcifar.tune.__main__",
                                    "kcifar.bench.__main__", "kcifar.report.__main__", "kcifar.evaluate",
                                    "kcifar.predict", "kcifar.data.__main__", "kcifar.experiments.trick4"])
def test_every_command_refuses_a_flag_in_one_line_of_the_same_form(module, capsys):
    import importlib

    prog = "python -m " + module.removesuffix(".__main__")
    args = ["--no-such-flag"]
    if module == "kcifar.experiments.trick4":
        main = lambda argv: run_rung(importlib.import_module(module).CONFIG, argv)  # noqa: E731
    else:
        main = importlib.import_module(module if module != "kcifar.experiments" else module + ".__main__").main
        args = {"kcifar.ladder.__main__": ["--run", "baseline"], "kcifar.tune.__main__": ["--rung", "trick4"],
                "kcifar.evaluate": ["m.keras"], "kcifar.predict": ["m.keras", "a.png"],
                "kcifar.data.__main__": ["info"]}.get(module, []) + args
    try:
        status = main(args)
    except SystemExit as e:
        status = e.code
    err = capsys.readouterr().err.splitlines()
    assert status == 2 and len(err) == 1 and err[0].startswith(f"{prog}: error: "), err
    assert "--no-such-flag" in err[0]
