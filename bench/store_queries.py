"""Query speed of the store on SQLite and PostgreSQL, side by side, at a chosen data size.

    .venv/bin/python -m bench.store_queries --deals 10000 --activities 100000
    .venv/bin/python -m bench.store_queries --backends sqlite --repeat 20

Loads (bench/loader.py) a fresh migrated schema per backend (bulk, SQLAlchemy Core executemany; COPY on
PostgreSQL), then times the product's own read paths (`timeline`, `crud.list_`,
`search`) as a rep (permission clauses applied) and as an admin. Prints a table per
backend, one side by side, the load rates next to the reference figures in
/work/shared/DEPENDENCIES.md, and EXPLAIN output for any query slower than
--explain-over-ms. See bench/README.md.

PostgreSQL: the script works in its own database (--pg-db, default crm_bench), created
if missing; it never touches the test database named in --pg-url. SQLite: a file under
.bench/ (git-ignored). Both are emptied at the end unless --keep.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

import store.services  # noqa: F401  (registers every entity spec)
from bench.loader import (
    BENCH_DIR,
    BUSY_COMPANY,
    CONTACT_Q,
    ROOT,
    SUBSTRING,
    TYPO,
    World,
    add_backend_args,
    calibrate,
    load_world,
    ms,
    open_backend,
    parse_backend_args,
    pg_database,
    print_load,
    table,
)
from store.actor import Actor
from store.services import crud, spec_for
from store.services.search import search
from store.services.timeline import timeline

# --- measuring -------------------------------------------------------------------------------


@dataclass
class Query:
    name: str
    run: Callable[[Session, Actor], Any]
    check: Callable[[Any], str] = lambda result: ""


@dataclass
class Result:
    query: str
    actor: str
    times: list[float]
    size: str
    note: str = ""
    stopped_early: bool = False

    @property
    def p50(self) -> float:
        return statistics.median(self.times)

    @property
    def p95(self) -> float:
        ordered = sorted(self.times)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.times)


def size_of(result: Any) -> str:
    if isinstance(result, crud.Page):
        return f"{len(result.items)}/{result.total}"
    return str(len(result))


def queries(w: World) -> list[Query]:
    deal, contact, activity = spec_for("deal"), spec_for("contact"), spec_for("activity")

    def finds(company: uuid.UUID) -> Callable[[Any], str]:
        def check(hits: list[Any]) -> str:
            found = [h for h in hits if h.id == company]
            return f"found, score {found[0].score:.0f}" if found else "NOT FOUND"

        return check

    return [
        Query("timeline company (busy)", lambda s, a: timeline(s, actor=a, kind="company",
                                                              record_id=w.busy_company, limit=50)),
        Query("timeline contact", lambda s, a: timeline(s, actor=a, kind="contact",
                                                       record_id=w.busy_contact, limit=50)),
        Query("timeline deal", lambda s, a: timeline(s, actor=a, kind="deal",
                                                    record_id=w.busy_deal, limit=50)),
        Query("list deals (default sort)", lambda s, a: crud.list_(s, deal, actor=a, limit=50)),
        Query("list deals stage= sort=-amount", lambda s, a: crud.list_(
            s, deal, actor=a, filters={"stage_id": str(w.filter_stage)}, sort="-amount", limit=50)),
        Query(f"list contacts q={CONTACT_Q}", lambda s, a: crud.list_(s, contact, actor=a, q=CONTACT_Q,
                                                                    limit=50)),
        Query("list activities page 10", lambda s, a: crud.list_(s, activity, actor=a, limit=50, offset=450)),
        Query("search exact name (busy co)", lambda s, a: search(s, actor=a, q=BUSY_COMPANY),
              finds(w.busy_company)),
        Query("search exact name (plain co)", lambda s, a: search(s, actor=a, q=w.plain_company_name),
              finds(w.plain_company)),
        Query(f"search substring '{SUBSTRING}'", lambda s, a: search(s, actor=a, q=SUBSTRING)),
        Query("search typo (fuzzy only)", lambda s, a: search(s, actor=a, q=TYPO), finds(w.busy_company)),
    ]


def measure(engine: Engine, world: World, args: argparse.Namespace) -> list[Result]:
    results = []
    for q in queries(world):
        for label, actor in (("rep", world.rep), ("admin", world.admin)):
            result: Any = None
            for _ in range(args.warmup):
                with Session(engine) as s:
                    result = q.run(s, actor)
            times: list[float] = []
            spent, stopped = 0.0, False
            for _ in range(args.repeat):
                with Session(engine) as s:
                    t0 = time.perf_counter()
                    result = q.run(s, actor)
                    elapsed = time.perf_counter() - t0
                times.append(elapsed)
                spent += elapsed
                if spent > args.budget_s and len(times) < args.repeat:
                    stopped = True
                    break
            results.append(Result(q.name, label, times, size_of(result), q.check(result), stopped))
    return results


def print_results(backend: str, results: list[Result]) -> None:
    rows = [[r.query, r.actor, r.size, ms(r.p50), ms(r.p95), ms(r.mean),
             f"{len(r.times)}{'*' if r.stopped_early else ''}", r.note] for r in results]
    print(table(["query", "as", "rows", "p50 ms", "p95 ms", "mean ms", "runs", "check"], rows))
    if any(r.stopped_early for r in results):
        print("* stopped before --repeat runs: its runs took more than --budget-s in all")


def print_side_by_side(by_backend: dict[str, list[Result]]) -> None:
    lite, pg = by_backend.get("sqlite", []), by_backend.get("postgres", [])
    keyed = {(r.query, r.actor): r for r in pg}
    rows = []
    for r in lite:
        other = keyed.get((r.query, r.actor))
        if other is None:
            continue
        rows.append([f"{r.query} [{r.actor}]", ms(r.p50), ms(r.p95), ms(other.p50), ms(other.p95),
                     f"{other.p50 / r.p50:.2f}"])
    print(table(["query", "sqlite p50", "sqlite p95", "postgres p50", "postgres p95", "pg/sqlite"], rows))



class Capture:
    """Every statement a call sends, with the time its execute took (includes the fetch on psycopg)."""

    def __init__(self, engine: Engine) -> None:
        self.active = False
        self.statements: list[tuple[str, Any, float]] = []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                many: bool) -> None:
        if self.active:
            conn.info["bench_t0"] = time.perf_counter()

    def _after(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               many: bool) -> None:
        if self.active and "bench_t0" in conn.info:
            self.statements.append((statement, parameters, time.perf_counter() - conn.info.pop("bench_t0")))


def explain(engine: Engine, backend: str, capture: Capture, world: World, slow: list[tuple[str, str]],
            out: Path) -> None:
    """For each slow (query, actor): total time vs time in SQL, and the plan of its statements."""
    by_name = {q.name: q for q in queries(world)}
    calls: list[tuple[str, Callable[[Session], Any]]] = []
    for name, label in slow:
        actor = world.rep if label == "rep" else world.admin
        calls.append((f"{name} [{label}]", lambda s, q=by_name[name], a=actor: q.run(s, a)))
    explain_calls(engine, backend, capture, calls, out)


def explain_calls(engine: Engine, backend: str, capture: Capture,
                  calls: list[tuple[str, Callable[[Session], Any]]], out: Path) -> None:
    """For each (title, call): total time vs time in SQL, and the plan of its slowest statements."""
    lines: list[str] = []
    for title, call in calls:
        with Session(engine) as s:  # warm again: the other backend ran in between
            call(s)
        capture.statements.clear()
        capture.active = True
        with Session(engine) as s:
            t0 = time.perf_counter()
            call(s)
            total = time.perf_counter() - t0
        capture.active = False
        stmts = list(capture.statements)
        in_sql = sum(t for _, _, t in stmts)
        head = (f"== {backend}: {title}: {ms(total)} ms in all, {len(stmts)} statements,"
                f" {ms(in_sql)} ms executing them")
        lines.append(head)
        print(head)
        ranked = sorted(stmts, key=lambda st: -st[2])
        shown = ranked[:3] if backend == "postgres" else ranked[:4]
        for statement, params, took in shown:
            raw = engine.raw_connection()
            try:
                cur = raw.cursor()
                prefix = "EXPLAIN (ANALYZE, BUFFERS) " if backend == "postgres" else "EXPLAIN QUERY PLAN "
                cur.execute(prefix + statement, params)
                plan = [str(row[0] if backend == "postgres" else row[-1]) for row in cur.fetchall()]
                raw.rollback()
            finally:
                raw.close()
            one_line = " ".join(statement.split())
            lines += [f"-- {ms(took)} ms: {one_line}", f"-- params: {params}", *plan, ""]
            print(f"  {ms(took)} ms: {one_line[:160]}{'...' if len(one_line) > 160 else ''}")
            for p in plan[:14]:
                print(f"    {p}")
            if len(plan) > 14:
                print(f"    ... ({len(plan) - 14} more plan lines in {out.relative_to(ROOT)})")
    out.write_text("\n".join(lines) + "\n")




def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--deals", type=int, default=10_000, help="N deals; N/4 companies, N/2 contacts")
    p.add_argument("--activities", type=int, default=100_000,
                   help="M activities (1-3 targets each); M/10 notes and M/10 tasks")
    add_backend_args(p, pg_db="crm_bench")
    p.add_argument("--repeat", type=int, default=50, help="timed runs per query and actor")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs before them")
    p.add_argument("--budget-s", type=float, default=15.0,
                   help="stop repeating a query (and say so) once its timed runs took this long")
    p.add_argument("--teams", type=int, default=2,
                   help="teams of a manager + 10 reps owning the records; the rep benched is in team 1")
    p.add_argument("--explain-over-ms", type=float, default=200.0,
                   help="print plans for queries whose p50 is over this on any backend")
    return parse_backend_args(p, argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    BENCH_DIR.mkdir(exist_ok=True)
    started = time.perf_counter()
    n, m = args.deals, args.activities
    print(f"store query bench: {n:,} deals, {n // 4:,} companies, {n // 2:,} contacts,"
          f" {m:,} activities, {m // 10:,} notes, {m // 10:,} tasks;"
          f" {args.teams} team(s) of a manager + 10 reps; repeat {args.repeat}; {os.cpu_count()} CPUs")
    engines: dict[str, Engine] = {}
    cleanup: list[Callable[[], None]] = []
    by_backend: dict[str, list[Result]] = {}
    worlds: dict[str, World] = {}
    captures: dict[str, Capture] = {}
    tag = f"{args.deals}x{args.activities}"
    try:
        for backend in args.backends:
            engine = open_backend(backend, args, "store_queries", cleanup, pg_database)
            if engine is None:
                continue
            engines[backend] = engine
            world, loader, total_s = load_world(engine, backend, args)
            print_load(backend, loader, total_s, calibrate(engine, backend))
            worlds[backend] = world
            captures[backend] = Capture(engine)
            t0 = time.perf_counter()
            by_backend[backend] = measure(engine, world, args)
            print(f"\nqueries ({time.perf_counter() - t0:.0f} s; times per call, through the services,"
                  " a new Session each)")
            print_results(backend, by_backend[backend])
        if len(by_backend) == 2:
            print("\n## side by side (p50 and p95 in ms; pg/sqlite is the ratio of p50s)")
            print_side_by_side(by_backend)
        slow = sorted({(r.query, r.actor) for rs in by_backend.values() for r in rs
                       if r.p50 * 1000 > args.explain_over_ms})
        if slow:
            print(f"\n## plans of queries over {args.explain_over_ms:.0f} ms p50 on any backend")
            for backend, engine in engines.items():
                if backend in by_backend:
                    out = BENCH_DIR / f"explain-{backend}-{tag}.txt"
                    explain(engine, backend, captures[backend], worlds[backend],
                            [(n, a) for n, a in slow], out)
                    print(f"(full plans: {out.relative_to(ROOT)})")
    finally:
        for engine in engines.values():
            engine.dispose()
        for step in cleanup:
            try:
                step()
            except Exception as exc:  # cleanup must not hide the run's own error
                print(f"cleanup failed: {exc}")
        for engine in engines.values():
            engine.dispose()
    print(f"\ndone in {time.perf_counter() - started:.0f} s"
          + ("" if not args.keep else f"; kept the databases ({', '.join(engines)})"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
