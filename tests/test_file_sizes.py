"""A file is one thing: no Python file in the product's packages runs past 500 lines (issue 16).
Tests, benchmarks and migrations aside: they are not the product's code."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 500
NOT_PRODUCT = {"tests", "bench"}


def product_files() -> list[Path]:
    files = [p for p in ROOT.glob("*.py")]
    for package in sorted(p for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()):
        if package.name in NOT_PRODUCT:
            continue
        files += [p for p in package.rglob("*.py") if "migrations" not in p.relative_to(ROOT).parts]
    return sorted(files)


def test_no_product_file_runs_past_500_lines() -> None:
    files = product_files()
    assert any(p.parts[-2] == "store" for p in files)  # the scan sees the packages
    long = [f"{p.relative_to(ROOT)}: {n} lines" for p in files
            if (n := len(p.read_text().splitlines())) > LIMIT]
    assert long == []
