"""Imports point one way, down the pipeline (docs/ARCHITECTURE.md): each package of kiloml
imports only the packages listed for it, and no module imports the CLI."""

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "kiloml"
#: package → the kiloml packages its modules may import (besides itself and ``kiloml``'s
#: ``__init__``/``errors``).
ALLOWED = {
    "data": set(),
    "nn": set(),
    "models": {"nn"},
    "compress": {"nn"},
    "train": {"data", "nn", "models", "compress", "runs"},
    "ops": {"data", "compress"},
    "ir": {"nn", "ops"},
    "deploy": {"ir", "ops", "data", "runs", "outputs"},
    "runs": {"models", "outputs", "data"},
    "outputs": set(),
    "plots": {"outputs"},
    "progress": {"train"},
    "sweep": {"data", "train", "runs", "outputs", "deploy", "ir", "models", "compress",
              "progress"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n.split(".")[1] for n in names if n.startswith("kiloml.") and n.count(".") >= 1}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_its_layer_may(package):
    files = ([SOURCE / f"{package}.py"] if (SOURCE / f"{package}.py").exists()
             else sorted((SOURCE / package).rglob("*.py")))
    assert files, package
    for path in files:
        used = _imports(path) - {package, "errors"}
        assert used <= ALLOWED[package], f"{path.relative_to(SOURCE)} imports {used}"


def test_nothing_imports_the_cli():
    for path in SOURCE.rglob("*.py"):
        if path.name != "cli.py":
            assert "cli" not in _imports(path), path
