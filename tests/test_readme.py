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
