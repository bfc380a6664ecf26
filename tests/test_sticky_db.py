"""Sticky manager in PostgreSQL (migration 007), on a private cluster with the demo company
(no Kamailio): the settings' and relations' constraints, the relation kept from shipped
records (the latest answered call wins, whatever order records arrive in), its keyed
notification, and a worker's Directory following it within a second."""

from __future__ import annotations

import select
import time
from datetime import datetime, timedelta, timezone

import psycopg2
import pytest

from harness.records import record, ship
from kemi import db
from kemi.config import ROOT
from kemi.db import Database
from kemi.directory import Directory

from .test_directory import Counting
from .test_records import _admin, _dsn, cluster, sql  # noqa: F401  (cluster: a fixture)

SOCHI_DID = "+78622550101"
IVAN_SIM, BORIS_SIM = "+79181110003", "+79181110004"
CLIENT, OTHER = "+79895550001", "+79895550002"
NOW = datetime.now(timezone.utc).replace(microsecond=0)
_copies = iter(range(10 ** 6))


@pytest.fixture(scope="module")
def template(cluster):  # noqa: F811
    _admin(cluster.dsn, "CREATE DATABASE sticky_template")
    dsn = _dsn(cluster.dsn, "sticky_template")
    db.migrate(dsn)
    db.run_script(dsn, ROOT / "sql" / "demo.sql", {"pbx.realm": "pbx.local"})
    return cluster


@pytest.fixture
def dsn(template):
    name = f"sticky_{next(_copies)}"
    _admin(template.dsn, f"CREATE DATABASE {name} TEMPLATE sticky_template")
    return _dsn(template.dsn, name)


def manager(dsn, name) -> int:
    return sql(dsn, "SELECT id FROM manager WHERE name = %s", (name,))[0][0]


def company(dsn) -> int:
    return sql(dsn, "SELECT id FROM company WHERE name = 'Kuban Realty'")[0][0]


def call(dsn, key, who, client=CLIENT, direction="outbound", answered=True, ago_s=60, **extra):
    """One record as the loader ships it: `who` (a manager's name) called or answered."""
    started = NOW - timedelta(seconds=ago_s)
    return record(call_key=key, started_at=started, ended_at=started + timedelta(seconds=30),
                  answered_at=started + timedelta(seconds=5) if answered else None,
                  duration_s=25 if answered else 0, direction=direction,
                  outcome="answered" if answered else "no_answer",
                  sip_status=200 if answered else 480, company_id=company(dsn),
                  manager_id=manager(dsn, who) if who else None, manager=who, client=client,
                  did=SOCHI_DID, **extra)


def shipped(dsn, *rows) -> None:
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        ship(cur, list(rows))
    conn.close()


def relation(dsn, client=CLIENT):
    rows = sql(dsn, "SELECT m.name, r.answered_at FROM sticky_relation r JOIN manager m "
                    "ON m.id = r.manager_id WHERE r.client = %s", (client,))
    return rows[0] if rows else None


# -- the database refuses what would corrupt routing ---------------------------------------

@pytest.mark.parametrize("statement, constraint", [
    ("UPDATE company SET sticky_days = 0", "company_sticky_days_range"),
    ("UPDATE company SET sticky_days = 366", "company_sticky_days_range"),
    ("UPDATE district SET sticky_days = -1", "district_sticky_days_range"),
    ("INSERT INTO sticky_relation VALUES (1, '89891234567', 1, now())",
     "sticky_relation_client_e164"),
])
def test_a_bad_setting_or_relation_is_refused_by_name(dsn, statement, constraint):
    with pytest.raises(psycopg2.errors.CheckViolation) as refused:
        sql(dsn, statement)
    assert refused.value.diag.constraint_name == constraint
    assert "Failing row contains" in str(refused.value)


def test_only_an_inbound_record_can_say_sticky(dsn):
    with pytest.raises(psycopg2.errors.CheckViolation) as refused:
        shipped(dsn, call(dsn, "k1", "Boris", sticky=True))
    assert refused.value.diag.constraint_name == "call_record_sticky_inbound"
    shipped(dsn, call(dsn, "k1", "Boris", direction="inbound", sticky=True))


def test_sticky_is_on_for_30_days_by_default_and_a_district_inherits(dsn):
    assert sql(dsn, "SELECT sticky, sticky_days FROM company") == [(True, 30)]
    assert {r for r in sql(dsn, "SELECT sticky, sticky_days FROM district")} == {(None, None)}
    route = Database(dsn).did_route(SOCHI_DID)
    assert route.sticky_days == 30
    sql(dsn, "UPDATE district SET sticky_days = 7 WHERE name = 'Sochi'")
    assert Database(dsn).did_route(SOCHI_DID).sticky_days == 7
    sql(dsn, "UPDATE company SET sticky = false")
    assert Database(dsn).did_route(SOCHI_DID).sticky_days == 0  # off: as the company
    sql(dsn, "UPDATE district SET sticky = true WHERE name = 'Sochi'")
    assert Database(dsn).did_route(SOCHI_DID).sticky_days == 7
    assert Database(dsn).sticky_window() == 7  # the only district where it is on


# -- the relation, from records -------------------------------------------------------------

def test_an_answered_call_either_way_makes_the_relation_and_the_latest_wins(dsn):
    shipped(dsn, call(dsn, "k1", "Boris", ago_s=600))
    assert relation(dsn)[0] == "Boris"
    shipped(dsn, call(dsn, "k2", "Ivan", direction="inbound", ago_s=300))
    assert relation(dsn)[0] == "Ivan"
    # Boris's older call, shipped late (after an outage): Ivan's stays
    shipped(dsn, call(dsn, "k0", "Boris", ago_s=900))
    assert relation(dsn)[0] == "Ivan"


def test_the_latest_of_one_batch_wins(dsn):
    shipped(dsn, call(dsn, "k1", "Ivan", ago_s=600), call(dsn, "k2", "Boris", ago_s=60),
            call(dsn, "k3", "Ivan", ago_s=300))
    assert relation(dsn)[0] == "Boris"


@pytest.mark.parametrize("why, row", [
    ("never answered", dict(answered=False)),
    ("nobody answered it (inbound)", dict(direction="inbound", answered=False, who=None)),
    ("withheld", dict(client=None)),
    ("a manager calling the district", dict(direction="internal")),
    ("an emergency call", dict(direction="emergency")),
])
def test_no_relation_without_an_answered_call_with_a_client(dsn, why, row):
    who = row.pop("who", "Boris")
    shipped(dsn, call(dsn, "k1", who, **row))
    assert sql(dsn, "SELECT count(*) FROM sticky_relation") == [(0,)], why


def test_a_record_naming_a_manager_of_another_company_or_none_left_makes_none(dsn):
    other = sql(dsn, "INSERT INTO company (name) VALUES ('Don Estates') RETURNING id")[0][0]
    rows = [call(dsn, "k1", "Boris"), call(dsn, "k2", "Ivan", client=OTHER)]
    rows[0]["company_id"] = other
    rows[1]["manager_id"] = 99999  # removed since
    shipped(dsn, *rows)  # the records themselves are kept
    assert sql(dsn, "SELECT count(*) FROM call_record") == [(2,)]
    assert sql(dsn, "SELECT count(*) FROM sticky_relation") == [(0,)]


def test_a_relation_change_notifies_its_client(dsn):
    listener = psycopg2.connect(dsn)
    listener.autocommit = True
    with listener.cursor() as cur:
        cur.execute("LISTEN routing_changed")
    shipped(dsn, call(dsn, "k1", "Boris"), call(dsn, "k2", "Ivan", client=OTHER))
    select.select([listener], [], [], 2)
    listener.poll()
    payloads = {n.payload for n in listener.notifies}
    listener.close()
    assert payloads == {f"sticky_relation client={','.join(sorted((CLIENT, OTHER)))}"}


def test_the_upgrade_keeps_relations_of_records_made_before_it(template):
    _admin(template.dsn, "CREATE DATABASE sticky_upgrade")
    target = _dsn(template.dsn, "sticky_upgrade")
    assert db.migrate(target, up_to=6)[-1] == "006_call_records.sql"
    db.run_script(target, ROOT / "sql" / "demo.sql", {"pbx.realm": "pbx.local"})
    started = NOW - timedelta(days=2)
    sql(target, "INSERT INTO call_record (call_key, started_at, answered_at, ended_at, "
                "duration_s, direction, outcome, sip_status, company_id, manager_id, client) "
                "SELECT 'old', %s, %s, %s, 10, 'outbound', 'answered', 200, m.company_id, m.id, "
                "%s FROM manager m WHERE m.name = 'Boris'",
        (started, started + timedelta(seconds=5), started + timedelta(seconds=15), CLIENT))
    assert db.migrate(target, up_to=7) == ["007_sticky.sql"]
    assert relation(target)[0] == "Boris"
    assert sql(target, "SELECT sticky FROM call_record") == [(False,)]


# -- a worker's Directory follows the relations ---------------------------------------------

def until(directory, condition, what, within=1.0):
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"{what} not seen within {within} s"
        time.sleep(0.02)
        directory.refresh()


def test_a_worker_learns_a_new_relation_within_a_second_querying_that_client_only(dsn):
    d = Directory(Counting(dsn), ttl=60, size=100)
    d.refresh()
    ivan_sim, boris = d.sim(IVAN_SIM), manager(dsn, "Boris")
    assert d.sticky(company(dsn), CLIENT) is None and d.sticky_days == 30
    d.db.asked.clear()
    plans = d.plans_changed
    shipped(dsn, call(dsn, "k1", "Boris"))
    until(d, lambda: d.sticky(company(dsn), CLIENT) is not None, "the relation")
    fact = d.sticky(company(dsn), CLIENT)
    assert fact.manager_id == boris and fact.sims == (BORIS_SIM,) and fact.manager_active
    assert abs(fact.answered_at - (NOW - timedelta(seconds=55)).timestamp()) < 1
    assert set(d.db.asked) == {"sticky_relations_changed"}  # no SIM, DID nor window
    assert d.plans_changed == plans and d.sim(IVAN_SIM) is ivan_sim
    # a deactivated manager: the fact says so (and the core ignores him)
    sql(dsn, "UPDATE manager SET active = false WHERE name = 'Boris'")
    until(d, lambda: not d.sticky(company(dsn), CLIENT).manager_active, "Boris inactive")


def test_a_longer_window_loads_older_relations_and_a_deleted_one_goes(dsn):
    shipped(dsn, call(dsn, "old", "Boris", ago_s=40 * 86400))
    d = Directory(Counting(dsn), ttl=60, size=100)
    d.refresh()
    assert len(d.relations) == 0  # older than every window in use
    sql(dsn, "UPDATE district SET sticky_days = 45 WHERE name = 'Anapa'")
    until(d, lambda: d.sticky(company(dsn), CLIENT) is not None, "the older relation")
    assert d.sticky_days == 45
    sql(dsn, "DELETE FROM sticky_relation")
    until(d, lambda: d.sticky(company(dsn), CLIENT) is None, "the deleted relation")


def test_a_relation_moved_in_time_is_followed_after_the_window_shrank(dsn):
    shipped(dsn, call(dsn, "k1", "Boris"))
    d = Directory(Counting(dsn), ttl=60, size=100)
    d.refresh()
    co = company(dsn)

    def answered():
        return d.relations.get(co, CLIENT)[1]

    sql(dsn, "UPDATE district SET sticky_days = 1 WHERE name = 'Sochi'")
    sql(dsn, "UPDATE sticky_relation SET answered_at = now() - interval '25 hours'")
    until(d, lambda: time.time() - answered() > 24 * 3600, "the relation moved back")
    sql(dsn, "UPDATE sticky_relation SET answered_at = now() - interval '23 hours'")
    until(d, lambda: time.time() - answered() < 24 * 3600, "the relation moved forward")
    assert d.number(SOCHI_DID).did.sticky_days == 1
