"""python -m kcifar.report: figures and page from run folders, skips, reruns."""

import glob
import os
import shutil

import pytest
from PIL import Image
from helpers import folder_contents, write_run, write_summary

from kcifar.report import figures
from kcifar.report.__main__ import MANIFEST, beside, main


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
        f"python -m kcifar.report: skipped {os.path.join('experiments', 'trick2-jax-seed0')}: no metrics.json: the run "
        "is incomplete (still training or interrupted; finish it with --resume)"]
    made = folder_contents("experiments/figures")
    # Two folders of full-schedule runs, two ladders: the current one's figures, and the earlier one's by its name.
    assert sorted(made) == ["baseline-jax-seed0-classes.png", "baseline-jax-seed0-curves.png",
                            "epochs.png", "experiments-epochs.png", "experiments-ladder.png", "ladder.png", "trick1-torch-seed0-classes.png", "trick1-torch-seed0-curves.png"]
    for name in made:
        with Image.open(os.path.join("experiments/figures", name)) as image:
            kind = name.rsplit("-", 1)[-1].removesuffix(".png")
            assert image.size == figures.pixels(kind)
    page = (project / "experiments" / "README.md").read_text()
    assert "| 0 baseline |" in page and "| 1 trick1 |" in page and "### trick4-random" in page
    assert "](quick/trick1-torch-seed0/)" in page
    listed = (project / "experiments" / MANIFEST).read_text().splitlines()
    assert [line for line in listed if not line.startswith("#")] == ["README.md"] + [
        f"figures/{name}" for name in sorted(made)]

    # Again: the same bytes, and files the report did not write stay, even of its names' shapes.
    before = folder_contents("experiments")
    for name in ("gone-seed0-curves.png", "my-diagram.png"):
        (project / "experiments" / "figures" / name).write_bytes(b"mine")
    assert main([]) == 0
    assert folder_contents("experiments") == {
        **before, **{os.path.join("figures", n): b"mine" for n in ("gone-seed0-curves.png", "my-diagram.png")}}


def test_files_it_wrote_and_no_longer_writes_are_deleted_and_nothing_else(project):
    assert main([]) == 0
    shutil.rmtree("experiments/quick")
    (project / "experiments" / "figures" / "my-diagram.png").write_bytes(b"mine")
    (project / "outside.txt").write_text("mine")
    with open(os.path.join("experiments", MANIFEST), "a") as f:  # a list edited by hand
        f.write("../outside.txt\n" + str(project / "outside.txt") + "\n")
    assert main([]) == 0
    assert sorted(os.listdir("experiments/figures")) == [
        "baseline-jax-seed0-classes.png", "baseline-jax-seed0-curves.png", "epochs.png", "ladder.png",
        "my-diagram.png"]
    assert (project / "outside.txt").read_text() == "mine"


def test_named_runs_report_beside_them_and_leave_experiments_alone(project, capsys):
    main([])
    capsys.readouterr()
    committed = folder_contents("experiments")
    write_run("runs", name="trick3")
    write_run("runs", name="trick4", budget="small")
    for _ in range(2):  # the second time runs/* names runs/report too
        assert main(sorted(glob.glob("runs/*"))) == 0
        out, err = capsys.readouterr()
        assert err == "" and f"wrote {os.path.join('runs', 'report', 'README.md')}" in out
    assert folder_contents("experiments") == committed
    assert sorted(os.listdir("runs/report/figures")) == [
        "epochs-small.png", "epochs.png", "ladder-small.png", "ladder.png", "trick3-jax-seed0-classes.png",
        "trick3-jax-seed0-curves.png", "trick4-small-jax-seed0-classes.png", "trick4-small-jax-seed0-curves.png"]
    page = (project / "runs" / "report" / "README.md").read_text()
    assert "](../trick3-jax-seed0/)" in page and "## The ladder: small budget" in page
    # One run folder named alone: the report goes in the folder beside it.
    assert main(["runs/trick3-jax-seed0"]) == 0
    assert "| 3 trick3 |" in (project / "runs" / "report" / "README.md").read_text()


@pytest.mark.parametrize("paths, out", [
    (["runs/a-seed0", "runs/b-seed0"], "runs/report"), (["runs"], "runs/report"), (["runs/a-seed0"], "runs/report"),
    (["runs/deep", "runs/a-seed0"], "runs/report"), (["missing"], "report"),
])
def test_beside_is_the_folder_that_holds_the_runs(tmp_path, monkeypatch, paths, out):
    monkeypatch.chdir(tmp_path)
    for folder in ("runs/a-seed0", "runs/b-seed0", "runs/deep/c/d-seed0"):
        os.makedirs(folder)
        (tmp_path / folder / "metrics.json").write_text("{}")
    assert beside(paths) == out


def test_a_readme_the_report_did_not_write_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_run("runs", name="trick1")
    os.makedirs("notes")
    (tmp_path / "notes" / "README.md").write_text("# My notes\n")
    assert main(["runs", "--out", "notes"]) == 2
    assert capsys.readouterr().err == (
        f"python -m kcifar.report: error: {os.path.join('notes', 'README.md')} was not written by kcifar.report; "
        "name another --out\n")
    assert (tmp_path / "notes" / "README.md").read_text() == "# My notes\n"
    assert os.listdir("notes") == ["README.md"]


def test_named_runs_and_out(project, capsys):
    assert main(["experiments/quick", "missing-folder", "--out", "elsewhere"]) == 0
    err = capsys.readouterr().err
    assert "skipped missing-folder: no such folder" in err
    assert sorted(os.listdir("elsewhere/figures")) == [
        "epochs.png", "ladder.png", "trick1-torch-seed0-classes.png", "trick1-torch-seed0-curves.png"]
    page = (project / "elsewhere" / "README.md").read_text()
    assert "| 1 trick1 |" in page and "baseline" not in page.split("## Skipped")[0].split("## Runs")[1]
    assert "tuner" not in page  # named runs: no search unless --tuner names one


def test_without_an_experiments_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([]) == 2
    assert capsys.readouterr().err.strip() == (
        "python -m kcifar.report: error: no experiments/ folder here; run from the repository root or name run folders")


def test_a_folder_without_runs_writes_nothing_and_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    os.makedirs("runs")
    assert main(["runs"]) == 2
    assert capsys.readouterr() == ("", "python -m kcifar.report: error: no run to report (runs: no run folders in it); "
                                       "nothing written\n")
    assert os.listdir("runs") == []


def test_when_every_folder_is_skipped_nothing_is_written_and_the_reasons_are_one_line(tmp_path, monkeypatch,
                                                                                     capsys):
    monkeypatch.chdir(tmp_path)
    for name in ("trick1", "trick2", "trick3", "trick4"):
        os.remove(os.path.join(write_run("runs", name=name), "metrics.json"))
    write_run("old", name="baseline")
    assert main(["old", "--out", "report"]) == 0  # a report made earlier stays as it is
    capsys.readouterr()
    before = folder_contents("report")
    assert main(["runs", "missing", "--out", "report"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1
    assert err.startswith("python -m kcifar.report: error: no run to report (" + os.path.join("runs", "trick1-jax-seed0")
                          + ": no metrics.json: the run is incomplete")
    assert err.endswith("; 2 more skipped); nothing written\n")
    assert folder_contents("report") == before


def test_a_search_alone_is_reported(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    os.makedirs("experiments")
    write_summary("tuner_runs/trick4-random")
    assert main([]) == 0
    out, err = capsys.readouterr()
    assert "from 0 runs (0 skipped)" in out and "### trick4-random" in (tmp_path / "experiments" / "README.md").read_text()


def test_unwritable_out_is_one_line(project, capsys):
    (project / "a-file").write_text("")
    assert main(["experiments", "--out", "a-file"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m kcifar.report: error: cannot write the report to a-file") and err.count("\n") == 1


def test_runs_as_a_command_in_a_fresh_interpreter(tmp_path):
    import subprocess
    import sys

    write_run(str(tmp_path / "runs"))
    result = subprocess.run([sys.executable, "-m", "kcifar.report", str(tmp_path / "runs"), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert os.path.exists(tmp_path / "out" / "figures" / "ladder.png")


def write_partial(root, name="trick3", epochs_done=2, epochs_planned=50):
    """A run folder as --time-limit leaves it after travelling: no
    metrics.json, no checkpoint, a partial.json beside its history."""
    from kcifar import files
    from kcifar.results import PARTIAL_FILE

    run_dir = write_run(root, name=name, epochs=epochs_done, test_accuracy=0.4)
    os.remove(os.path.join(run_dir, "metrics.json"))
    files.write_json(os.path.join(run_dir, PARTIAL_FILE), {
        "format": 1, "name": name, "rung": int(name[-1]), "epochs_done": epochs_done,
        "epochs_planned": epochs_planned, "reason": "time-limit", "time_limit_seconds": 480.0,
        "elapsed_seconds": 471.2, "stopped_at": "2026-12-02T01:02:03+00:00", "val_accuracy": 0.4375,
        "backend": "torch", "backend_version": "2.11.0", "keras_version": "3.15.1", "device": "gpu: NVIDIA H200",
        "python": "3.12.0", "code": {"commit": "0123456789abcdef", "dirty": False},
    })
    return run_dir


def test_a_run_stopped_by_its_time_limit_is_listed_as_partial_never_in_the_ladder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_run("experiments", name="baseline", seed=0)
    write_partial("experiments")
    assert main([]) == 0
    out, err = capsys.readouterr()
    assert "from 1 run, 1 partial (0 skipped)" in out and err == ""
    page = (tmp_path / "experiments" / "README.md").read_text()
    ladder_part = page[:page.index("## Partial runs")]
    assert "| 0 baseline |" in ladder_part and "trick3" not in ladder_part
    # Right after the full schedule's table, before anything else.
    assert page.index("## Partial runs") < page.index("Columns:")
    assert ("| 3 trick3 | full | 2/50 | 43.75% | time-limit, 2026-12-02T01:02:03+00:00 | torch | gpu: NVIDIA H200 "
            "| 0123456 | [trick3-jax-seed0](trick3-jax-seed0/) |") in page
    assert not any("trick3" in name for name in os.listdir(tmp_path / "experiments" / "figures"))


def test_a_marker_whose_run_went_on_is_skipped_with_the_reason(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_run("experiments", name="baseline")  # a run to report beside it
    run_dir = write_partial("experiments", epochs_done=2)
    from kcifar import files

    rows = files.read_csv(os.path.join(run_dir, "history.csv"))
    files.write_csv(os.path.join(run_dir, "history.csv"), rows + [{**rows[-1], "epoch": "3"}], list(rows[0]))
    assert main([]) == 0
    assert "the run went on after its stop and was interrupted" in capsys.readouterr().err


def test_a_run_of_the_step_beyond_the_ladder_gets_its_row_and_figures(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_run("experiments", name="trick9")
    write_run("experiments", name="pretrained")
    assert main([]) == 0
    out, err = capsys.readouterr()
    assert "from 2 runs (0 skipped)" in out and err == ""
    page = (tmp_path / "experiments" / "README.md").read_text()
    assert page.index("| 9 trick9 |") < page.index("| beyond the ladder: pretrained |") < page.index("Columns:")
    assert "| 10 pretrained |" not in page
    made = os.listdir(tmp_path / "experiments" / "figures")
    assert {"pretrained-jax-seed0-curves.png", "pretrained-jax-seed0-classes.png", "ladder.png"} <= set(made)


def test_the_committed_report_is_what_the_committed_results_files_give(tmp_path, monkeypatch, capsys):
    # The page a student reads is regenerated after every committed run; a
    # stale one would show figures no results file holds any more.
    from helpers import REPO

    for folder in ("experiments", "tuner_runs"):
        shutil.copytree(os.path.join(REPO, folder), tmp_path / folder,
                        ignore=shutil.ignore_patterns("figures", "*.keras", "*.npz"))
    for name in ("ladder", "epochs", "curves", "classes"):
        monkeypatch.setattr(figures, name, lambda *args, **kwargs: None)  # the page alone
    monkeypatch.chdir(tmp_path)
    assert main([]) == 0, capsys.readouterr().err
    with open(os.path.join(REPO, "experiments", "README.md"), encoding="utf-8") as f:
        committed = f.read()
    assert (tmp_path / "experiments" / "README.md").read_text(encoding="utf-8") == committed, (
        "experiments/README.md is not what python -m kcifar.report writes from the results files: rerun it")
