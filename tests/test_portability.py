"""What Windows and macOS need of the package, checked on Linux: nothing
imports a Unix-only module or reads /proc, and files are written the same
bytes whatever the system's text encoding."""

import ast
import json
import os
import subprocess
import sys

from helpers import REPO, subprocess_env

import kcifar

# fcntl and resource exist on Linux and macOS only; with them blocked the
# package must still import, and the cache (its file lock) still work.
# psutil alone comes first: its Linux backend imports resource itself (its
# Windows one does not), and it keeps that module when the name is blocked.
WITHOUT_UNIX_MODULES = """
import sys
import psutil
sys.modules.update(fcntl=None, resource=None)
import importlib, json, os, pkgutil
import kcifar
names = ["kcifar"] + [m.name for m in pkgutil.walk_packages(kcifar.__path__, "kcifar.")]
for name in names:
    importlib.import_module(name)
from kcifar.data import cache, load
from kcifar.bench.memory import resident_mb
first, second = load(sys.argv[1]), load(sys.argv[1])
print(json.dumps({"modules": len(names), "checksums": [first.checksum, second.checksum],
                  "entries": sorted(f for f in os.listdir(cache.cache_dir()) if f.endswith(".npz")),
                  "resident_mb": resident_mb()}))
"""

# Names the package must not use: modules that Windows lacks, os functions
# that exist on Unix only, and signals Windows does not have.
UNIX_MODULES = {"fcntl", "resource", "termios", "tty", "pty", "pwd", "grp", "posix", "crypt"}
UNIX_OS_FUNCTIONS = {
    "fork", "forkpty", "wait3", "wait4", "waitid", "getloadavg", "sched_getaffinity", "sched_setaffinity",
    "getuid", "geteuid", "getgid", "setsid", "getpgid", "killpg", "nice", "statvfs", "sync", "mkfifo",
}
UNIX_SIGNALS = {"SIGKILL", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGCHLD", "SIGPIPE", "SIGSTOP"}


def package_sources():
    root = os.path.dirname(kcifar.__file__)
    for folder, _, names in os.walk(root):
        for name in sorted(names):
            if name.endswith(".py"):
                yield os.path.relpath(os.path.join(folder, name), REPO)


def unix_only_uses(path):
    """(line, what) for each Unix-only import, os function, signal or /proc path in `path`."""
    with open(os.path.join(REPO, path), encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] in UNIX_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module.split(".")[0] in UNIX_MODULES:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "os" and node.attr in UNIX_OS_FUNCTIONS:
                found.append((node.lineno, f"os.{node.attr}"))
            elif node.value.id == "signal" and node.attr in UNIX_SIGNALS:
                found.append((node.lineno, f"signal.{node.attr}"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("/proc"):
            found.append((node.lineno, node.value))
    return found


def test_nothing_in_the_package_is_unix_only():
    found = {path: uses for path in package_sources() if (uses := unix_only_uses(path))}
    assert found == {}


def test_the_check_finds_what_it_looks_for(tmp_path):
    source = tmp_path / "linux_only.py"
    source.write_text('import fcntl\nimport os, signal\nos.sched_setaffinity(0, {0})\n'
                      'os.kill(1, signal.SIGKILL)\nopen("/proc/self/status")\n')
    assert [what for _, what in sorted(unix_only_uses(str(source)))] == [
        "fcntl", "os.sched_setaffinity", "signal.SIGKILL", "/proc/self/status"]


def test_every_module_imports_and_the_cache_works_without_fcntl_and_resource(tiny_dir, tiny_data, tmp_path,
                                                                             tmp_path_factory):
    env = dict(subprocess_env(tmp_path_factory), KCIFAR_CACHE=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, "-c", WITHOUT_UNIX_MODULES, tiny_dir], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["modules"] == len(list(package_sources()))
    # Decoded once, then read back from the one cache entry: the same data as decoding it here.
    assert result["checksums"] == [tiny_data.checksum] * 2 and len(result["entries"]) == 1
    assert result["resident_mb"] > 50


def test_text_files_are_utf8_with_newlines_whatever_the_locale(tmp_path):
    # An ASCII locale stands in for Windows's code pages: text written in the
    # locale's encoding would fail on "±" (and be written in cp1252 there).
    # The child's source is ASCII, as its command line must be in that locale.
    env = dict(os.environ, LC_ALL="C", LANG="C", PYTHONUTF8="0", PYTHONCOERCECLOCALE="0",
               PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    code = ("import locale, sys\n"
            "from kcifar import files\n"
            "assert locale.getpreferredencoding(False).lower() not in ('utf-8', 'utf8')\n"
            "files.write_text(sys.argv[1] + '/page.md', 'accuracy 0.91 \\u00b1 0.01\\nnext line\\n')\n"
            "files.write_csv(sys.argv[1] + '/rows.csv', [{'name': '\\u03c3', 'value': 1}], ['name', 'value'])\n"
            "assert files.read_csv(sys.argv[1] + '/rows.csv') == [{'name': '\\u03c3', 'value': '1'}]\n")
    done = subprocess.run([sys.executable, "-X", "utf8=0", "-c", code, str(tmp_path)], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "page.md").read_bytes() == "accuracy 0.91 ± 0.01\nnext line\n".encode("utf-8")
    assert (tmp_path / "rows.csv").read_bytes() == "name,value\nσ,1\n".encode("utf-8")
