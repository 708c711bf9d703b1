import os

from helpers import REPO


def test_ci_runs_the_readme_test_command():
    readme = open(os.path.join(REPO, "README.md")).read()
    ci = [line for line in open(os.path.join(REPO, ".ci", "run")) if line.startswith("pip install")]
    assert len(ci) == 1 and ci[0].strip() in readme.splitlines()
