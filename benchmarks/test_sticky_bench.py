"""Sticky manager (README, Sticky manager): what it costs an inbound call in Python, side by
side with sticky routing off, and what a worker holds and loads for 100,000 relations.
Figures, not pass/fail (make bench; alone: /usr/bin/python3 -m pytest
benchmarks/test_sticky_bench.py --benchmark-only -q -s)."""

from __future__ import annotations

import random
import statistics
import time
import timeit
import tracemalloc

import pytest

from kemi.adapter import NULL, REQUEST_FIELDS, RELAY_TO_SIM, SEPARATOR, Router
from kemi.config import Config
from kemi.db import Database
from kemi.relations import Relations

from harness.fakes import FakeKSR, demo_directory, demo_records

RELATIONS = 100_000
NOW = time.time()
BORIS, IVAN = "+79181110004", "+79181110003"
HIT, MISS = "89890000001", "89890000002"  # a client sticky to Boris; one with no relation


def clients(n: int, seed: int = 17) -> list[str]:
    rng = random.Random(seed)
    return [f"+7989{rng.randrange(10 ** 7):07d}" for _ in range(n)]


def relation_rows(n: int) -> list[tuple]:
    rows = [(c, 1, 1, int(NOW - 86400)) for c in clients(n) if c not in ("+79890000001", "+79890000002")]
    return rows + [("+79890000001", 1, 2, int(NOW - 3600))]


def router(sticky_days: int):
    _, sims, dids = demo_records()
    directory = demo_directory(dids={n: r._replace(sticky_days=sticky_days)
                                     for n, r in dids.items()},
                               sims=sims, relations=relation_rows(RELATIONS))
    ksr = FakeKSR(registered={IVAN, BORIS})
    r = Router(ksr, Config(log_level=1), directory, clock=time.time)
    r._stats_due = float("inf")
    return ksr, r


def line(caller: str) -> str:
    values = {"$rm": "INVITE", "$si": "127.0.0.2", "$rU": "88622550101", "$fU": caller}
    return SEPARATOR.join(str(values.get(name, NULL)) for name in REQUEST_FIELDS)


CASES = {"sticky off": (0, HIT, IVAN), "sticky on, no relation": (30, MISS, IVAN),
         "sticky on, relation hit": (30, HIT, BORIS)}


def test_whole_inbound_call_side_by_side(benchmark):
    """route_initial for a carrier's call to a DID with 100,000 relations loaded: sticky off,
    on without a relation, on with a hit; each decided afresh (a caller's first call in this
    worker; a caller with a relation is always decided afresh) and remembered (a repeat call:
    with sticky on, the caller's relation is looked up again in case one appeared). The
    cases run interleaved, 40 rounds of 300 calls each, so that a noisy machine slows them
    alike; printed: the fastest round and the median round per case. Timed by
    pytest-benchmark: the hit."""
    calls = {}
    for case, (days, caller, first) in CASES.items():
        ksr, r = router(days)
        fields = line(caller)

        def fresh(ksr=ksr, r=r, fields=fields):
            ksr.calls.clear()
            r._decided.clear()
            return r.route_initial(None, fields)

        def remembered(ksr=ksr, r=r, fields=fields):
            ksr.calls.clear()
            return r.route_initial(None, fields)
        assert fresh() == RELAY_TO_SIM and ksr.pv.values["$avp(plan)"].split("|")[-1] == first
        calls[case] = fresh
        if case != "sticky on, relation hit":
            calls[f"{case}, remembered"] = remembered
    rounds = {case: [] for case in calls}
    for _ in range(40):
        for case, call in calls.items():
            rounds[case].append(timeit.timeit(call, number=300) / 300 * 1e6)
    print()
    for case, times in rounds.items():
        print(f"inbound call, {case:38s} fastest {min(times):6.2f} us, "
              f"median {statistics.median(times):6.2f} us")
    assert benchmark(calls["sticky on, relation hit"]) == RELAY_TO_SIM


def test_relation_lookup_at_100k(benchmark):
    rel = Relations(relation_rows(RELATIONS))
    assert benchmark(rel.get, 1, "+79890000001") == (2, int(NOW - 3600))


def test_memory_per_100k_relations(benchmark):
    """Timed: building the arrays from 100,000 rows (a worker's full load without the
    query); printed: what they hold."""
    rows = relation_rows(RELATIONS)
    benchmark.pedantic(Relations, (rows,), rounds=3)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    rel = Relations(rows)
    after = tracemalloc.take_snapshot()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    held = sum(s.size_diff for s in after.compare_to(before, "filename"))
    as_dict = _dict_size(rows)
    print(f"\nsticky relations: {len(rel):,} held in {held / 2 ** 20:.2f} MiB "
          f"({held / len(rel):.1f} bytes each; arrays {rel.nbytes / 2 ** 20:.2f} MiB); "
          f"peak while building {peak / 2 ** 20:.1f} MiB; "
          f"the same as a dict of tuples: {as_dict / 2 ** 20:.1f} MiB")


def _dict_size(rows) -> int:
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    d = {(company, client): (manager, answered) for client, company, manager, answered in rows}
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    assert d
    return sum(s.size_diff for s in after.compare_to(before, "filename"))


def test_load_and_update_100k_relations_from_postgresql(benchmark, bench_dsn):
    """A worker's full load of 100,000 relations (a new connection) and one client's
    notified change, from a real PostgreSQL (timed: the change; printed: both)."""
    import psycopg2
    conn = psycopg2.connect(bench_dsn)
    with conn, conn.cursor() as cur:
        cur.execute("TRUNCATE sticky_relation")
        cur.execute("INSERT INTO sticky_relation SELECT 1, '+7989' || lpad(g::text, 7, '0'), "
                    "1 + g %% 50, now() - (g %% 720) * interval '1 hour' "
                    "FROM generate_series(1, %s) g", (RELATIONS,))
    conn.close()
    db = Database(bench_dsn)
    loads = []
    for _ in range(3):
        started = time.perf_counter()
        rel = Relations(db.sticky_relations(30))
        loads.append(time.perf_counter() - started)
    updates = []
    for i in range(20):
        client = f"+7989{i * 4999:07d}"
        started = time.perf_counter()
        rel.replace([client], db.sticky_relations(30, [client]))
        updates.append(time.perf_counter() - started)
    loads.sort(), updates.sort()
    client = "+79890004999"
    benchmark.pedantic(lambda: rel.replace([client], db.sticky_relations(30, [client])),
                       rounds=20)
    print(f"\nsticky relations from PostgreSQL: {len(rel):,} loaded in "
          f"{loads[1] * 1000:.0f} ms (median of 3); one notified client applied in "
          f"{updates[10] * 1000:.2f} ms (median of 20, query included)")
    assert len(rel) == RELATIONS
