"""Imports flow one way: store <- memory <- tools <- agents <- flows <- channels <- evals
(DESIGN.md), with no exception: the `crm` command's root (crm.py) sits above them all. mail/ and
calls/ (pure parsing) lie beside them: every layer may import them, and they import no layer, no
database and no settings. No module of the product imports its importer, at the top or inside a
function."""

from __future__ import annotations

import ast
import re
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["store", "memory", "tools", "agents", "flows", "channels", "evals"]
PURE = ["mail", "calls"]
PRODUCT = LAYERS + PURE
# What "no database, no settings" rules out besides the project's own packages.
IMPURE = {"sqlalchemy", "alembic", "psycopg", "pydantic_settings", "dotenv"}
READS_ENVIRONMENT = re.compile(r"\bgetenv\(|\benviron\.get\(|\benviron\[")


def imported_packages(path: Path) -> set[str]:
    return {name.split(".")[0] for name in imported_names(path)}


def imported_names(path: Path) -> set[str]:
    """Every dotted name `path` imports, at the top or inside a function: `from a.b import c` gives
    a.b and a.b.c (c may be a module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def project_packages() -> set[str]:
    return {p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".") and any(p.glob("*.py"))} \
        | {p.stem for p in ROOT.glob("*.py")}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(packages: list[str]) -> dict[str, set[str]]:
    """Module -> the modules of `packages` it imports (a package's __init__ is the package's name)."""
    files = {module_name(path): path for package in packages for path in sorted((ROOT / package).rglob("*.py"))}
    return {name: imported_names(path) & set(files) - {name} for name, path in files.items()}


def test_no_layer_imports_a_higher_one() -> None:
    violations = []
    for rank, layer in enumerate(LAYERS):
        higher = set(LAYERS[rank + 1:])
        for path in sorted((ROOT / layer).rglob("*.py")):
            bad = imported_packages(path) & higher
            if bad:
                violations.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert violations == []


@pytest.mark.parametrize("package", PURE)
def test_pure_parsing_imports_no_layer_no_database_and_no_settings(package: str) -> None:
    forbidden = (project_packages() - {package}) | IMPURE
    violations = []
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = imported_packages(path) & forbidden
        if bad:
            violations.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
        if READS_ENVIRONMENT.search(path.read_text()):
            violations.append(f"{path.relative_to(ROOT)} reads the environment (settings are the caller's)")
    assert violations == []


def test_no_import_circle_in_pure_parsing() -> None:
    try:
        TopologicalSorter(import_graph(PURE)).prepare()
    except CycleError as exc:
        pytest.fail("import circle: " + " -> ".join(exc.args[1]))


def test_no_import_circle_in_the_product() -> None:
    try:
        TopologicalSorter(import_graph(PRODUCT)).prepare()
    except CycleError as exc:
        pytest.fail("import circle: " + " -> ".join(exc.args[1]))


def test_the_circle_check_sees_a_circle_through_a_lazy_import(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("import b\n")
    (tmp_path / "b.py").write_text("def f():\n    from a import g\n")
    graph = {name: imported_names(tmp_path / f"{name}.py") & {"a", "b"} - {name} for name in ("a", "b")}
    with pytest.raises(CycleError):
        TopologicalSorter(graph).prepare()


def resume_calls(path: Path) -> list[int]:
    """The lines where `path` calls something's `.resume(...)` (the runner's: a conversation goes on)."""
    return [node.lineno for node in ast.walk(ast.parse(path.read_text(), filename=str(path)))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "resume"]


def test_a_conversation_is_resumed_from_one_place() -> None:
    """Deciding a proposal goes on with its conversation in flows/decisions.py only: every door
    (HTTP, Slack, the terminal, the evals) calls it, so every surface hears of the decision."""
    callers = [f"{path.relative_to(ROOT)}:{line}" for package in PRODUCT
               for path in sorted((ROOT / package).rglob("*.py")) for line in resume_calls(path)]
    assert len(callers) == 1 and callers[0].startswith("flows/decisions.py:"), callers


def test_the_check_sees_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("from channels.api import app\nimport agents\n")
    assert imported_packages(bad) == {"channels", "agents"}
    assert {"store", "flows", "channels", "mail", "calls", "tests", "crm"} <= project_packages()
    assert set(PRODUCT) <= project_packages()


def test_every_package_has_its_place_and_only_the_root_names_crm() -> None:
    """A package added later must take a place in the order above (or be one of the named
    non-layers); `crm.py`, the command's root, and `dev.py` are imported by no product module."""
    assert project_packages() - set(PRODUCT) <= {"tests", "bench", "crm", "dev"}
    importers = [str(path.relative_to(ROOT)) for package in PRODUCT for path in sorted((ROOT / package).rglob("*.py"))
                 if imported_packages(path) & {"crm", "dev"}]
    assert importers == []
