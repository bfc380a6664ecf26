"""Call records at scale (make bench): PBX_BENCH_RECORDS records (default 1,000,000; the
issue's 10,000,000 with PBX_BENCH_RECORDS=10000000) over 12 months, generated with
generate_series (sql/records_dataset.sql).

Prints: the generation time and the table's size; the loader's insert rate (its statement,
INSERT ... ON CONFLICT DO NOTHING, 500 rows a statement, a commit per batch) for new records
and for a batch shipped again; each report over the last 30 days, as pbxctl runs it; a
prune of the oldest month. Figures, not pass/fail."""

from __future__ import annotations

import io
import os
import time
import uuid
from datetime import datetime, timedelta, timezone

import psycopg2
import pytest

from harness.records import BATCH, record, ship
from kemi import db
from kemi.admin.cli import main
from kemi.config import ROOT

RECORDS = int(os.environ.get("PBX_BENCH_RECORDS", "1000000"))
KEYS = "1 00112233445566778899aabbccddeeff active"  # company 1 masks: the list pays FF3-1
# Generating 10M records takes minutes (the first test's setup): more than the suite's 180 s.
pytestmark = pytest.mark.timeout(max(180, RECORDS // 10_000))


@pytest.fixture(scope="module")
def records(bench_dsn):
    admin = psycopg2.connect(bench_dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS records_bench")
        cur.execute("CREATE DATABASE records_bench")
    admin.close()
    dsn = bench_dsn.replace("dbname=pbx", "dbname=records_bench")
    db.migrate(dsn)
    started = time.monotonic()
    db.run_script(dsn, ROOT / "sql" / "records_dataset.sql", {"pbx.records": str(RECORDS)})
    took = time.monotonic() - started
    size, = _one(dsn, "SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) "
                      "FROM pg_inherits WHERE inhparent = 'call_record'::regclass")
    window, = _one(dsn, "SELECT count(*) FROM call_record "
                        "WHERE started_at >= current_date - 29")
    print(f"\n{RECORDS:,} call records generated in {took:.1f} s ({RECORDS / took:,.0f}/s, "
          f"indexes built after); {size} with indexes; {window:,} in the last 30 days")
    return dsn


def _one(dsn: str, statement: str) -> tuple:
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        cur.execute(statement)
        row = cur.fetchone()
    conn.close()
    return row


def _batch() -> list[dict]:
    """500 new records of the current month, as the proxy ships them: random Call-IDs."""
    now = datetime.now(timezone.utc)
    rows = []
    for i in range(BATCH):
        started = now - timedelta(seconds=i)
        answered = i % 3 != 0
        rows.append(record(
            call_key=f"{uuid.uuid4()}@10.0.0.1;{uuid.uuid4().hex[:8]}", started_at=started,
            answered_at=started + timedelta(seconds=5) if answered else None,
            ended_at=started + timedelta(seconds=125 if answered else 20),
            duration_s=120 if answered else 0, direction="inbound",
            outcome="answered" if answered else "no_answer", sip_status=200 if answered else 480,
            company_id=1 + i % 10, company=f"Company {1 + i % 10}", district_id=1 + i % 100,
            district=f"District {1 + i % 100}", did="+78612000000", did_label="site",
            manager_id=1 if answered else None, manager="Manager 1-1" if answered else None,
            first_manager_id=1, first_manager="Manager 1-1",
            sim="+79180000001" if answered else None, client=f"+7989{i:07d}",
            trunk="perf-carrier"))
    return rows


def _shipper(dsn: str):
    conn = psycopg2.connect(dsn, application_name="bench-loader")

    def ship_batch(rows):
        with conn, conn.cursor() as cur:  # one transaction per batch, as the loader commits
            ship(cur, rows)
    return ship_batch


def _rate(benchmark, what: str) -> None:
    median = benchmark.stats.stats.median
    print(f"\n{what}: {BATCH / median:,.0f} records/s ({median * 1000:.1f} ms a batch of "
          f"{BATCH}, median) at {RECORDS:,} records")


def test_loader_ships_new_records_in_500_row_batches(benchmark, records):
    ship_batch = _shipper(records)
    benchmark.pedantic(ship_batch, setup=lambda: ((_batch(),), {}), rounds=40)
    _rate(benchmark, "new records")


def test_loader_ships_a_batch_again_after_a_crash(benchmark, records):
    ship_batch = _shipper(records)
    rows = _batch()
    ship_batch(rows)
    benchmark.pedantic(ship_batch, args=(rows,), rounds=40)
    _rate(benchmark, "a batch shipped again (every row a conflict, kept once)")
    assert _one(records, f"SELECT count(*) FROM call_record WHERE call_key = "
                         f"'{rows[0]['call_key']}'") == (1,)


@pytest.mark.parametrize("report, options", [
    ("calls", ()), ("numbers", ()), ("managers", ()), ("missed", ()),
    ("calls", ("--company", "Company 1", "--district", "District 3")),
    ("missed", ("--company", "Company 1")),
], ids=["calls", "numbers", "managers", "missed", "calls-one-district", "missed-one-company"])
def test_report_over_the_last_30_days(benchmark, records, monkeypatch, report, options):
    monkeypatch.setenv("PBX_MASK_KEYS", KEYS)
    monkeypatch.delenv("PBX_MASK_KEYS_FILE", raising=False)
    lines = []

    def run():
        out = io.StringIO()
        assert main(["report", report, *options, "--dsn", records], out=out) == 0
        lines.append(out.getvalue().count("\n") - 1)
    benchmark.pedantic(run, rounds=3)
    print(f"\nreport {report} {' '.join(options)}: {lines[-1]:,} rows, "
          f"{benchmark.stats.stats.median * 1000:.0f} ms median at {RECORDS:,} records")


def test_prune_drops_the_oldest_month(benchmark, records):
    oldest, = _one(records, "SELECT (date_trunc('month', min(started_at)) + interval '1 month')"
                            "::date FROM call_record")
    out = io.StringIO()
    benchmark.pedantic(lambda: main(["records", "prune", "--before", str(oldest), "--dsn",
                                     records], out=out), rounds=1)
    print(f"\nprune --before {oldest}: {benchmark.stats.stats.median * 1000:.0f} ms\n"
          f"{out.getvalue()}")
