"""The package map of docs/layout.md held to the code: every module on it
once, the core importing none of the tools, no import running in a circle,
and its "Adding a rung" steps carried out in a copy of the package."""

import ast
import os
import re
import shutil
import subprocess
import sys

import pytest
from helpers import REPO, subprocess_env

LAYOUT = os.path.join(REPO, "docs", "layout.md")


def package_map():
    """{"core": [paths], "tools": [paths]} from the map's code block."""
    text = open(LAYOUT).read()
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    groups, group = {}, None
    for line in block.splitlines():
        if line.startswith(("core:", "tools:")):
            group = groups.setdefault(line.split(":")[0], [])
        elif line.startswith("kcifar/"):
            group.append(line.split()[0])
    return groups


def module_name(path):
    name = path[: -len(".py")].replace("/", ".")
    return name[: -len(".__init__")] if name.endswith(".__init__") else name


def modules_on_disk():
    root = os.path.join(REPO, "kcifar")
    return sorted(os.path.relpath(os.path.join(folder, f), REPO).replace(os.sep, "/")
                  for folder, _, names in os.walk(root) for f in names if f.endswith(".py"))


def kcifar_imports(path, known):
    """The kcifar modules that the file at `path` imports, at any depth (an
    import inside a function counts: it runs as soon as the function does)."""
    found = set()
    package = module_name(path) if path.endswith("__init__.py") else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(open(os.path.join(REPO, path)).read())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
            # `from kcifar.data import cache` imports the module kcifar.data.cache.
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        found.update(n for n in names if n.split(".")[0] == "kcifar")
    return found


def test_every_module_is_on_the_map_once():
    groups = package_map()
    listed = groups["core"] + groups["tools"]
    assert len(listed) == len(set(listed)), "a module listed twice"
    assert sorted(listed) == modules_on_disk()


def test_the_core_imports_none_of_the_tools():
    groups = package_map()
    known = {module_name(p) for p in modules_on_disk()}
    tools = {module_name(p) for p in groups["tools"]}
    offences = {path: sorted(kcifar_imports(path, known) & tools) for path in groups["core"]}
    assert {path: names for path, names in offences.items() if names} == {}


def test_no_import_runs_in_a_circle():
    known = {module_name(p) for p in modules_on_disk()}
    graph = {module_name(p): kcifar_imports(p, known) & known for p in modules_on_disk()}
    # A package's __init__ runs before any of its modules: a module importing
    # its own package is no way back up.
    graph = {m: {n for n in deps if not m.startswith(n + ".")} for m, deps in graph.items()}
    done, path = set(), []

    def visit(module):
        if module in path:
            pytest.fail("import circle: " + " -> ".join(path[path.index(module):] + [module]))
        if module in done:
            return
        path.append(module)
        for dep in sorted(graph[module]):
            visit(dep)
        path.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


def test_a_new_rung_added_as_the_page_says_is_listed_and_trains(tmp_path, tiny_dir, tmp_path_factory):
    text = open(LAYOUT).read().split("## Adding a rung", 1)[1]
    module = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    copy = tmp_path / "copy"
    shutil.copytree(os.path.join(REPO, "kcifar"), copy / "kcifar", ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "kcifar" / "experiments" / "trick10.py").write_text(re.sub(r"(?m)^   ", "", module))
    rungs = copy / "kcifar" / "experiments" / "__init__.py"
    source = rungs.read_text()
    assert source.count('"trick9")') == 1
    rungs.write_text(source.replace('"trick9")', '"trick9", "trick10")'))
    env = {**subprocess_env(tmp_path_factory), "PYTHONPATH": str(copy)}

    def run(*args):
        done = subprocess.run([sys.executable, "-m", *args], cwd=copy, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    listed = next(line.split() for line in run("kcifar.experiments").splitlines() if line.startswith("trick10 "))
    assert listed[:3] == ["trick10", "10", "-"] and "rotation 30 deg" in " ".join(listed)
    assert "Rung 10" in run("kcifar.experiments.trick10", "--help")
    run("kcifar.experiments.trick10", "--data", tiny_dir, "--epochs", "1", "--limit-train", "10", "--batch-size", "10",
        "--out", str(tmp_path / "runs"), "--quiet")
    metrics = next((tmp_path / "runs").glob("trick10-*-seed0/metrics.json"))
    assert '"rung": 10' in metrics.read_text()
