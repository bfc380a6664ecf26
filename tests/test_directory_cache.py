"""A worker's plans with a fake clock and a fake database: what each notification reloads,
bounds, TTL, database errors, the breaker and the gate."""

from __future__ import annotations

import pytest

from kemi.db import DatabaseError, DatabaseUnavailable
from kemi.decision import UNAVAILABLE
from kemi.directory import Directory

from harness.fakes import FakeDb, demo_records, sim

IVAN, SOCHI, ANAPA = "+79181110003", "+78622550101", "+78613350101"


@pytest.fixture
def env():
    now = [0.0]
    trunks, sims, dids = demo_records()
    db, logs = FakeDb(trunks, list(sims), dict(dids)), []
    d = Directory(db, ttl=5, size=3, clock=lambda: now[0], log=logs.append)
    d.refresh()  # a first connection: everything loaded
    db.asked.clear()

    def notify(*payloads):
        db.pending.extend(payloads)
        now[0] += Directory.CHECK_EVERY_S
        d.refresh()
    return db, now, logs, d, notify


def test_a_did_plan_hit_costs_no_query(env):
    db, _, _, d, _ = env
    assert d.did(SOCHI).display == '"Sochi"'
    d.did(SOCHI)
    assert db.asked == ["did_route"]


def test_numbers_that_are_not_ours_never_ask(env):
    db, _, _, d, _ = env
    for i in range(100):
        d.number(f"+7861200{i:04d}")
    assert db.asked == []


def test_did_plans_are_bounded(env):
    db, _, _, d, _ = env
    for number in db.dids:
        d.did(number)
    assert len(d._dids) == 3


def test_ttl_expiry_rereads(env):
    db, now, _, d, _ = env
    d.did(SOCHI)
    now[0] = 5.1
    d.did(SOCHI)
    assert db.asked == ["did_route", "did_route"]


def test_stale_did_plans_keep_routing_while_the_database_is_down(env):
    db, now, logs, d, _ = env
    d.did(SOCHI)
    now[0] = 10  # expired
    db.down = True
    for _ in range(3):
        assert d.number(SOCHI).did.display == '"Sochi"'
    assert d.stale_serves == 3
    assert len(logs) == 1 and "routing from cached data" in logs[0]  # said once, not per request
    assert d.number(ANAPA).did is UNAVAILABLE  # ours, never cached: the core answers 503
    with pytest.raises(DatabaseError):
        d.did(ANAPA)
    db.down = False
    d.did(SOCHI)
    assert logs[-1] == "database reachable again, cached data refreshed"


def test_one_sims_change_reloads_that_sim_only(env):
    db, _, _, d, notify = env
    db.all_sims[0] = sim(IVAN, district="Anapa", caller_id=ANAPA)
    notify(f"sim sim={IVAN}")
    assert d.sim(IVAN).sim.district_name == "Anapa" and d.sim(IVAN).sim.caller_id == ANAPA
    assert db.asked == ["sims_changed"]


def test_a_deleted_sim_is_gone(env):
    db, _, _, d, notify = env
    db.all_sims = [s for s in db.all_sims if s.username != IVAN]
    notify(f"sim sim={IVAN}")
    assert d.sim(IVAN) is None and d.number(IVAN).sim is None


def test_a_sim_change_marks_its_districts_did_plans(env):
    db, _, _, d, notify = env
    before = d.did(SOCHI)
    db.asked.clear()
    notify(f"sim sim={IVAN}")
    assert d.did(SOCHI) is not before and db.asked == ["sims_changed", "did_route"]
    untouched = d.did(SOCHI)
    notify("sim sim=+79161110001")  # a Moscow SIM: Sochi's plan stays
    assert d.did(SOCHI) is untouched


def test_a_notification_while_the_database_is_down_is_applied_when_it_is_back(env):
    db, now, _, d, notify = env
    db.down = True
    db.all_sims[0] = sim(IVAN, district="Anapa", caller_id=ANAPA)
    notify(f"sim sim={IVAN}")
    assert d.sim(IVAN).sim.district_name == "Sochi"  # the old plan keeps serving
    db.down = False
    now[0] += Directory.CHECK_EVERY_S
    d.refresh()
    assert d.sim(IVAN).sim.district_name == "Anapa"


def test_a_trunk_change_rebuilds_plans_from_the_trunk_snapshot_only(env):
    db, _, _, d, notify = env
    egress = d.sim(IVAN).egress
    notify("trunk trunk=1")
    assert db.asked == ["trunks"]
    assert d.sim(IVAN).egress is not egress


def test_a_table_too_large_to_name_reloads_whole(env):
    db, _, _, d, notify = env
    notify("did *")
    assert sorted(db.asked) == ["did_index", "sims"]


def test_a_new_connection_reloads_everything(env):
    db, _, _, d, notify = env
    db.connected = False  # the next look sees a new connection
    notify()
    assert sorted(db.asked) == ["did_index", "sims", "sticky_relations", "sticky_window",
                                "trunks"]


def test_trunk_sources_follow_the_trunk_snapshot_and_stay_bounded(env):
    db, _, _, d, notify = env
    assert d.trunk_for_source("127.0.0.2").name == "kuban-telecom"
    assert d.trunk_for_source("10.20.9.9").name == "south-link"  # by network
    assert d.trunk_for_source("127.0.0.9") is None
    kuban = db.all_trunks[0]
    db.all_trunks = (kuban._replace(sources=("127.0.0.9/32",)),) + db.all_trunks[1:]
    assert d.trunk_for_source("127.0.0.9") is None  # nothing notified: the same snapshot
    notify("trunk trunk=1")
    assert d.trunk_for_source("127.0.0.9").name == "kuban-telecom"
    assert d.trunk_for_source("127.0.0.2") is None
    for i in range(100):  # a scan of source addresses cannot grow the map without bound
        d.trunk_for_source(f"10.0.{i // 256}.{i % 256}")
    assert len(d._source_trunk) <= 3


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

    from harness.fakes import FakeKSR
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
