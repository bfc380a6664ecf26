"""Table size must not matter (make bench): 1,000,000 DIDs and 100,000 SIMs.

Prints: data set generation time; a cache miss (one indexed query) on 1M DIDs; a cache
hit on 1M DIDs beside the same hit on a 10-row data set; the SIM snapshot's load time and
memory; the memory of a full DID cache. Figures, not pass/fail."""

from __future__ import annotations

import random
import time
import tracemalloc

import psycopg2
import pytest

from kemi import db
from kemi.config import ROOT
from kemi.db import Database
from kemi.directory import Directory

DISTRICTS, DIDS_PER_DISTRICT, MANAGERS = 50_000, 20, 2  # 1,000,000 DIDs, 100,000 SIMs


def _database(base_dsn: str, name: str, districts: int, dids: int) -> str:
    admin = psycopg2.connect(base_dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name}")
        cur.execute(f"CREATE DATABASE {name}")
    admin.close()
    dsn = base_dsn.replace("dbname=pbx", f"dbname={name}")
    db.migrate(dsn)
    started = time.monotonic()
    db.run_script(dsn, ROOT / "sql" / "dataset.sql",
                  {"pbx.realm": "pbx.local", "pbx.districts": str(districts),
                   "pbx.dids_per_district": str(dids), "pbx.managers_per_district": str(MANAGERS)})
    print(f"\n{name}: {districts * dids} DIDs, {districts * MANAGERS} SIMs generated in "
          f"{time.monotonic() - started:.1f} s")
    return dsn


@pytest.fixture(scope="module")
def big(bench_dsn):
    return _database(bench_dsn, "scale_big", DISTRICTS, DIDS_PER_DISTRICT)


@pytest.fixture(scope="module")
def small(bench_dsn):
    return _database(bench_dsn, "scale_small", 5, 2)  # 10 DIDs


def random_did(total: int) -> str:
    return "+78612" + f"{random.randrange(total):06d}"


def test_miss_is_one_indexed_query_on_1m_dids(benchmark, big):
    database = Database(big, timeout_ms=2000)
    plan = "\n".join(r["QUERY PLAN"] for r in _explain(big))
    assert "Index Scan" in plan  # by the primary key, not a scan of the table
    route = benchmark(lambda: database.query("did_route", number=random_did(DISTRICTS * DIDS_PER_DISTRICT)))
    assert route and route[0]["hunt"]


def _explain(dsn):
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute("EXPLAIN " + db.QUERIES["did_route"], {"number": "+78612123456"})
        rows = [{"QUERY PLAN": r[0]} for r in cur.fetchall()]
    conn.close()
    return rows


@pytest.mark.parametrize("size", ["1M DIDs", "10 DIDs"])
def test_hit_costs_the_same_whatever_the_table_size(benchmark, big, small, size):
    directory = Directory(Database(big if size == "1M DIDs" else small), ttl=300, size=10000)
    number = "+78612000000"
    directory.did_route(number)
    assert benchmark(directory.did_route, number) is not None


def test_sim_snapshot_of_100k_sims(benchmark, big):
    directory = Directory(Database(big), ttl=300, size=10000)
    snapshot = benchmark.pedantic(directory._fetch_sims, args=("sims",), rounds=3)
    assert len(snapshot) == DISTRICTS * MANAGERS
    tracemalloc.start()
    kept = directory._fetch_sims("sims")
    print(f"\nSIM snapshot: {len(kept)} SIMs, {tracemalloc.get_traced_memory()[0] / 2**20:.1f} MiB")
    tracemalloc.stop()


def test_caller_id_owner_snapshot_reloaded_after_a_did_change(benchmark, big):
    """What a change to the did table costs each worker instead of the SIM snapshot."""
    directory = Directory(Database(big), ttl=300, size=10000)

    def reload():
        directory.generation += 1  # as a notified did change does
        return directory._caller_id_owners()
    owners = benchmark.pedantic(reload, rounds=3)
    assert len(owners) >= DISTRICTS  # every district's number at least
    print(f"\ncaller-ID owners: {len(owners)} numbers")


def test_memory_of_a_full_did_cache(benchmark, big):
    directory = Directory(Database(big, timeout_ms=2000), ttl=300, size=10000)

    def fill():
        for i in range(10000):
            directory.did_route("+78612" + f"{i * 97:06d}")
    tracemalloc.start()
    benchmark.pedantic(fill, rounds=1)
    print(f"\nDID cache at its bound: {len(directory._dids)} entries, "
          f"{tracemalloc.get_traced_memory()[0] / 2**20:.1f} MiB")
    tracemalloc.stop()
    assert len(directory._dids) == 10000
