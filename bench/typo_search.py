"""Typo search at 175k names, SQLite and PostgreSQL: today's fuzzy fallback (every name in scope
read and scored) next to the trigram index of migration 0009, in one run.

    .venv/bin/python -m bench.typo_search
    .venv/bin/python -m bench.typo_search --deals 20000 --backends sqlite

Loads (bench/loader.py) N deals, N/4 companies and N/2 contacts (1.75 N names; 100k deals:
175k names) and no activities. Then times `search()` for typo queries (the bench's busy-company
typo plus typos made from names in the data: a letter dropped, a letter changed) as a rep and
as an admin: first with the index out of the way (the reference: on PostgreSQL the trigram
indexes are dropped in a transaction rolled back afterwards; on SQLite the search is told there
is no FTS table), then with it. Prints p50/p95 per backend and actor, the ratio, whether both
found the same records, and the plan of one candidate query. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event, select, text
from sqlalchemy.orm import Session

import store.services  # noqa: F401  (registers every entity spec)
from bench.loader import (
    BENCH_DIR,
    TYPO,
    World,
    add_backend_args,
    load_world,
    ms,
    open_backend,
    parse_backend_args,
    pg_database,
    table,
)
from store.actor import Actor
from store.migrate import TRIGRAM_INDEXES
from store.models import Company, Contact, Deal
from store.services import search as search_module
from store.services.search import search


def typo_queries(engine: Engine, n: int, seed: int) -> list[str]:
    """TYPO plus n typos of names in the data (one letter dropped or changed), none of them a
    substring of the name they come from."""
    rng = random.Random(seed)
    with Session(engine) as s:
        names = [*s.scalars(select(Company.name).limit(2000)),
                 *s.scalars(select(Contact.first_name + " " + Contact.last_name).limit(2000)),
                 *s.scalars(select(Deal.name).limit(2000))]
    out = [TYPO]
    while len(out) < n + 1:
        name = rng.choice(names).lower()
        if len(name) < 6:
            continue
        i = rng.randrange(1, len(name) - 1)
        if name[i] == " ":
            continue
        typo = name[:i] + name[i + 1:] if rng.random() < 0.5 else name[:i] + rng.choice("aeioustr") + name[i + 1:]
        if typo != name:
            out.append(typo)
    return out


@contextmanager
def reference_session(engine: Engine, backend: str) -> Iterator[Session]:
    """A session that searches as today's code does: no trigram index."""
    if backend == "postgres":
        with engine.connect() as conn:
            outer = conn.begin()
            for name in sorted(TRIGRAM_INDEXES):
                conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
            try:
                with Session(bind=conn, join_transaction_mode="create_savepoint") as s:
                    yield s
            finally:
                outer.rollback()
    else:
        real = search_module.trigram_index
        search_module.trigram_index = lambda _s: None  # type: ignore[assignment]
        try:
            with Session(engine) as s:
                yield s
        finally:
            search_module.trigram_index = real  # type: ignore[assignment]


@contextmanager
def new_session(engine: Engine, backend: str) -> Iterator[Session]:
    with Session(engine) as s:
        yield s


def measure(make: Callable[[Engine, str], Any], engine: Engine, backend: str, actor: Actor, queries: list[str],
            repeat: int) -> tuple[list[float], dict[str, list[str]]]:
    times: list[float] = []
    found: dict[str, list[str]] = {}
    with make(engine, backend) as s:
        for q in queries:  # warm-up, and the results compared
            # what a caller sees: records of equal label and score are interchangeable (ties)
            found[q] = [f"{h.kind}:{h.label}:{h.score:.1f}" for h in search(s, actor=actor, q=q)]
            s.rollback()
        for _ in range(repeat):
            for q in queries:
                t0 = time.perf_counter()
                search(s, actor=actor, q=q)
                times.append(time.perf_counter() - t0)
                s.rollback()
    return times, found


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def plan(engine: Engine, backend: str, actor: Actor) -> str:
    """The plan of the companies' candidate query for TYPO."""
    seen: list[tuple[str, Any]] = []
    with Session(engine) as s:
        conn = s.connection()

        def capture(_c, _cur, statement, params, _ctx, _many) -> None:  # type: ignore[no-untyped-def]
            seen.append((statement, params))

        event.listen(conn, "before_cursor_execute", capture)
        search(s, actor=actor, q=TYPO, kinds=("company",))
        event.remove(conn, "before_cursor_execute", capture)
        for statement, params in reversed(seen):  # the last lookup: the typo candidates
            if " MATCH " in statement or "<%" in statement:
                prefix = "EXPLAIN ANALYZE " if backend == "postgres" else "EXPLAIN QUERY PLAN "
                rows = conn.exec_driver_sql(prefix + statement, params).all()
                return "\n".join(" ".join(str(c) for c in row) for row in rows)
    return "(no candidate query ran)"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--deals", type=int, default=100_000, help="N deals; N/4 companies, N/2 contacts")
    p.add_argument("--queries", type=int, default=20, help="typo queries made from the data (plus TYPO)")
    p.add_argument("--repeat", type=int, default=3, help="timed passes over the queries, per actor and path")
    p.add_argument("--teams", type=int, default=2, help="teams of a manager + 10 reps owning the records")
    add_backend_args(p, pg_db="crm_typo_bench")
    args = parse_backend_args(p, argv)
    args.activities = 0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    BENCH_DIR.mkdir(exist_ok=True)
    n = args.deals
    print(f"typo search bench: {n:,} deals, {n // 4:,} companies, {n // 2:,} contacts"
          f" ({n + n // 4 + n // 2:,} names); {args.queries + 1} queries x {args.repeat}; {os.cpu_count()} CPUs")
    cleanup: list[Callable[[], None]] = []
    engines: list[Engine] = []
    rows: list[list[Any]] = []
    try:
        for backend in args.backends:
            engine = open_backend(backend, args, "typo_search", cleanup, pg_database)
            if engine is None:
                continue
            engines.append(engine)
            t0 = time.perf_counter()
            world: World
            world, _loader, _ = load_world(engine, backend, args)
            print(f"loaded in {time.perf_counter() - t0:.0f} s")
            queries = typo_queries(engine, args.queries, args.seed)
            for who, actor in (("rep", world.rep), ("admin", world.admin)):
                ref, ref_found = measure(reference_session, engine, backend, actor, queries, args.repeat)
                new, new_found = measure(new_session, engine, backend, actor, queries, args.repeat)
                same = sum(ref_found[q] == new_found[q] for q in queries)
                top = sum(ref_found[q][:1] == new_found[q][:1] for q in queries)
                rows.append([backend, who, ms(statistics.median(ref)), ms(pct(ref, 0.95)),
                             ms(statistics.median(new)), ms(pct(new, 0.95)),
                             f"{statistics.median(ref) / statistics.median(new):.0f}x",
                             f"{same}/{len(queries)}", f"{top}/{len(queries)}"])
                for q in [q for q in queries if ref_found[q][:1] != new_found[q][:1]][:3]:
                    print(f"  top hits differ for {q!r}: today {ref_found[q][:3]}, trigram {new_found[q][:3]}")
                print(table(["backend", "actor", "today p50", "today p95", "trigram p50", "trigram p95",
                             "speed-up (p50)", "same hits", "same top hit"], rows[-1:]))
            print(f"\nplan of the companies' candidate query (rep, {TYPO!r}):\n{plan(engine, backend, world.rep)}")
        print("\n## all (ms)")
        print(table(["backend", "actor", "today p50", "today p95", "trigram p50", "trigram p95",
                     "speed-up (p50)", "same hits", "same top hit"], rows))
    finally:
        for engine in engines:
            engine.dispose()
        for step in cleanup:
            try:
                step()
            except Exception as exc:  # cleanup must not hide the run's own error
                print(f"cleanup failed: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
