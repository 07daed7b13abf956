"""All SQL lives in store/: no module outside it runs a query (issue 16, item 3).

An AST scan of every product module outside ``store/`` (memory, tools, agents, flows, channels,
evals, mail, calls and the top-level ``*.py``). A module offends when it

- imports ``select``, ``insert``, ``update``, ``delete``, ``func`` or ``text`` from ``sqlalchemy``
  or any of its submodules, or reaches them as an attribute of an imported ``sqlalchemy`` module
  (``import sqlalchemy as sa; sa.select(...)``); or
- calls ``execute``, ``scalars``, ``scalar``, ``get``, ``add``, ``add_all``, ``delete`` or
  ``query`` on a SQLAlchemy session.

What counts as a session, so that ``dict.get``, ``headers.get`` or a set's ``add`` never do:

- a name called ``session``, ``sess`` or ``db``, or an attribute called ``session``
  (``ctx.session``, ``self.session``);
- any name the module annotates as ``Session`` (a parameter ``s: Session``, ``x: Session = ...``);
- any name bound by ``with <f>(...) as name`` or ``name = <f>(...)`` where ``<f>`` is a session
  factory: ``unit_of_work``, ``Session``, ``sessionmaker`` or a callable whose name contains
  ``session`` (``sessions()``, ``self.sessions()``, ``session_scope()``).

Exempt by name only: ``tests/``, ``bench/`` and ``evals/state.py`` (the evals' snapshot of the
store, which reads every table by design). The failure lists each offence as file:line.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Every package of the project but the store and what is not product code: a package added later is
# scanned without anyone remembering to list it here.
NOT_SCANNED = {"store", "tests", "bench"}
PACKAGES = tuple(sorted(p.name for p in ROOT.iterdir()
                        if p.is_dir() and (p / "__init__.py").exists() and p.name not in NOT_SCANNED))
EXEMPT = {"evals/state.py"}
SQL_NAMES = {"select", "insert", "update", "delete", "func", "text"}
SESSION_METHODS = {"execute", "scalars", "scalar", "get", "add", "add_all", "delete", "query"}
SESSION_NAMES = {"session", "sess", "db"}
SESSION_FACTORIES = {"unit_of_work", "Session", "sessionmaker"}


def product_modules() -> list[Path]:
    files = [p for p in ROOT.glob("*.py")]
    for package in PACKAGES:
        files += sorted((ROOT / package).rglob("*.py"))
    return [p for p in files if p.relative_to(ROOT).as_posix() not in EXEMPT and ".venv" not in p.parts]


def _callee_name(node: ast.AST) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _is_session_factory(call: ast.AST) -> bool:
    name = _callee_name(call) if isinstance(call, ast.Call) else ""
    return name in SESSION_FACTORIES or "session" in name.lower()


def _annotated_session(annotation: ast.AST | None) -> bool:
    if annotation is None:
        return False
    return any(isinstance(n, (ast.Name, ast.Attribute)) and _callee_name(n) == "Session"
               for n in ast.walk(annotation)) or (
        isinstance(annotation, ast.Constant) and "Session" in str(annotation.value))


def _session_names(tree: ast.AST) -> set[str]:
    names = set(SESSION_NAMES)
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and _annotated_session(node.annotation):
            names.add(node.arg)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                and _annotated_session(node.annotation):
            names.add(node.target.id)
        elif isinstance(node, ast.withitem) and isinstance(node.optional_vars, ast.Name) \
                and _is_session_factory(node.context_expr):
            names.add(node.optional_vars.id)
        elif isinstance(node, ast.Assign) and _is_session_factory(node.value) \
                and _callee_name(node.value) != "sessionmaker":
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def offences(path: Path, where: str | None = None) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    where = where or path.relative_to(ROOT).as_posix()
    found: list[str] = []
    sa_modules: set[str] = set()
    sessions = _session_names(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy":
            for alias in node.names:
                if alias.name in SQL_NAMES:
                    found.append(f"{where}:{node.lineno}: imports {alias.name} from {node.module}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "sqlalchemy":
                    sa_modules.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in SQL_NAMES and isinstance(node.value, ast.Name) \
                and node.value.id in sa_modules:
            found.append(f"{where}:{node.lineno}: uses {node.value.id}.{node.attr}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in SESSION_METHODS:
            receiver = node.func.value
            if (isinstance(receiver, ast.Name) and receiver.id in sessions) or \
                    (isinstance(receiver, ast.Attribute) and receiver.attr == "session"):
                found.append(f"{where}:{node.lineno}: runs SQL: {ast.unparse(node.func)}(...)")
    return sorted(found, key=lambda line: int(line.split(":")[1]))


def test_scan_sees_the_offences_it_is_meant_to_see(tmp_path: Path) -> None:
    bad = tmp_path / "probe.py"
    src = ("from sqlalchemy import select\nfrom sqlalchemy.orm import Session\n"
           "def f(s: Session, headers: dict):\n    headers.get('x')\n    return s.scalars(select(1))\n"
           "def g(ctx):\n    return ctx.session.get(object, 1)\n"
           "def h():\n    with unit_of_work() as u:\n        u.add(1)\n    {1}.add(2)\n")
    bad.write_text(src)
    got = offences(bad, "probe.py")
    assert [line.split(":")[1] for line in got] == ["1", "5", "7", "10"], got


def test_no_sql_outside_store() -> None:
    assert {"memory", "tools", "agents", "flows", "channels", "evals", "mail", "calls"} <= set(PACKAGES)
    found = [line for path in product_modules() for line in offences(path)]
    assert not found, "SQL outside store/ (move it into a store service):\n" + "\n".join(found)
