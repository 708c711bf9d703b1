"""The CPU and the commit that results files record."""

import pytest

from kcifar import machine


def test_cpu_text_names_the_model_and_its_bfloat16_units():
    c = machine.cpu()
    assert c["cores"] >= 1 and c["model"] in machine.cpu_text()
    assert machine.cpu_text().endswith(("AMX", "avx512_bf16, no AMX", "no bfloat16 units"))


def test_code_version_is_the_checkouts_commit_and_state(tmp_path, monkeypatch):
    import shutil
    import subprocess

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    # A copy of machine.py in a fresh repository: its commit, then dirty once edited.
    source = tmp_path / "repo" / "machine.py"
    source.parent.mkdir()
    shutil.copy(machine.__file__, source)
    git = lambda *args: subprocess.run(["git", *args], cwd=source.parent, check=True,  # noqa: E731
                                       capture_output=True, text=True).stdout.strip()
    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "empty")
    git("add", "machine.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "machine")
    monkeypatch.setattr(machine, "__file__", str(source))
    assert machine.code_version() == {"commit": git("rev-parse", "HEAD"), "dirty": False}
    source.write_text(source.read_text() + "\n# edited\n")
    assert machine.code_version() == {"commit": git("rev-parse", "HEAD"), "dirty": True}
    monkeypatch.setattr(machine, "__file__", str(tmp_path / "elsewhere" / "machine.py"))
    (tmp_path / "elsewhere").mkdir()
    assert machine.code_version() == {"commit": None, "dirty": None}
