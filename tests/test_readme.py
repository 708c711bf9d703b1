import os

ROOT = os.path.join(os.path.dirname(__file__), "..")


def test_ci_runs_the_readme_test_command():
    readme = open(os.path.join(ROOT, "README.md")).read()
    ci = [line for line in open(os.path.join(ROOT, ".ci", "run")) if line.startswith("pip install")]
    assert len(ci) == 1 and ci[0].strip() in readme.splitlines()
