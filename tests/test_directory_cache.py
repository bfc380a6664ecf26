"""The per-worker caches with a fake clock and a fake database: bounds, TTL, generations, errors."""

from __future__ import annotations

import pytest

from kemi.db import EVERYTHING, DatabaseError, DatabaseUnavailable
from kemi.directory import SIM_FIELDS, Directory

# sql/queries/sims.sql's row for Ivan, a Sochi manager showing the district number.
IVAN = {"username": "+79181110003", "ha1": "0" * 32, "sim_active": True, "manager_active": True,
        "manager_id": 1, "company_id": 1, "district_name": "Sochi", "caller_id": "+78622550101",
        "caller_id_trunk_id": 1, "allow_international": False, "allow_premium_rate": False,
        "allow_kazakhstan": False}
SOCHI = {"number": "+78622550101", "company_id": 1, "district_id": 2, "district_name": "Sochi",
         "district_active": True, "hunt": ["+79181110003"]}


class FakeDb:
    def __init__(self):
        self.rows = {"+78622550101": SOCHI}
        self.queries = 0
        self.down = False
        self.notified = False

    def query(self, name, **params):
        self.queries += 1
        if self.down:
            raise DatabaseUnavailable("fake database down")
        row = self.rows.get(params.get("number"))
        return [row] if row else []

    def query_tuples(self, name, timeout_ms=None, **params):
        rows = self.query(name, timeout_ms=timeout_ms, **params)
        columns = list(rows[0]) if rows else list(SIM_FIELDS)
        return columns, [tuple(row[c] for c in columns) for row in rows]

    def changed(self):
        """True: a new connection (anything may have changed); or the notified tables."""
        notified, self.notified = self.notified, False
        return EVERYTHING if notified is True else frozenset(notified or ())


@pytest.fixture
def env():
    now = [0.0]
    db, logs = FakeDb(), []
    return db, now, logs, Directory(db, ttl=5, size=3, clock=lambda: now[0], log=logs.append)


def test_hit_costs_no_query(env):
    db, _, _, d = env
    assert d.did_route("+78622550101").district_name == "Sochi"
    d.did_route("+78622550101")
    assert db.queries == 1


def test_unknown_numbers_are_cached_too(env):
    db, _, _, d = env
    assert d.did_route("+78612999999") is None and d.did_route("+78612999999") is None
    assert db.queries == 1


def test_size_is_bounded(env):
    _, _, _, d = env
    for i in range(100):
        d.did_route(f"+7861200{i:04d}")
    assert len(d._dids) == 3


def test_ttl_expiry_rereads(env):
    db, now, _, d = env
    d.did_route("+78622550101")
    now[0] = 5.1
    d.did_route("+78622550101")
    assert db.queries == 2


def test_a_notified_change_marks_entries_for_rereading(env):
    db, now, _, d = env
    d.did_route("+78622550101")
    db.rows["+78622550101"] = {**SOCHI, "district_name": "Sochi-Center"}
    d.refresh_if_changed()
    assert d.did_route("+78622550101").district_name == "Sochi"  # nothing notified yet
    db.notified = True
    d.refresh_if_changed()  # within CHECK_EVERY_S of the last look: not read yet
    assert d.did_route("+78622550101").district_name == "Sochi"
    now[0] += Directory.CHECK_EVERY_S
    d.refresh_if_changed()
    assert d.did_route("+78622550101").district_name == "Sochi-Center"


def test_stale_entries_keep_routing_while_the_database_is_down(env):
    db, now, logs, d = env
    d.did_route("+78622550101")
    db.down, db.notified = True, True
    now[0] += Directory.CHECK_EVERY_S
    d.refresh_if_changed()
    now[0] = 60.0  # past the TTL as well
    for _ in range(3):
        assert d.did_route("+78622550101").district_name == "Sochi"
    assert d.stale_serves == 3
    assert len(logs) == 1 and "routing from cached data" in logs[0]  # said once, not per request
    with pytest.raises(DatabaseError):
        d.did_route("+78612999999")  # never cached: the caller answers 503
    db.down = False
    d.did_route("+78622550101")
    assert logs[-1] == "database reachable again, cached data refreshed"


def test_small_tables_are_one_snapshot_reloaded_on_change(env):
    db, now, _, d = env
    sims = {IVAN["username"]: dict(IVAN)}
    loads = []
    original = db.query
    db.query = lambda name, timeout_ms=None, **p: (
        loads.append(name) or [dict(r) for r in sims.values()] if name == "sims" else original(name, **p))
    assert d.sim("+79181110003").district_name == "Sochi"
    assert d.sim("+79181110004") is None and d.sim("+79181110003") is not None
    assert loads == ["sims"]  # one query for every SIM, unknown usernames included
    sims["+79181110003"]["district_name"] = "Anapa"
    assert d.sim("+79181110003").district_name == "Sochi"  # same generation: same snapshot
    db.notified = True
    now[0] += Directory.CHECK_EVERY_S
    d.refresh_if_changed()  # reloads the snapshot at once
    assert d.sim("+79181110003").district_name == "Anapa"


def test_breaker_spares_requests_the_connect_attempts(monkeypatch):
    import psycopg2

    from kemi import db as dbmod

    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(1)
        raise psycopg2.OperationalError("connection refused")

    monkeypatch.setattr(dbmod.psycopg2, "connect", refuse)
    now = [100.0]
    database = dbmod.Database("host=/nowhere dbname=x", clock=lambda: now[0])
    for _ in range(5):
        with pytest.raises(DatabaseUnavailable):
            database.query("trunks")
    assert len(attempts) == 1 and database.breaker_open  # one attempt, then the breaker
    now[0] += 0.3
    with pytest.raises(DatabaseUnavailable):
        database.query("trunks")
    assert len(attempts) == 2  # retried after 0.25 s, now waits 0.5 s
    now[0] += 0.3
    with pytest.raises(DatabaseUnavailable):
        database.query("trunks")
    assert len(attempts) == 2
    now[0] += 5
    with pytest.raises(DatabaseUnavailable):
        database.query("trunks")
    assert len(attempts) == 3  # never more than a second apart: back within a second


def test_the_gate_bounds_processes_waiting_on_a_slow_database():
    from kemi.adapter import SharedGate

    from .fakes import FakeKSR
    ksr = FakeKSR()
    gates = [SharedGate(ksr, 2) for _ in range(3)]  # three workers, shared counter
    assert all(g.enter() for g in gates)  # a fast database: nobody is turned away
    for g in gates:
        g.leave()
    gates[0].slow()  # a query overran
    assert gates[0].enter() and gates[1].enter()
    assert not gates[2].enter()
    gates[0].leave()
    assert gates[2].enter()


def test_trunk_sources_follow_the_trunk_snapshot_and_stay_bounded(env):
    db, now, _, d = env
    trunks = [{"id": 1, "name": "kuban-telecom", "carrier": "Kuban Telecom",
               "sources": ["127.0.0.2/32"], "number_format": "e164"}]
    original = db.query
    db.query = lambda name, timeout_ms=None, **p: (
        [dict(t) for t in trunks] if name == "trunks" else original(name, **p))
    assert d.trunk_for_source("127.0.0.2").name == "kuban-telecom"
    assert d.trunk_for_source("127.0.0.9") is None
    trunks[0]["sources"] = ["127.0.0.9/32"]
    assert d.trunk_for_source("127.0.0.9") is None  # nothing notified: the same snapshot
    db.notified = True
    now[0] += Directory.CHECK_EVERY_S
    d.refresh_if_changed()
    assert d.trunk_for_source("127.0.0.9").name == "kuban-telecom"
    assert d.trunk_for_source("127.0.0.2") is None
    now[0] += 10  # past the TTL (5 s): reloaded by the periodic look, not per request
    trunks[0]["sources"] = ["127.0.0.2/32"]
    d.refresh_if_changed()
    assert d.trunk_for_source("127.0.0.2").name == "kuban-telecom"
    for i in range(100):  # a scan of source addresses cannot grow the map without bound
        d.trunk_for_source(f"10.0.{i // 256}.{i % 256}")
    assert len(d._source_trunk) <= 3


def test_a_trunk_change_reloads_trunks_only(env):
    db, now, _, d = env
    d.did_route("+78622550101")
    d.refresh_if_changed()  # every snapshot loaded
    asked = []
    original = db.query
    db.query = lambda name, timeout_ms=None, **p: asked.append(name) or original(name, **p)
    db.notified = {"trunk"}
    now[0] += Directory.CHECK_EVERY_S
    d.refresh_if_changed()
    d.did_route("+78622550101")
    d.sim("+79181110003")
    assert asked == ["trunks"]  # no SIM snapshot reload, no DID re-read
    db.notified = {"trunk", "did"}
    now[0] += Directory.CHECK_EVERY_S
    d.refresh_if_changed()
    d.did_route("+78622550101")
    assert asked[1:] == ["caller_id_owners", "trunks", "did_route"]  # the SIMs kept
    db.notified = {"manager"}
    now[0] += Directory.CHECK_EVERY_S
    d.refresh_if_changed()
    assert asked[4:] == ["sims", "caller_id_owners", "trunks"]


def test_a_did_change_keeps_the_sim_snapshot_and_follows_the_caller_id_owner(env):
    db, now, _, d = env
    owners = {"+78622550101": 1}
    sims = {IVAN["username"]: dict(IVAN)}
    asked = []

    def query(name, timeout_ms=None, **p):
        asked.append(name)
        if name == "sims":
            return [dict(r) for r in sims.values()]
        if name == "caller_id_owners":
            return [{"number": n, "trunk_id": t} for n, t in owners.items()]
        return []
    db.query = query
    assert d.sim("+79181110003").caller_id_trunk_id == 1
    owners["+78622550101"] = 2  # UPDATE did SET trunk_id = 2 (the SIM rows are untouched)
    db.notified = {"did"}
    now[0] += Directory.CHECK_EVERY_S
    d.refresh_if_changed()
    assert d.sim("+79181110003").caller_id_trunk_id == 2
    assert asked.count("sims") == 1 and asked.count("caller_id_owners") == 2
