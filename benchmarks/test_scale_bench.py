"""Table size must not matter (make bench): 1,000,000 DIDs and 100,000 SIMs.

Prints: data set generation time; a DID plan miss (one indexed query) on 1M DIDs; a lookup
on 1M DIDs beside the same on a 10-row data set; the plans' load time and memory; what one
SIM's, one manager's, one district's and one DID's notified change costs a worker, beside
reloading every SIM; the memory of a full DID plan cache. Figures, not pass/fail."""

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


def loaded(dsn) -> Directory:
    directory = Directory(Database(dsn, timeout_ms=5000, listen=True), ttl=300, size=10000)
    directory.refresh()  # a first connection: every snapshot and the DID index load
    return directory


@pytest.fixture(scope="module")
def big_directory(big):
    started = time.monotonic()
    loaded(big)  # timed alone: tracing allocations slows Python severalfold
    took = time.monotonic() - started
    tracemalloc.start()
    directory = loaded(big)
    memory = tracemalloc.get_traced_memory()[0] / 2**20
    tracemalloc.stop()
    print(f"\nplans loaded in {took:.2f} s: {len(directory.sims)} SIMs, "
          f"{len(directory._did_numbers)} DIDs indexed, {memory:.1f} MiB "
          f"(the DID index {(directory._did_numbers.itemsize + directory._did_companies.itemsize) * len(directory._did_numbers) / 2**20:.1f} MiB)")
    return directory


@pytest.mark.parametrize("size", ["1M DIDs", "10 DIDs"])
def test_hit_costs_the_same_whatever_the_table_size(benchmark, big_directory, small, size):
    directory = big_directory if size == "1M DIDs" else loaded(small)
    number = "+78612000000"
    directory.number(number)
    assert benchmark(directory.number, number).did is not None


def test_a_number_not_ours_costs_no_query_on_1m_dids(benchmark, big_directory):
    assert benchmark(big_directory.number, "+79891234567").did_company is None


def _apply(directory, payload: str):
    """A notification as a worker applies it: the keyed reload of what it touched."""
    def run():
        directory.db.pending = payload
        changes = db.Changes()
        changes.add(payload)
        directory._apply(changes)
    return run


def test_one_sim_change_at_100k_sims(benchmark, big_directory):
    username = next(iter(big_directory.sims))
    benchmark.pedantic(_apply(big_directory, f"sim sim={username}"), rounds=20)
    assert big_directory.sim(username) is not None


def test_one_manager_change_at_100k_sims(benchmark, big_directory):
    sim = next(iter(big_directory.sims.values())).sim
    benchmark.pedantic(_apply(big_directory, f"manager manager={sim.manager_id} "
                                             f"district={sim.district_id}"), rounds=20)


def test_one_district_change_at_100k_sims(benchmark, big_directory):
    sim = next(iter(big_directory.sims.values())).sim
    benchmark.pedantic(_apply(big_directory, f"district district={sim.district_id}"), rounds=20)


def test_one_did_change_at_1m_dids(benchmark, big_directory):
    benchmark.pedantic(_apply(big_directory, "did did=+78612000001 district=1"), rounds=20)
    assert big_directory.did_company("+78612000001") is not None


def test_every_sim_reloaded_the_old_way(benchmark, big_directory):
    """What any change cost each worker before keyed notifications: every SIM, again."""
    benchmark.pedantic(lambda: big_directory._set_all_sims(big_directory.db.sims(everything=True)),
                       rounds=3)
    assert len(big_directory.sims) == DISTRICTS * MANAGERS


def test_memory_of_a_full_did_plan_cache(benchmark, big_directory):
    directory = big_directory

    def fill():
        for i in range(10000):
            directory.did("+78612" + f"{i * 97:06d}")
    tracemalloc.start()
    benchmark.pedantic(fill, rounds=1)
    print(f"\nDID plan cache at its bound: {len(directory._dids)} entries, "
          f"{tracemalloc.get_traced_memory()[0] / 2**20:.1f} MiB")
    tracemalloc.stop()
    assert len(directory._dids) == 10000
