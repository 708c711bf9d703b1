"""python -m kcifar.report: figures and page from run folders, skips, reruns."""

import os

import pytest
from PIL import Image
from helpers import folder_contents, write_run, write_summary

from kcifar.report import figures
from kcifar.report.__main__ import main


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A repository root with two finished runs, a broken one and a search."""
    monkeypatch.chdir(tmp_path)
    write_run("experiments", name="baseline", seed=0)
    write_run("experiments/quick", name="trick1", seed=0, backend="torch")
    broken = write_run("experiments", name="trick2")
    os.remove(os.path.join(broken, "metrics.json"))
    write_summary("tuner_runs/trick4-random")
    return tmp_path


def test_default_report_is_made_skips_the_broken_and_repeats_byte_for_byte(project, capsys):
    assert main([]) == 0
    out, err = capsys.readouterr()
    assert "from 2 runs (1 skipped)" in out
    assert err.splitlines() == [
        f"kcifar.report: skipped {os.path.join('experiments', 'trick2-jax-seed0')}: no metrics.json: the run "
        "is incomplete (still training or interrupted; finish it with --resume)"]
    made = folder_contents("experiments/figures")
    assert sorted(made) == ["baseline-jax-seed0-classes.png", "baseline-jax-seed0-curves.png", "ladder.png",
                            "trick1-torch-seed0-classes.png", "trick1-torch-seed0-curves.png"]
    for name in made:
        with Image.open(os.path.join("experiments/figures", name)) as image:
            assert image.size == figures.pixels(name.rsplit("-", 1)[-1].removesuffix(".png"))
    page = (project / "experiments" / "README.md").read_text()
    assert "| 0 baseline |" in page and "| 1 trick1 |" in page and "### trick4-random" in page
    assert "](quick/trick1-torch-seed0/)" in page

    # Again: the same bytes; figures of runs since removed go, other files stay.
    before = folder_contents("experiments")
    for name in ("gone-seed0-curves.png", "gone-seed0-classes.png", "my-diagram.png"):
        (project / "experiments" / "figures" / name).write_bytes(b"old")
    assert main([]) == 0
    assert folder_contents("experiments") == {**before, os.path.join("figures", "my-diagram.png"): b"old"}


def test_named_runs_and_out(project, capsys):
    assert main(["experiments/quick", "missing-folder", "--out", "elsewhere"]) == 0
    err = capsys.readouterr().err
    assert "skipped missing-folder: no such folder" in err
    assert sorted(os.listdir("elsewhere/figures")) == [
        "ladder.png", "trick1-torch-seed0-classes.png", "trick1-torch-seed0-curves.png"]
    page = (project / "elsewhere" / "README.md").read_text()
    assert "| 1 trick1 |" in page and "baseline" not in page.split("## Skipped")[0].split("## Runs")[1]
    assert "tuner" not in page  # named runs: no search unless --tuner names one


def test_without_an_experiments_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([]) == 2
    assert capsys.readouterr().err.strip() == (
        "kcifar.report: error: no experiments/ folder here; run from the repository root or name run folders")


def test_unwritable_out_is_one_line(project, capsys):
    (project / "a-file").write_text("")
    assert main(["experiments", "--out", "a-file"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kcifar.report: error: cannot write the report to a-file") and err.count("\n") == 1


def test_runs_as_a_command_in_a_fresh_interpreter(tmp_path):
    import subprocess
    import sys

    write_run(str(tmp_path / "runs"))
    result = subprocess.run([sys.executable, "-m", "kcifar.report", str(tmp_path / "runs"), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert os.path.exists(tmp_path / "out" / "figures" / "ladder.png")
