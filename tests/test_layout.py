"""The package layout rule: imports point down or sideways (the matching core imports neither
training nor labels nor cli), no library module parses a command line, and nothing under rtn_core
imports Qt."""
import ast
import os

import pytest

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "rtn_core")
JOBS = ("training", "labels", "cli")


def modules():
    for folder, _, files in os.walk(ROOT):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                yield os.path.relpath(path, ROOT).replace(os.sep, "/"), path


def imported(path: str, package: str) -> set[str]:
    """Fully qualified names of what a module imports (relative imports resolved)."""
    names = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("relative, path", sorted(modules()))
def test_imports_point_down(relative, path):
    parts = relative[:-3].split("/")
    package = ".".join(["rtn_core", *parts[:-1]])
    names = imported(path, package)
    assert not any(n.split(".")[0] in ("PySide6", "pyqtgraph", "app") for n in names), relative
    if parts[0] not in JOBS:  # the matching core
        assert not any(n.startswith(f"rtn_core.{job}") for job in JOBS for n in names), relative
    if parts[0] != "cli":
        assert "argparse" not in names, relative
        tree = ast.parse(open(path, encoding="utf-8").read())
        assert not any(isinstance(n, ast.FunctionDef) and n.name == "add_arguments" for n in tree.body), relative
