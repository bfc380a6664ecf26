"""Call records (migration 006) on a private PostgreSQL of their own: the table's rules, its
monthly partitions, pbxctl records prune and pbxctl report over hand-made records whose
figures were counted by hand (the CALLS table below). No Kamailio: none is needed."""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg2
import pytest

from harness.records import record, ship
from kemi import db
from kemi.admin.cli import main
from kemi.masking import Keys, Masker
from kemi.stack import PostgresCluster, free_port

KUBAN, DON = "Kuban Realty", "Don Estates"
S1, S2, A1, R1 = "+78622550101", "+78622550102", "+78613350101", "+78632000101"
DISTRICTS = {"Sochi": (KUBAN, S1), "Anapa": (KUBAN, A1), "Rostov": (DON, R1)}
LABELS = {S1: "sochi site", S2: "avito", A1: "anapa site", R1: None}
MANAGERS = {"Ivan": "Sochi", "Boris": "Sochi", "Olga": "Anapa", "Petr": "Rostov"}
SIMS = {"Ivan": "+79181110001", "Boris": "+79181110002", "Olga": "+79181110003",
        "Petr": "+79181110004"}
C = {n: f"+7989111{n:04d}" for n in range(1, 13)}  # clients c1..c12
STATUS = {"answered": 200, "busy": 486, "no_answer": 480, "cancelled": 487,
          "nobody_reachable": 480, "refused": 403, "carrier_failure": 503}
KEY = "1 00112233445566778899aabbccddeeff active\n"
D0, D1, D2, D3, D4 = "2025-02-27", "2025-02-28", "2025-03-01", "2025-03-02", "2025-03-03"
WINDOW = ("--since", D1, "--until", D3)

# Every record of the report tests: no, day, time (UTC), direction, outcome, district, DID,
# client, manager (outbound: the caller; inbound: who answered), first in line, seconds to
# answer (or ringing), seconds talked. Days D1-D3 are the window; D0 and D4 lie outside it.
CALLS = [
    (1, D1, "09:00", "inbound", "answered", "Sochi", S1, C[1], "Ivan", "Ivan", 5, 120),
    (2, D1, "09:30", "inbound", "no_answer", "Sochi", S1, C[2], None, "Ivan", 30, 0),
    (3, D1, "10:00", "inbound", "busy", "Sochi", S2, C[3], None, "Ivan", 0, 0),
    (4, D1, "11:00", "outbound", "answered", "Sochi", S1, C[2], "Boris", None, 10, 60),
    (5, D1, "12:00", "inbound", "answered", "Anapa", A1, C[4], "Olga", "Olga", 8, 300),
    (6, D1, "13:00", "inbound", "refused", "Rostov", R1, C[5], None, None, 0, 0),
    (7, D1, "14:00", "inbound", "answered", "Rostov", R1, C[1], "Petr", "Petr", 4, 90),
    (8, D1, "15:00", "outbound", "no_answer", "Rostov", R1, C[6], "Petr", None, 25, 0),
    (9, D1, "16:00", "internal", "answered", "Sochi", None, None, "Ivan", None, 3, 30),
    (10, D2, "09:00", "inbound", "cancelled", "Sochi", S2, C[3], None, "Ivan", 12, 0),
    (11, D2, "09:10", "inbound", "answered", "Sochi", S2, C[7], "Boris", "Ivan", 20, 240),
    (12, D2, "10:00", "inbound", "nobody_reachable", "Anapa", A1, C[8], None, "Olga", 0, 0),
    (13, D2, "11:00", "outbound", "carrier_failure", "Anapa", A1, C[8], "Olga", None, 0, 0),
    (14, D2, "12:00", "inbound", "answered", "Rostov", R1, C[5], "Petr", "Petr", 6, 45),
    (15, D2, "13:00", "inbound", "busy", "Rostov", R1, C[6], None, "Petr", 0, 0),
    (16, D2, "14:00", "emergency", "answered", "Sochi", S1, None, "Boris", None, 2, 50),
    (17, D2, "15:00", "inbound", "no_answer", "Sochi", S1, C[2], None, "Ivan", 30, 0),
    (18, D2, "16:00", "inbound", "refused", "Sochi", S1, None, None, None, 0, 0),
    (19, D3, "09:00", "inbound", "answered", "Sochi", S1, C[3], "Boris", "Ivan", 15, 180),
    (20, D3, "09:30", "inbound", "no_answer", "Sochi", S2, C[1], None, "Ivan", 30, 0),
    (21, D3, "10:00", "inbound", "answered", "Anapa", A1, C[4], "Olga", "Olga", 3, 60),
    (22, D3, "11:00", "inbound", "busy", "Anapa", A1, C[10], None, "Olga", 0, 0),
    (23, D3, "11:30", "inbound", "answered", "Anapa", A1, C[10], "Olga", "Olga", 5, 30),
    (24, D3, "12:00", "outbound", "busy", "Rostov", R1, C[5], "Petr", None, 0, 0),
    (25, D3, "13:00", "inbound", "no_answer", "Rostov", R1, C[8], None, "Petr", 30, 0),
    (26, D3, "14:00", "inbound", "cancelled", "Rostov", R1, C[6], None, "Petr", 5, 0),
    (27, D3, "15:00", "outbound", "answered", "Sochi", S2, C[7], "Ivan", None, 7, 100),
    (28, D3, "16:00", "outbound", "cancelled", "Sochi", S1, C[11], "Boris", None, 10, 0),
    (29, D3, "17:00", "inbound", "nobody_reachable", "Sochi", S1, C[11], None, "Ivan", 0, 0),
    (30, D3, "23:30", "inbound", "no_answer", "Anapa", A1, C[12], None, "Olga", 20, 0),
    (31, D0, "12:00", "inbound", "answered", "Sochi", S1, C[2], "Ivan", "Ivan", 5, 60),
    (32, D4, "10:00", "outbound", "answered", "Rostov", R1, C[6], "Petr", None, 5, 20),
]


# -- a private PostgreSQL -----------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster():
    """A cluster of this module's own, with a migrated template database to copy."""
    state = Path(tempfile.mkdtemp(prefix="cloud-pbx-records-"))
    os.chmod(state, 0o755)
    pg = PostgresCluster(state, free_port(), durable=False)
    try:
        pg.start()
        _admin(pg.dsn, "CREATE DATABASE records_template")
        template = _dsn(pg.dsn, "records_template")
        db.migrate(template)
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(state, ignore_errors=True)


def _dsn(base: str, name: str) -> str:
    return base.replace("dbname=pbx", f"dbname={name}")


def _admin(dsn: str, statement: str) -> None:
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(statement)
    conn.close()


_copies = iter(range(10 ** 6))


def _copy(cluster) -> str:
    name = f"records_{next(_copies)}"
    _admin(cluster.dsn, f"CREATE DATABASE {name} TEMPLATE records_template")
    _admin(cluster.dsn, f"ALTER DATABASE {name} SET timezone = 'UTC'")  # the default --tz
    return _dsn(cluster.dsn, name)


@pytest.fixture
def dsn(cluster):
    """A fresh, migrated database with no records (the template's copy)."""
    return _copy(cluster)


def sql(dsn: str, statement: str, params=None) -> list[tuple]:
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


class Result:
    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err

    def json(self):
        assert self.code == 0, self.err
        return json.loads(self.out)


def pbxctl(dsn: str, *argv: str) -> Result:
    """pbxctl in-process: its exit code, stdout and stderr (stderr through a swap)."""
    import contextlib
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = main([*argv, "--dsn", dsn], out=out, stdin=io.StringIO(""))
        except SystemExit as exc:  # argparse: usage errors
            code = exc.code
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture(autouse=True)
def no_keys(monkeypatch):
    """No masking keys unless a test gives some (the host's environment does not count)."""
    monkeypatch.delenv("PBX_MASK_KEYS_FILE", raising=False)
    monkeypatch.delenv("PBX_MASK_KEYS", raising=False)


# -- the table's rules --------------------------------------------------------------------

GOOD = dict(call_key="abc@10.0.0.1;tag1", started_at="2025-02-10 10:00:00+00",
            answered_at="2025-02-10 10:00:05+00", ended_at="2025-02-10 10:02:05+00",
            duration_s=120, direction="inbound", outcome="answered", sip_status=200,
            did=S1, client=C[1], sim=SIMS["Ivan"], manager_id=1, manager="Ivan")


def raw_insert(dsn: str, **fields) -> None:
    row = GOOD | fields
    columns = ", ".join(row)
    sql(dsn, f"INSERT INTO call_record ({columns}) VALUES "
             f"({', '.join(f'%({c})s' for c in row)})", row)


@pytest.mark.parametrize("constraint, bad", [
    ("call_record_direction_known", {"direction": "sideways"}),
    ("call_record_outcome_known", {"outcome": "lost", "answered_at": None, "duration_s": 0}),
    ("call_record_sip_status_range", {"sip_status": 99}),
    ("call_record_sip_status_range", {"sip_status": 700}),
    ("call_record_ended_after_start", {"ended_at": "2025-02-10 09:59:59+00",
                                       "answered_at": None, "outcome": "busy", "duration_s": 0}),
    ("call_record_answered_during_call", {"answered_at": "2025-02-10 09:59:59+00"}),
    ("call_record_answered_during_call", {"answered_at": "2025-02-10 10:02:06+00"}),
    ("call_record_answered_outcome", {"answered_at": None, "duration_s": 0}),
    ("call_record_answered_outcome", {"outcome": "busy", "duration_s": 0}),
    ("call_record_duration_not_negative", {"duration_s": -1}),
    ("call_record_duration_zero_unanswered", {"outcome": "no_answer", "answered_at": None}),
    ("call_record_rang_before_not_negative", {"rang_before": -1}),
    ("call_record_client_e164", {"client": "89891234567"}),
    ("call_record_did_e164", {"did": "+0123456"}),
    ("call_record_sim_e164", {"sim": "79181110001"}),
])
def test_each_rule_refuses_a_raw_insert_by_name(dsn, constraint, bad):
    with pytest.raises(psycopg2.errors.CheckViolation) as refused:
        raw_insert(dsn, **bad)
    assert refused.value.diag.constraint_name == constraint
    assert "Failing row contains" in str(refused.value)
    raw_insert(dsn)  # the good row itself passes
    assert sql(dsn, "SELECT count(*) FROM call_record") == [(1,)]


def test_not_null_columns_refuse_a_missing_value(dsn):
    for column in ("call_key", "started_at", "ended_at", "direction", "outcome", "sip_status"):
        with pytest.raises(psycopg2.errors.NotNullViolation):
            raw_insert(dsn, **{column: None})


def test_a_record_shipped_twice_is_kept_once(dsn):
    rows = [record(**{k: v for k, v in GOOD.items()})]
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        ship(cur, rows)
        ship(cur, rows)  # the loader's retry after a crash
        ship(cur, rows + [record(**(GOOD | {"call_key": "other;tag"}))])
    conn.close()
    assert sql(dsn, "SELECT call_key FROM call_record ORDER BY 1") == [("abc@10.0.0.1;tag1",),
                                                                      ("other;tag",)]
    with pytest.raises(psycopg2.errors.UniqueViolation) as duplicate:
        raw_insert(dsn)  # without ON CONFLICT: the primary key refuses it
    assert duplicate.value.diag.constraint_name.endswith("pkey")


def test_migration_applies_to_a_database_with_data_and_reapplies_as_nothing(cluster):
    name = "records_upgrade"
    _admin(cluster.dsn, f"CREATE DATABASE {name}")
    target = _dsn(cluster.dsn, name)
    assert db.migrate(target, up_to=5)[-1] == "005_masking.sql"
    assert pbxctl(target, "company", "add", "--name", KUBAN).code == 0
    assert db.migrate(target) == ["006_call_records.sql"]
    assert db.migrate(target) == []
    assert sql(target, "SELECT name FROM company") == [(KUBAN,)]
    this_month = datetime.now(timezone.utc).strftime("%Y_%m")
    parts = [r[0] for r in sql(target, "SELECT c.relname FROM pg_inherits i JOIN pg_class c "
                                       "ON c.oid = i.inhrelid WHERE i.inhparent = "
                                       "'call_record'::regclass ORDER BY 1")]
    assert len(parts) == 3 and f"call_record_{this_month}" in parts  # and next month's
    assert "call_record_default" in parts
    # the function is idempotent: again for the same months, nothing new
    sql(target, "SELECT call_record_partition(current_date), call_record_partition(current_date)")
    assert len(sql(target, "SELECT 1 FROM pg_inherits WHERE inhparent = "
                           "'call_record'::regclass")) == 3


def partition_of(dsn: str, key: str) -> str:
    return sql(dsn, "SELECT tableoid::regclass::text FROM call_record WHERE call_key = %s",
               (key,))[0][0]


def test_rows_land_in_their_month_and_in_default_when_it_has_none(dsn):
    assert sql(dsn, "SELECT call_record_partition('2025-02-10')") == [("call_record_2025_02",)]
    assert sql(dsn, "SELECT call_record_partition('2025-02-28')") == [("call_record_2025_02",)]
    for key, at in (("first", "2025-02-01 00:00:00+00"), ("last", "2025-02-28 23:59:59.999+00"),
                    ("march", "2025-03-01 00:00:00+00"), ("old", "2019-07-01 12:00:00+00")):
        raw_insert(dsn, call_key=key, started_at=at, answered_at=None, ended_at=at,
                   outcome="busy", duration_s=0)
    assert partition_of(dsn, "first") == partition_of(dsn, "last") == "call_record_2025_02"
    assert partition_of(dsn, "march") == partition_of(dsn, "old") == "call_record_default"
    # the month made later takes its rows out of DEFAULT
    assert sql(dsn, "SELECT call_record_partition('2025-03-15')") == [("call_record_2025_03",)]
    assert partition_of(dsn, "march") == "call_record_2025_03"
    assert partition_of(dsn, "old") == "call_record_default"
    assert sql(dsn, "SELECT count(*) FROM call_record") == [(4,)]


# -- pbxctl records prune -----------------------------------------------------------------

def test_prune_drops_whole_months_and_deletes_in_the_boundary_month_and_default(dsn):
    sql(dsn, "SELECT call_record_partition('2025-01-01'), call_record_partition('2025-02-01')")
    for key, at in (("jan", "2025-01-10 12:00+00"), ("feb-early", "2025-02-05 12:00+00"),
                    ("feb-late", "2025-02-20 12:00+00"), ("default-old", "2020-06-01 12:00+00"),
                    ("default-dec", "2024-12-31 23:00+00"), ("moscow-15th", "2025-02-14 21:30+00")):
        raw_insert(dsn, call_key=key, started_at=at, answered_at=None, ended_at=at,
                   outcome="busy", duration_s=0)
    done = pbxctl(dsn, "records", "prune", "--before", "2025-02-15", "--json")
    assert done.json() == [
        {"partition": "call_record_2025_01", "action": "dropped", "records": 1},
        {"partition": "call_record_2025_02", "action": "deleted", "records": 2},
        {"partition": "call_record_default", "action": "deleted", "records": 2}]
    assert "removed 5 record(s) started before 2025-02-15 00:00 (UTC)" in done.err
    assert sql(dsn, "SELECT call_key FROM call_record") == [("feb-late",)]
    assert sql(dsn, "SELECT to_regclass('call_record_2025_01')") == [(None,)]
    again = pbxctl(dsn, "records", "prune", "--before", "2025-02-15")
    assert again.code == 0 and again.out == ("(none)\nremoved 0 record(s) started before "
                                             "2025-02-15 00:00 (UTC)\n")
    audit = sql(dsn, "SELECT operation, new_row FROM audit WHERE table_name = 'call_record' "
                     "ORDER BY id")
    assert audit[0] == ("PRUNE", {"before": "2025-02-15", "tz": "UTC", "records": 5,
                                  "partitions": {"call_record_2025_01": "dropped",
                                                 "call_record_2025_02": "deleted",
                                                 "call_record_default": "deleted"}})


def test_prune_days_are_those_of_tz(dsn):
    for key, at in (("23:59 Moscow", "2025-02-14 20:59+00"), ("00:30 Moscow", "2025-02-14 21:30+00")):
        raw_insert(dsn, call_key=key, started_at=at, answered_at=None, ended_at=at,
                   outcome="busy", duration_s=0)
    done = pbxctl(dsn, "records", "prune", "--before", "2025-02-15", "--tz", "Europe/Moscow")
    assert done.code == 0, done.err
    assert sql(dsn, "SELECT call_key FROM call_record") == [("00:30 Moscow",)]


def test_prune_of_a_whole_month_boundary_drops_it(dsn):
    sql(dsn, "SELECT call_record_partition('2025-01-01')")
    raw_insert(dsn, call_key="jan", started_at="2025-01-31 23:00+00", answered_at=None,
               ended_at="2025-01-31 23:00+00", outcome="busy", duration_s=0)
    assert pbxctl(dsn, "records", "prune", "--before", "2025-02-01", "--json").json() == [
        {"partition": "call_record_2025_01", "action": "dropped", "records": 1}]


@pytest.mark.parametrize("value, why", [
    ("2025-02-30", "'2025-02-30' is not a date (YYYY-MM-DD)"),
    ("15.02.2025", "'15.02.2025' is not a date (YYYY-MM-DD)"),
    ("yesterday", "'yesterday' is not a date (YYYY-MM-DD)"),
    ((datetime.now(timezone.utc) + timedelta(days=2)).date().isoformat(), "is in the future"),
])
def test_prune_refuses_a_bad_or_future_day_as_a_usage_error(dsn, value, why):
    refused = pbxctl(dsn, "records", "prune", "--before", value)
    assert refused.code == 2
    assert f"argument --before: '{value}' " in refused.err and why in refused.err
    assert "Traceback" not in refused.err


def test_prune_refuses_an_unknown_time_zone(dsn):
    refused = pbxctl(dsn, "records", "prune", "--before", "2025-01-01", "--tz", "Mars/Base")
    assert refused.code == 2 and "argument --tz: 'Mars/Base' is not a time zone" in refused.err
