"""The per-worker caches with a fake clock and a fake database: bounds, TTL, generations, errors."""

from __future__ import annotations

import pytest

from kemi.db import DatabaseError, DatabaseUnavailable
from kemi.directory import Directory

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

    def changed(self):
        notified, self.notified = self.notified, False
        return notified


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
    db, _, _, d = env
    d.did_route("+78622550101")
    db.rows["+78622550101"] = {**SOCHI, "district_name": "Sochi-Center"}
    d.refresh_if_changed()
    assert d.did_route("+78622550101").district_name == "Sochi"  # nothing notified yet
    db.notified = True
    d.refresh_if_changed()
    assert d.did_route("+78622550101").district_name == "Sochi-Center"


def test_stale_entries_keep_routing_while_the_database_is_down(env):
    db, now, logs, d = env
    d.did_route("+78622550101")
    db.down, db.notified = True, True
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
