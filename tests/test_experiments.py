import dataclasses
import hashlib
import os
import re
import subprocess
import sys

import keras
import pytest
from helpers import REPO

from kcifar import files
from kcifar.experiments import RUNGS, rung
from kcifar.experiments.__main__ import main
from kcifar.ladder.__main__ import main as ladder_main, rung_range

BOOKKEEPING = {"name", "rung", "change"}


@pytest.mark.parametrize("before, after", list(zip(RUNGS, RUNGS[1:])))
def test_each_rung_changes_one_trick(before, after):
    a, b = rung(before).CONFIG, rung(after).CONFIG
    changed = {f.name for f in dataclasses.fields(a) if getattr(a, f.name) != getattr(b, f.name)} - BOOKKEEPING
    # Rung 5 adds flip and crop together, rung 7 widens and adds augmentation,
    # as in the lecture; every other rung changes exactly one field.
    allowed = {"trick5": 2, "trick7": 3}.get(after, 1)
    assert 1 <= len(changed) <= allowed, changed
    assert b.rung == a.rung + 1 and b.change.startswith("+ ")


def test_each_rungs_lecture_figure_is_the_one_docs_lecture_reports():
    # docs/lecture.md's table of the reported figures, read against the modules.
    text = open(os.path.join(REPO, "docs", "lecture.md")).read().split("## The reported figures", 1)[1]
    reported = {name: float(figure) / 100
                for name, figure in re.findall(r"^\| \d+ \| `(\w+)` \|[^|]*\| ~([\d.]+)% \|", text, re.M)}
    assert {name: rung(name).LECTURE for name in RUNGS} == pytest.approx(reported)


def test_list(capsys):
    assert main([]) == 0
    header, *out = capsys.readouterr().out.splitlines()
    assert "forward MFLOP/image" in header
    assert len(out) == 12 and out[4].startswith("trick4") and "L2" in out[4] and "~87.5%" in out[4]
    # The steps beyond the ladder come after it, with no lecture figure.
    assert out[10].startswith("beyond the ladder") and out[11].split()[:4] == ["pretrained", "10", "-", "-"]
    from kcifar import cost

    for name, line in zip(RUNGS, out):  # each rung's cost, as kcifar.cost counts it from its config
        assert line.split()[3] == f"{cost.forward_flops(rung(name).CONFIG) / 1e6:.0f}"


@pytest.mark.parametrize("spec, names", [
    ("baseline..trick2", ("baseline", "trick1", "trick2")), ("trick9", ("trick9",)), ("trick3..trick3", ("trick3",)),
])
def test_range(spec, names):
    assert rung_range(spec) == names


@pytest.mark.parametrize("spec, message", [("trick2..baseline", "comes after"), ("trick10", "unknown rung")])
def test_bad_range(spec, message, capsys):
    assert ladder_main(["--run", spec]) == 2
    assert message in capsys.readouterr().err


def run_files(run_dir):
    """{file name: (sha256 of its bytes, modification time)} of a run folder's
    run files (run.log, the command's output, grows with every command)."""
    return {name: (hashlib.sha256((run_dir / name).read_bytes()).hexdigest(), (run_dir / name).stat().st_mtime_ns)
            for name in sorted(os.listdir(run_dir)) if name != "run.log"}


def test_ladder_runs_in_order_and_skips_complete_rungs(tiny_dir, tmp_path):
    names = ("baseline", "trick1")
    command = [sys.executable, "-m", "kcifar.ladder", "--run", "..".join(names), "--data", tiny_dir,
               "--epochs", "1", "--batch-size", "108", "--out", str(tmp_path), "--quiet"]
    first = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.stdout.index("=== baseline") < first.stdout.index("=== trick1")
    run_dirs = [tmp_path / f"{name}-{keras.backend.backend()}-seed0" for name in names]
    for name, run_dir in zip(names, run_dirs):
        assert files.read_json(run_dir / "metrics.json")["name"] == name
    finished = {run_dir: run_files(run_dir) for run_dir in run_dirs}
    assert all({"metrics.json", "model.keras"} <= set(found) for found in finished.values())

    # The data too is left alone: resumed with no data at all, the ladder still only skips.
    command[command.index(tiny_dir)] = str(tmp_path / "no-such-data")
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert {run_dir: run_files(run_dir) for run_dir in run_dirs} == finished  # not a byte, not a time
    # Each rung's header and its one skip line, then the outcome table,
    # nothing else: no run handed to train() again, which would print its summary.
    lines = again.stdout.splitlines()
    table = lines.index(next(line for line in lines if line.startswith("run ")))
    assert lines[:table] == [
        line for name, run_dir in zip(names, run_dirs)
        for line in (f"=== {name}: {rung(name).CONFIG.change}", f"{name}: skipped: complete run in {run_dir}")
    ]
    assert [line.split()[:4] for line in lines[table + 1:]] == [[name, "seed", "0", "complete"] for name in names]
