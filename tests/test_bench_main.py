import difflib
import glob
import json
import os

import keras
import pytest
from helpers import REPO

import kcifar
from kcifar import machine
from kcifar.bench import __main__ as bench
from kcifar.bench import record


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--rung", "nope"], "--rung must be one of"),
        (["--steps", "0"], "--steps must be at least 1"),
        (["--threads", "0"], "--threads must be at least 1"),
        (["--steps", "400"], "--steps x --batch-size must be at most 45000 images"),
        (["--warmup", "400"], "--warmup x --batch-size must be at most 45000 images"),
        (["--backends", "mxnet"], "--backends must be"),
        (["--backends", ","], "--backends must be"),
        (["--precision", "float64"], "invalid choice"),
        (["--batch-size", "x"], "invalid int value"),
        (["--bogus"], "unrecognized arguments"),
        (["--data", "/no/such/data"], "no such file or folder"),
        (["--patch", "/no/such.diff"], "no such file"),
        (["--widths", "8,8,8"], "--widths must be four positive integers"),
        (["--widths", "8,8,x,8"], "--widths must be four positive integers"),
        (["--widths", "8,8,0,8"], "--widths must be four positive integers"),
        (["--widths", "8,8,8,8", "--full"], "--widths measures one rung's network; not with --full"),
    ],
)
def test_bad_flags_give_one_line_and_exit_2(argv, words, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(argv + ["--out", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("python -m kcifar.bench: error: ") and words in err
    assert os.listdir(tmp_path) == []


def test_a_patch_that_does_not_apply_is_a_usage_error(tmp_path, capsys):
    bad = tmp_path / "bad.diff"
    bad.write_text("--- a/kcifar/models.py\n+++ b/kcifar/models.py\n@@ -1,1 +1,1 @@\n-no such line\n+x\n")
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--patch", str(bad), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2 and "does not apply" in capsys.readouterr().err


def test_patched_copy_carries_the_change(tmp_path):
    with open(os.path.join(REPO, "kcifar", "bench", "__init__.py")) as f:
        lines = f.readlines()
    diff = difflib.unified_diff(lines, ['"""PATCHED\n'] + lines[1:],
                                "a/kcifar/bench/__init__.py", "b/kcifar/bench/__init__.py")
    good = tmp_path / "good.diff"
    good.write_text("".join(diff))
    root = bench.patched_root([str(good)], str(tmp_path / "copy"))
    with open(os.path.join(root, "kcifar", "bench", "__init__.py")) as f:
        assert f.readline() == '"""PATCHED\n'
    assert os.path.exists(os.path.join(root, "kcifar", "models.py"))
    with open(os.path.join(REPO, "kcifar", "bench", "__init__.py")) as f:
        assert f.readline() != '"""PATCHED\n'  # the working tree is untouched


def test_runs_end_to_end_and_writes_the_results_file(tmp_path, capsys):
    """In this process (it runs the backend already): the whole tool but the child."""
    backend = keras.backend.backend()
    argv = ["--backends", backend, "--batch-size", "4", "--steps", "1", "--windows", "2", "--warmup", "0",
            "--out", str(tmp_path)]
    bench.main(argv)
    (path,) = glob.glob(str(tmp_path / "baseline-b4-float32-*.json"))
    out = capsys.readouterr().out
    assert f"wrote {path}" in out and "keras_fit" in out and "vs plain" in out and "round 2/2" in out
    with open(path) as f:
        results = json.load(f)
    # The command as typed, less this machine's folders: --out by its name only.
    assert results["format"] == 1 and results["command"] == "python -m kcifar.bench " + " ".join(
        argv[:-1] + [tmp_path.name])
    with open(path) as f:
        assert str(tmp_path) not in f.read()
    assert set(results["machine"]) >= {"cpu", "cores", "load_average_at_start", "date", "keras", "numpy"}
    assert results["machine"]["environment"]["KERAS_BACKEND"] == backend
    assert results["machine"]["code"] == machine.code_version()  # the commit the figures were measured at
    assert results["settings"]["batch_size"] == 4 and results["numpy_matmul_gflops"] > 0
    mine = results["backends"][backend]
    assert mine["backend"] == backend and mine["matmul_gflops"] > 0 and mine["kcifar"] == kcifar.__version__
    assert set(mine) >= {"backend_version", "keras_version", "device", "rungs"}
    entry = mine["rungs"]["baseline"]
    assert entry["train_flops_per_image"] == 3 * 106_637_312
    assert entry["params"] == entry["plain_params"] == 1_702_186
    assert set(entry["paths"]) == {*entry["plain"], "keras_step", "keras_fit", "feed"}
    for name, figures in entry["paths"].items():
        assert len(figures["windows_images_per_second"]) == 2 and figures["images_per_second"] > 0, name
    assert entry["best_plain"] in entry["plain"] and entry["ratios"][entry["best_plain"]] == 1.0
    assert entry["ratios"]["keras_fit"] > 0 and entry["cpu_ratios"]["keras_step"] > 0
    assert set(results["summary"]["keras_vs_plain"][backend]) == {"reference", "keras_step", "keras_fit"}
    assert any(line.startswith(f"{backend}: keras_fit / ") for line in results["findings"])


def test_widths_measure_the_rungs_network_at_other_widths(tmp_path, capsys):
    """Rung 0 at other widths: the Keras network and the hand-written one
    both take them, and the file says so in its name and settings."""
    backend = keras.backend.backend()
    bench.main(["--backends", backend, "--widths", "8,16,16,32", "--batch-size", "4", "--steps", "1",
                "--windows", "1", "--warmup", "0", "--out", str(tmp_path)])
    (path,) = glob.glob(str(tmp_path / "baseline-w8x16x16x32-b4-float32-*.json"))
    with open(path) as f:
        results = json.load(f)
    assert results["settings"]["widths"] == [8, 16, 16, 32]
    entry = results["backends"][backend]["rungs"]["baseline"]
    # 3x3 convolutions, two a stage, then dense 512 on a 2x2x32 map and the 10 logits.
    convs = sum(9 * i * o + o for i, o in [(3, 8), (8, 8), (8, 16), (16, 16), (16, 16), (16, 16), (16, 32), (32, 32)])
    assert entry["params"] == entry["plain_params"] == convs + (2 * 2 * 32 * 512 + 512) + (512 * 10 + 10)


def test_a_failing_child_ends_with_one_line(tmp_path):
    backend = keras.backend.backend()
    spec = {"rungs": ["nope"], "batch_size": 4, "precision": "float32", "steps": 1, "windows": 1,
            "warmup": 0, "seed": 0, "threads": 1, "data": None, "profile": False}
    with pytest.raises(bench.BenchError, match=f"^{backend} failed: .*unknown rung 'nope'"):
        bench.run_worker(backend, spec, bench.backend_env(backend, ""), str(tmp_path))


@pytest.mark.parametrize("arg, recorded", [
    ("/any/where/cifar10-jpg.tar.xz", "cifar10-jpg.tar.xz"), ("--data=/d/c10/", "--data=c10"),
    ("experiments/bench/patches/a.diff", "experiments/bench/patches/a.diff"), ("--threads", "--threads"),
    ("--config=a=b", "--config=a=b"),
])
def test_recorded_arg_keeps_no_absolute_path(arg, recorded):
    assert record.recorded_arg(arg) == recorded


def test_augmentation_share_per_wall_and_cpu_second():
    """The block's share from rung 7's windows with and without it, in turns:
    a busy round stretches both paths' wall time, not their CPU time."""
    fit = {"windows_images_per_second": [40.0, 20.0, 40.0], "windows_cpu_ms_per_image": [50.0, 50.0, 50.0]}
    bare = {"windows_images_per_second": [50.0, 25.0, 50.0], "windows_cpu_ms_per_image": [45.0, 45.0, 45.0]}
    alone = {"rung": "trick7", "128": 4000.0, "512": 5000.0}
    results = {"settings": {"rung": "trick7", "batch_size": 128}, "backends": {"jax": {
        "augmentation_images_per_second": alone, "rungs": {"trick7": {
            "paths": {"keras_fit": fit, "feed": {"cpu_ms_per_image": 1.0}, "keras_fit_no_augmentation": bare}}}}}}
    for path in (fit, bare):
        path["cpu_ms_per_image"] = path["windows_cpu_ms_per_image"][0]
        path["images_per_second"] = path["windows_images_per_second"][0]
    s = bench.summary(results)
    assert s["augmentation_share"] == {"jax": {"trick7": 0.2}}  # 1 - 40/50
    assert s["augmentation_share_cpu"]["jax"]["trick7"] == pytest.approx(0.1, abs=1e-3)  # 1 - 45/50
    assert s["augmentation_share_alone"] == {"jax": {"trick7": 0.01}}  # 40 / 4000 at batch 128
    results["summary"], results["memory"] = s, {}
    lines = bench.findings(results)
    assert "jax: trick7's augmentation costs 20.0% of its fit step (target <= 5%; per CPU-second 10.0%)" in lines
    assert "jax: trick7's augmentation block timed alone is 1.0% of its fit step's time at batch 128" in lines
    results["settings"]["batch_size"] = 64  # the block was not timed at this batch size
    assert "augmentation_share_alone" not in bench.summary(results)


def test_profile_lines_table_operations_when_every_path_has_them():
    profile = {"steps": 4,
               "keras_step": {"python": {"f.py:1(f)": [2.0, 1.0]}, "ops": {"Mul": [3.5, 10.0], "Mean": [1.0, 2.0]}},
               "tf_function": {"python": {"f.py:1(f)": [1.0, 1.0]}, "ops": {"Mul": [1.5, 4.0]}}}
    lines = bench.profile_lines("tensorflow", profile)
    assert "profile, operations" in lines[1] and "over 4 steps" in lines[1]
    assert lines[3].split()[:2] == ["Mul", "3.5"] and lines[4].split()[-1] == "-"  # largest first; Mean only in one
    assert lines[5].replace(" ", "") == "alloperations4.5(12)1.5(4)"  # ms and operations dispatched per step
    del profile["tf_function"]["ops"]
    assert "Python functions" in bench.profile_lines("tensorflow", profile)[1]
    assert bench.profile_lines("jax", None) == []


def test_profile_lines_say_what_dynamo_made_of_the_compiled_step():
    ops = {"aten::mm": [1.0, 2.0]}
    profile = {"steps": 2, "keras_step": {"ops": ops},
               "keras_jit_step": {"ops": ops, "dynamo": {"graphs": 3, "graph_breaks": 2,
                                                         "break_reasons": {"disabled function": 2}}}}
    lines = bench.profile_lines("torch", profile)
    assert lines[-2:] == ["torch: keras_jit_step under torch._dynamo.explain: 3 graphs, 2 graph breaks",
                          "  2 x disabled function"]
    profile["keras_jit_step"]["dynamo"] = {"error": "AssertionError: no offset"}
    assert bench.profile_lines("torch", profile)[-1] == ("torch: keras_jit_step under torch._dynamo.explain: "
                                                         "failed (AssertionError: no offset)")
