import os

from helpers import REPO


def test_ci_runs_the_readme_test_command():
    readme = open(os.path.join(REPO, "README.md")).read()
    ci = [line for line in open(os.path.join(REPO, ".ci", "run")) if line.startswith("pip install")]
    assert len(ci) == 1 and ci[0].strip() in readme.splitlines()


def test_the_readme_small_budget_table_is_the_reports():
    """Every row of the README's small-budget table is a row of the page
    `python -m kcifar.report` generated from the committed runs."""
    readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    section = readme[readme.index("### The small budget on a CPU"):]
    section = section[:section.index("\n#", 1)]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line][1:]
    report = open(os.path.join(REPO, "experiments", "README.md"), encoding="utf-8").read()
    assert rows and all(row in report.splitlines() for row in rows)


def test_the_quick_start_figure_is_the_committed_runs():
    import re

    from kcifar import files

    readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    found = re.search(r"ended at ([\d.]+)% test accuracy\s+and ([\d.]+)% training accuracy.*?\[(experiments/[^\]]+)\]",
                      readme, re.S)
    metrics = files.read_json(os.path.join(REPO, found.group(3)))
    assert float(found.group(1)) == round(100 * metrics["test_accuracy"], 2)
    assert float(found.group(2)) == round(100 * metrics["train_accuracy"], 2)
