import os

import pytest
from helpers import REPO

QUICK_START = os.path.join("experiments", "quick-start", "trick4-torch-seed0", "metrics.json")


def test_ci_runs_the_readme_test_command():
    readme = open(os.path.join(REPO, "README.md")).read()
    ci = [line for line in open(os.path.join(REPO, ".ci", "run")) if line.startswith("pip install")]
    assert len(ci) == 1 and ci[0].strip() in readme.splitlines()


def test_the_readme_results_tables_are_the_reports():
    """Each table of the README's results is a table of the page
    `python -m kcifar.report` generated from the committed runs: its header
    and rows, whole and in order (rows of another table with the same
    first column would not do)."""
    readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    section = readme[readme.index("## Results"):]
    section = section[:section.index("\n## ", 1)]
    tables = [block for block in section.split("\n\n") if block.startswith("|")]
    report = open(os.path.join(REPO, "experiments", "README.md"), encoding="utf-8").read()
    assert tables and all(len(t.splitlines()) > 2 and f"\n{t.strip()}\n" in report for t in tables)


def test_the_quick_start_figure_is_the_committed_runs():
    import re

    from kcifar import files

    readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    found = re.search(r"ended at ([\d.]+)% test accuracy\s+and ([\d.]+)% training accuracy.*?\[(experiments/[^\]]+)\]",
                      readme, re.S)
    metrics = files.read_json(os.path.join(REPO, found.group(3)))
    assert float(found.group(1)) == round(100 * metrics["test_accuracy"], 2)
    assert float(found.group(2)) == round(100 * metrics["train_accuracy"], 2)


# The files whose change can change a run's figures: the rung modules and
# every module between the command line and the results file.
TRAINING_CODE = ("kcifar/experiments", "kcifar/cli.py", "kcifar/settings.py", "kcifar/runtime.py",
                 "kcifar/config.py", "kcifar/budgets.py", "kcifar/data", "kcifar/channels.py", "kcifar/models.py",
                 "kcifar/augment.py", "kcifar/pipeline.py", "kcifar/train.py", "kcifar/run_folder.py")


def test_the_quick_start_run_is_of_the_training_code_as_it_stands():
    """The README's quick-start figure comes from a run of the training code
    as it is: rerun the quick start after changing any of TRAINING_CODE."""
    import shutil
    import subprocess

    from kcifar import files

    made_by = files.read_json(os.path.join(REPO, QUICK_START))["code"]["commit"]

    def git(*args):
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=60)

    if shutil.which("git") is None or git("rev-parse", "--git-dir").returncode != 0:
        pytest.skip("no git history here")
    if git("cat-file", "-e", f"{made_by}^{{commit}}").returncode != 0:
        pytest.skip(f"commit {made_by[:7]} is not in this clone's history")
    later = git("log", "--format=%h %s", f"{made_by}..HEAD", "--", *TRAINING_CODE).stdout.splitlines()
    assert not later, (f"{QUICK_START} was made at {made_by[:7]}; the training code changed since in "
                       f"{', '.join(line.split()[0] for line in later)}: rerun the quick start")
