"""The GPU command of docs/gpu.md, run on the CPU on the tests' tiny data:
every rung completes and the report builds the ladder from the run folders."""

import os
import shlex
import subprocess
import sys

import keras
import pytest
from helpers import REPO, subprocess_env

from kcifar import files
from kcifar.experiments import RUNGS

PREFIX = "python -m kcifar.ladder --run baseline..trick9"


def gpu_page_commands():
    """The ladder commands of docs/gpu.md's "The whole ladder on one GPU"
    section, by backend."""
    page = open(os.path.join(REPO, "docs", "gpu.md"), encoding="utf-8").read()
    section = page[page.index("## The whole ladder on one GPU"):]
    section = section[:section.index("\n## ", 1)]
    found = {}
    for line in section.splitlines():
        words = shlex.split(line) if PREFIX in line else []
        if words and words[0].startswith("KERAS_BACKEND="):
            found[words[0].split("=", 1)[1]] = words[1:]
    return found


def test_the_gpu_page_gives_the_command_for_torch_and_jax():
    commands = gpu_page_commands()
    assert set(commands) == {"torch", "jax"}
    for words in commands.values():
        assert {"--jobs", "--time-limit", "--precision", "--seed"} <= set(words)


def test_the_gpu_command_trains_every_rung_and_the_report_draws_the_ladder(tiny_dir, tmp_path, tmp_path_factory):
    backend = keras.backend.backend()
    commands = gpu_page_commands()
    if backend not in commands:
        pytest.skip(f"docs/gpu.md gives no {backend} command")
    words = commands[backend]  # its KERAS_BACKEND= is the test's own backend
    out = tmp_path / "runs"
    command = [sys.executable, *words[1:], "--data", tiny_dir, "--limit-train", "64", "--epochs", "1",
               "--jobs", "2", "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, env=subprocess_env(tmp_path_factory),
                          cwd=tmp_path, timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    for name in RUNGS:
        metrics = files.read_json(out / f"{name}-{backend}-seed0" / "metrics.json")
        assert (metrics["name"], metrics["epochs"], metrics["precision"]) == (name, 1, words[words.index(
            "--precision") + 1])
    table = done.stdout[done.stdout.index("run "):].splitlines()[1:]
    assert [line.split()[3] for line in table] == ["complete"] * len(RUNGS)

    report = subprocess.run([sys.executable, "-m", "kcifar.report", str(out)], capture_output=True, text=True,
                            env=subprocess_env(tmp_path_factory), cwd=tmp_path, timeout=600)
    assert report.returncode == 0, report.stderr[-2000:]
    page = (out / "report" / "README.md").read_text(encoding="utf-8")
    assert all(f"| {i} {name} |" in page for i, name in enumerate(RUNGS))
    assert (out / "report" / "figures" / "ladder.png").stat().st_size > 10000
