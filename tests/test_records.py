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
# Inbound calls whose first SIM rang through the client's sticky manager (migration 007):
# 1 and 21 reached him; 19 did not (Ivan first by stickiness, Boris answered).
STICKY_CALLS = {1, 19, 21}


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
    """A fresh, migrated database with no records (the template's copy), for a test that
    commits (pbxctl does)."""
    return _copy(cluster)


@pytest.fixture(scope="module")
def scratch(cluster):
    return _copy(cluster)


@pytest.fixture
def tx(scratch):
    """tx(statement, params): raw SQL in one transaction, rolled back after the test (a
    copied database costs 0.3 s); a refused statement leaves the transaction usable."""
    conn = psycopg2.connect(scratch)

    def run(statement: str, params=None) -> list[tuple]:
        with conn.cursor() as cur:
            cur.execute("SAVEPOINT statement")
            try:
                cur.execute(statement, params)
            except psycopg2.Error:
                cur.execute("ROLLBACK TO SAVEPOINT statement")
                raise
            return cur.fetchall() if cur.description else []
    run.conn = conn
    yield run
    conn.rollback()
    conn.close()


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


def raw_insert(where, **fields) -> None:
    """One row by plain INSERT; `where`: a DSN (committed) or tx."""
    row = GOOD | fields
    columns = ", ".join(row)
    run = where if callable(where) else lambda *a: sql(where, *a)
    run(f"INSERT INTO call_record ({columns}) VALUES "
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
def test_each_rule_refuses_a_raw_insert_by_name(tx, constraint, bad):
    with pytest.raises(psycopg2.errors.CheckViolation) as refused:
        raw_insert(tx, **bad)
    assert refused.value.diag.constraint_name == constraint
    assert "Failing row contains" in str(refused.value)
    raw_insert(tx)  # the good row itself passes
    assert tx("SELECT count(*) FROM call_record") == [(1,)]


def test_not_null_columns_refuse_a_missing_value(tx):
    for column in ("call_key", "started_at", "ended_at", "direction", "outcome", "sip_status"):
        with pytest.raises(psycopg2.errors.NotNullViolation):
            raw_insert(tx, **{column: None})


def test_a_record_shipped_twice_is_kept_once(tx):
    rows = [record(**GOOD)]
    with tx.conn.cursor() as cur:
        ship(cur, rows)
        ship(cur, rows)  # the loader's retry after a crash
        ship(cur, rows + [record(**(GOOD | {"call_key": "other;tag"}))])
    assert tx("SELECT call_key FROM call_record ORDER BY 1") == [("abc@10.0.0.1;tag1",),
                                                                ("other;tag",)]
    with pytest.raises(psycopg2.errors.UniqueViolation) as duplicate:
        raw_insert(tx)  # without ON CONFLICT: the primary key refuses it
    assert duplicate.value.diag.constraint_name.endswith("pkey")


def test_migration_applies_to_a_database_with_data_and_reapplies_as_nothing(cluster):
    name = "records_upgrade"
    _admin(cluster.dsn, f"CREATE DATABASE {name}")
    target = _dsn(cluster.dsn, name)
    assert db.migrate(target, up_to=5)[-1] == "005_masking.sql"
    sql(target, "INSERT INTO company (name) VALUES (%s)", (KUBAN,))  # pbxctl: the latest schema
    assert db.migrate(target, up_to=6) == ["006_call_records.sql"]
    assert db.migrate(target, up_to=7) == ["007_sticky.sql"]
    assert db.migrate(target, up_to=7) == []
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


def partition_of(tx, key: str) -> str:
    return tx("SELECT tableoid::regclass::text FROM call_record WHERE call_key = %s",
               (key,))[0][0]


def test_rows_land_in_their_month_and_in_default_when_it_has_none(tx):
    assert tx("SELECT call_record_partition('2025-02-10')") == [("call_record_2025_02",)]
    assert tx("SELECT call_record_partition('2025-02-28')") == [("call_record_2025_02",)]
    for key, at in (("first", "2025-02-01 00:00:00+00"), ("last", "2025-02-28 23:59:59.999+00"),
                    ("march", "2025-03-01 00:00:00+00"), ("old", "2019-07-01 12:00:00+00")):
        raw_insert(tx, call_key=key, started_at=at, answered_at=None, ended_at=at,
                   outcome="busy", duration_s=0)
    assert partition_of(tx, "first") == partition_of(tx, "last") == "call_record_2025_02"
    assert partition_of(tx, "march") == partition_of(tx, "old") == "call_record_default"
    # the month made later takes its rows out of DEFAULT
    assert tx("SELECT call_record_partition('2025-03-15')") == [("call_record_2025_03",)]
    assert partition_of(tx, "march") == "call_record_2025_03"
    assert partition_of(tx, "old") == "call_record_default"
    assert tx("SELECT count(*) FROM call_record") == [(4,)]


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
def test_prune_refuses_a_bad_or_future_day_as_a_usage_error(scratch, value, why):
    refused = pbxctl(scratch, "records", "prune", "--before", value)
    assert refused.code == 2
    assert f"argument --before: '{value}' " in refused.err and why in refused.err
    assert "Traceback" not in refused.err


def test_prune_refuses_an_unknown_time_zone(scratch):
    refused = pbxctl(scratch, "records", "prune", "--before", "2025-01-01", "--tz", "Mars/Base")
    assert refused.code == 2 and "argument --tz: 'Mars/Base' is not a time zone" in refused.err


# -- pbxctl report, over the CALLS above ---------------------------------------------------

def ok(result: Result) -> str:
    assert result.code == 0, result.err
    return result.out


@pytest.fixture(scope="module")
def reports(cluster):
    """Two companies, three districts (Sochi masks clients, as Kuban Realty does; Anapa does
    not), the CALLS shipped. Read-only for the tests."""
    dsn = _copy(cluster)
    steps = [("trunk", "add", "--name", "kuban-telecom", "--carrier", "Kuban Telecom",
              "--sources", "127.0.0.2", "--egress-host", "127.0.0.2", "--is-default", "yes"),
             ("company", "add", "--name", KUBAN, "--mask-numbers", "yes"),
             ("company", "add", "--name", DON)]
    steps += [("district", "add", "--company", company, "--name", name, "--caller-id", did,
               "--trunk", "kuban-telecom") for name, (company, did) in DISTRICTS.items()]
    steps += [("district", "update", "Anapa", "--company", KUBAN, "--mask-numbers", "no"),
              ("did", "add", "--number", S2, "--company", KUBAN, "--district", "Sochi",
               "--trunk", "kuban-telecom")]
    steps += [("did", "update", did, "--label", label) for did, label in LABELS.items() if label]
    steps += [("manager", "add", "--company", DISTRICTS[district][0], "--district", district,
               "--name", name) for name, district in MANAGERS.items()]
    for step in steps:
        assert pbxctl(dsn, *step).code == 0, step
    ids = dict(sql(dsn, "SELECT name, id FROM company") + sql(dsn, "SELECT name, id FROM district")
               + sql(dsn, "SELECT name, id FROM manager"))
    rows = []
    for no, day, at, direction, outcome, district, did, client, manager, first, wait, talk in CALLS:
        company = DISTRICTS[district][0]
        started = datetime.fromisoformat(f"{day}T{at}:00+00:00")
        answered = started + timedelta(seconds=wait) if outcome == "answered" else None
        rows.append(record(
            call_key=f"call-{no}@10.0.0.9;tag-{no}", started_at=started, answered_at=answered,
            ended_at=(answered or started) + timedelta(seconds=talk if answered else wait),
            duration_s=talk, direction=direction, outcome=outcome, sip_status=STATUS[outcome],
            company_id=ids[company], company=company, district_id=ids[district],
            district=district, did=did, did_label=LABELS.get(did), manager_id=ids.get(manager),
            manager=manager, first_manager_id=ids.get(first), first_manager=first,
            sim=SIMS.get(manager), rang_before=1 if manager and first and manager != first else 0,
            client=client, trunk="kuban-telecom" if direction != "internal" else None,
            sticky=no in STICKY_CALLS))
    sql(dsn, "SELECT call_record_partition('2025-02-01'), call_record_partition('2025-03-01')")
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        ship(cur, rows)
    conn.close()
    return dsn


def report(dsn, name, *options):
    return pbxctl(dsn, "report", name, *WINDOW, *options)


def calls_row(company, district, day, inbound, answered, missed, rate, median, outbound, talk):
    return {"company": company, "district": district, "day": day, "inbound": inbound,
            "answered": answered, "missed": missed, "answer_rate": rate,
            "median_answer_s": median, "outbound": outbound, "talk_min": talk}


CALLS_REPORT = [
    calls_row(DON, "Rostov", D1, 2, 1, 0, 100.0, 4.0, 1, 1.5),
    calls_row(DON, "Rostov", D2, 2, 1, 1, 50.0, 6.0, 0, 0.8),
    calls_row(DON, "Rostov", D3, 2, 0, 2, 0.0, None, 1, 0.0),
    calls_row(KUBAN, "Anapa", D1, 1, 1, 0, 100.0, 8.0, 0, 5.0),
    calls_row(KUBAN, "Anapa", D2, 1, 0, 1, 0.0, None, 1, 0.0),
    calls_row(KUBAN, "Anapa", D3, 4, 2, 2, 50.0, 4.0, 0, 1.5),
    calls_row(KUBAN, "Sochi", D1, 3, 1, 2, 33.3, 5.0, 1, 3.5),
    calls_row(KUBAN, "Sochi", D2, 4, 1, 2, 33.3, 20.0, 0, 4.8),
    calls_row(KUBAN, "Sochi", D3, 3, 1, 2, 33.3, 15.0, 2, 4.7),
]


def test_report_calls(reports):
    assert report(reports, "calls", "--json").json() == CALLS_REPORT


def test_report_calls_as_a_table(reports):
    assert ok(report(reports, "calls", "--company", DON)) == """\
COMPANY      DISTRICT  DAY         INBOUND  ANSWERED  MISSED  ANSWER_RATE  MEDIAN_ANSWER_S  OUTBOUND  TALK_MIN
Don Estates  Rostov    2025-02-28  2        1         0       100.0        4.0              1         1.5
Don Estates  Rostov    2025-03-01  2        1         1       50.0         6.0              0         0.8
Don Estates  Rostov    2025-03-02  2        0         2       0.0          -                1         0.0
"""


def test_report_calls_as_csv(reports):
    assert ok(report(reports, "calls", "--company", KUBAN, "--district", "Anapa", "--csv")) == (
        "company,district,day,inbound,answered,missed,answer_rate,median_answer_s,outbound,"
        "talk_min\r\n"
        "Kuban Realty,Anapa,2025-02-28,1,1,0,100.0,8.0,0,5.0\r\n"
        "Kuban Realty,Anapa,2025-03-01,1,0,1,0.0,,1,0.0\r\n"
        "Kuban Realty,Anapa,2025-03-02,4,2,2,50.0,4.0,0,1.5\r\n")


def test_report_days_are_those_of_tz(reports):
    """Record 30 (23:30 UTC on 2 March) is 02:30 on 3 March in Moscow: outside the window."""
    moscow = report(reports, "calls", "--company", KUBAN, "--district", "Anapa",
                    "--tz", "Europe/Moscow", "--json").json()
    assert moscow == CALLS_REPORT[3:5] + [calls_row(KUBAN, "Anapa", D3, 3, 2, 1, 66.7, 4.0, 0, 1.5)]


def test_report_calls_one_day_and_one_district(reports):
    assert pbxctl(reports, "report", "calls", "--since", D2, "--until", D2, "--company", KUBAN,
                  "--district", "Sochi", "--json").json() == [CALLS_REPORT[7]]


def test_report_numbers(reports):
    def row(did, label, company, calls, clients, answered, missed):
        return {"did": did, "label": label, "company": company, "calls": calls,
                "clients": clients, "answered": answered, "missed": missed}
    assert report(reports, "numbers", "--json").json() == [
        row(A1, "anapa site", KUBAN, 6, 4, 3, 3),
        row(S1, "sochi site", KUBAN, 6, 4, 2, 3),
        row(R1, None, DON, 6, 4, 2, 3),
        row(S2, "avito", KUBAN, 4, 3, 1, 3)]
    assert ok(report(reports, "numbers", "--company", DON, "--csv")) == (
        "did,label,company,calls,clients,answered,missed\r\n"
        "+78632000101,,Don Estates,6,4,2,3\r\n")
    assert ok(report(reports, "numbers", "--company", KUBAN, "--district", "Sochi")) == """\
DID           LABEL       COMPANY       CALLS  CLIENTS  ANSWERED  MISSED
+78622550101  sochi site  Kuban Realty  6      4        2         3
+78622550102  avito       Kuban Realty  4      3        1         3
"""


def test_report_managers(reports):
    ids = dict(sql(reports, "SELECT name, id FROM manager"))

    def row(company, name, answered, sticky, missed_first, outbound, talk):
        return {"company": company, "manager_id": ids[name], "manager": name,
                "answered": answered, "sticky": sticky, "missed_first": missed_first,
                "outbound": outbound, "talk_min": talk}
    boris, ivan = row(KUBAN, "Boris", 2, 0, 0, 2, 8.8), row(KUBAN, "Ivan", 1, 1, 6, 1, 4.2)
    assert report(reports, "managers", "--json").json() == [
        row(DON, "Petr", 2, 0, 3, 2, 2.3), boris, ivan, row(KUBAN, "Olga", 3, 1, 3, 1, 6.5)]
    assert report(reports, "managers", "--company", KUBAN, "--district", "Sochi",
                  "--json").json() == [boris, ivan]
    assert ok(report(reports, "managers", "--company", DON, "--csv")) == (
        "company,manager_id,manager,answered,sticky,missed_first,outbound,talk_min\r\n"
        f"Don Estates,{ids['Petr']},Petr,2,0,3,2,2.3\r\n")


def token(dsn, client: str) -> str:
    company_id = sql(dsn, "SELECT id FROM company WHERE name = %s", (KUBAN,))[0][0]
    return Masker(Keys.parse(KEY)).mask(client, company_id)


def missed_row(company, client, did, district, last_call, calls):
    return {"company": company, "client": client, "did": did, "district": district,
            "last_call": last_call, "calls": calls}


def callback_list(shown):
    """The call-back list of the window, newest first; shown(client) is how a masked
    (Sochi) client appears."""
    return [missed_row(KUBAN, C[12], A1, "Anapa", f"{D3}T23:30:00+00:00", 1),
            missed_row(KUBAN, shown(C[11]), S1, "Sochi", f"{D3}T17:00:00+00:00", 1),
            missed_row(DON, C[8], R1, "Rostov", f"{D3}T13:00:00+00:00", 1),
            missed_row(KUBAN, shown(C[1]), S2, "Sochi", f"{D3}T09:30:00+00:00", 2),
            missed_row(KUBAN, shown(C[2]), S1, "Sochi", f"{D2}T15:00:00+00:00", 2)]


def test_report_missed_withholds_masked_clients_without_keys(reports):
    done = report(reports, "missed", "--json")
    assert done.json() == callback_list(lambda client: "masked")
    assert "no masking keys are configured here (PBX_MASK_KEYS_FILE)" in done.err
    for form in ((), ("--csv",)):
        text = ok(report(reports, "missed", *form))
        for client in (C[1], C[2], C[11]):
            assert client not in text


@pytest.fixture
def keys_file(tmp_path, monkeypatch):
    path = tmp_path / "mask.keys"
    path.write_text(KEY)
    path.chmod(0o600)
    monkeypatch.setenv("PBX_MASK_KEYS_FILE", str(path))
    return path


def test_report_missed_shows_the_token_managers_see(reports, keys_file):
    assert report(reports, "missed", "--json").json() == callback_list(lambda c: token(reports, c))
    assert ok(pbxctl(reports, "mask", "--company", KUBAN, C[11])).strip() == token(reports, C[11])
    assert ok(report(reports, "missed", "--company", KUBAN, "--district", "Sochi", "--csv")) == (
        "company,client,did,district,last_call,calls\r\n"
        f"Kuban Realty,{token(reports, C[11])},{S1},Sochi,2025-03-02T17:00:00+00:00,1\r\n"
        f"Kuban Realty,{token(reports, C[1])},{S2},Sochi,2025-03-02T09:30:00+00:00,2\r\n"
        f"Kuban Realty,{token(reports, C[2])},{S1},Sochi,2025-03-01T15:00:00+00:00,2\r\n")


def test_report_missed_reveal_shows_real_numbers_and_is_audited(reports):
    assert report(reports, "missed", "--reveal", "--json").json() == callback_list(lambda c: c)
    audit = sql(reports, "SELECT new_row FROM audit WHERE table_name = 'masking' AND "
                         "operation = 'REVEAL' ORDER BY id DESC LIMIT 1")[0][0]
    assert audit["report"] == "missed" and audit["numbers"] == 3
    assert (audit["since"], audit["until"]) == (D1, D3)
    assert not any(c in json.dumps(audit) for c in C.values())  # never a number


def test_report_missed_a_later_answered_call_or_call_back_takes_a_client_off(reports):
    """Until 1 March: c3's missed call was answered on 2 March, c8's returned (an attempt)
    the same day, c6's after the window (3 March): only c2 still waits."""
    done = pbxctl(reports, "report", "missed", "--since", D1, "--until", D2, "--reveal", "--json")
    assert done.json() == [missed_row(KUBAN, C[2], S1, "Sochi", f"{D2}T15:00:00+00:00", 2)]


def test_report_missed_as_a_table_in_moscow_time(reports):
    assert ok(report(reports, "missed", "--company", DON, "--tz", "Europe/Moscow")) == """\
COMPANY      CLIENT        DID           DISTRICT  LAST_CALL                 CALLS
Don Estates  +79891110008  +78632000101  Rostov    2025-03-02 16:00:00+0300  1
"""


def test_report_window_defaults_to_the_last_30_days_with_today(dsn):
    now = datetime.now(timezone.utc)
    for days in (0, 29, 30):
        at = now - timedelta(days=days)
        raw_insert(dsn, call_key=f"ago-{days}", started_at=at, answered_at=None, ended_at=at,
                   outcome="busy", duration_s=0, company_id=None, district_id=None)
    rows = pbxctl(dsn, "report", "calls", "--json").json()
    assert [(r["day"], r["inbound"]) for r in rows] == [
        ((now - timedelta(days=29)).date().isoformat(), 1), (now.date().isoformat(), 1)]
    until = (now - timedelta(days=1)).date().isoformat()
    rows = pbxctl(dsn, "report", "calls", "--until", until, "--json").json()
    assert [r["day"] for r in rows] == [(now - timedelta(days=d)).date().isoformat()
                                        for d in (30, 29)]


def test_report_chart_draws_a_png(reports, tmp_path):
    for name in ("calls", "numbers"):
        path = tmp_path / f"{name}.png"
        done = report(reports, name, "--chart", str(path))
        assert done.code == 0 and f"chart written to {path}" in done.err
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


@pytest.mark.parametrize("options, code, message", [
    (("--since", "2025-13-01"), 2, "argument --since: '2025-13-01' is not a date (YYYY-MM-DD)"),
    (("--until", "2 March"), 2, "argument --until: '2 March' is not a date (YYYY-MM-DD)"),
    (("--since", D3, "--until", D1), 2, f"argument --since: '{D3}' is after --until '{D1}'"),
    (("--tz", "Moscow"), 2, "argument --tz: 'Moscow' is not a time zone"),
    (("--json", "--csv"), 2, "--json and --csv: give one"),
    (("--company", KUBAN, "--district", "Atlantis"), 1,
     "district: 'Atlantis' does not exist in company 'Kuban Realty'"),
    (("--company", "Nobody"), 1, "company: 'Nobody' does not exist"),
    (("--district", "Sochi"), 1, "company: '' is required with --district"),
])
def test_report_refusals_name_the_field_and_value(reports, options, code, message):
    for name in ("calls", "missed"):
        refused = pbxctl(reports, "report", name, *options)
        assert (refused.code, refused.out) == (code, "")
        assert message in refused.err and "Traceback" not in refused.err
