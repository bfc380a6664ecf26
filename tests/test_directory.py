"""Routing data read from PostgreSQL: which caller ID and trunk a SIM gets, unknown numbers."""

from __future__ import annotations

import pytest

from kemi.db import Database
from kemi.directory import Directory

IVAN, BORIS, PAVEL = "+79181110003", "+79181110004", "+79181110002"


@pytest.fixture
def directory(stack):
    return Directory(Database(stack.dsn), ttl=60, size=100)


def trunk_name(directory, trunk_id):
    return next(t.name for t in directory.trunks() if t.id == trunk_id)


def test_manager_and_substitute_show_the_district_number_through_its_owner(directory):
    for sim in (IVAN, BORIS):
        record = directory.sim(sim)
        assert record.caller_id == "+78622550101"
        assert trunk_name(directory, record.caller_id_trunk_id) == "kuban-telecom"


def test_override_wins_and_brings_its_own_trunk(directory):
    record = directory.sim(PAVEL)
    assert record.caller_id == "+78612100103"
    assert trunk_name(directory, record.caller_id_trunk_id) == "south-link"


def test_moved_manager_shows_the_new_district_number(stack, dba):
    dba("UPDATE manager SET district_id = (SELECT id FROM district WHERE name = 'Anapa') "
        "WHERE name = 'Boris'",
        "UPDATE manager SET district_id = (SELECT id FROM district WHERE name = 'Sochi') "
        "WHERE name = 'Boris'")
    fresh = Directory(Database(stack.dsn), ttl=60, size=100)
    assert fresh.sim(BORIS).caller_id == "+78613350101"
    assert fresh.sim(BORIS).district_name == "Anapa"


def test_unknown_numbers_are_cached_as_unknown(stack):
    db = Database(stack.dsn)
    calls = []
    original = db.query
    db.query = lambda name, **kw: calls.append(name) or original(name, **kw)
    directory = Directory(db, ttl=60, size=100)
    assert directory.did_route("+78612999999") is None
    assert directory.did_route("+78612999999") is None
    assert calls == ["did_route"]


def test_did_route_lists_active_sims_in_hunting_order(directory):
    route = directory.did_route("+78613350101")  # Anapa: Anna, Denis (2 SIMs), (Gleb inactive)
    assert route.hunt == ("+79181110007", "+79181110008", "+79181110011")


def test_a_caller_id_moved_to_another_trunk_is_followed_without_reloading_the_sims(stack, dba):
    db = Database(stack.dsn, listen=True)
    asked = []
    original = db.query_tuples
    db.query_tuples = lambda name, *a, **kw: asked.append(name) or original(name, *a, **kw)
    directory = Directory(db, ttl=60, size=100)
    directory.refresh_if_changed()  # a first connection: everything loaded
    assert trunk_name(directory, directory.sim(IVAN).caller_id_trunk_id) == "kuban-telecom"
    dba("UPDATE did SET trunk_id = (SELECT id FROM trunk WHERE name = 'south-link') "
        "WHERE number = '+78622550101'",
        "UPDATE did SET trunk_id = (SELECT id FROM trunk WHERE name = 'kuban-telecom') "
        "WHERE number = '+78622550101'")
    import time
    deadline = time.monotonic() + 2
    while trunk_name(directory, directory.sim(IVAN).caller_id_trunk_id) != "south-link":
        assert time.monotonic() < deadline, "the new owner was not seen within 2 s"
        time.sleep(Directory.CHECK_EVERY_S)
        directory.refresh_if_changed()
    assert asked.count("sims") == 1  # the SIM snapshot was kept
