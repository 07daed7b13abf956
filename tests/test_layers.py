"""Imports flow one way: store <- memory <- tools <- agents <- channels (DESIGN.md), and the
evals above them all (they drive the product through its channels)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["store", "memory", "tools", "agents", "channels", "evals"]
# The CLI's root registers `crm eval`; nothing else below the evals may name them.
ALLOWED = {("channels/cli.py", "evals")}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_layer_imports_a_higher_one() -> None:
    violations = []
    for rank, layer in enumerate(LAYERS):
        higher = set(LAYERS[rank + 1:])
        for path in sorted((ROOT / layer).rglob("*.py")):
            bad = {p for p in imported_packages(path) & higher
                   if (str(path.relative_to(ROOT)), p) not in ALLOWED}
            if bad:
                violations.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert violations == []


def test_the_check_sees_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("from channels.api import app\nimport agents\n")
    assert imported_packages(bad) == {"channels", "agents"}
