"""Plans from PostgreSQL, and kept current key by key: which caller ID and trunks a SIM gets,
which numbers are ours, what a notified change reloads (and what it does not)."""

from __future__ import annotations

import time

import pytest

from kemi.db import Database
from kemi.decision import NOT_OURS
from kemi.directory import Directory

IVAN, BORIS, PAVEL = "+79181110003", "+79181110004", "+79181110002"
SOCHI, ANAPA = "+78622550101", "+78613350101"


class Counting(Database):
    """The database, counting the queries each name ran."""

    def __init__(self, dsn):
        super().__init__(dsn, listen=True)
        self.asked: list[str] = []

    def query_tuples(self, name, *args, **kw):
        self.asked.append(name)
        return super().query_tuples(name, *args, **kw)


@pytest.fixture
def fresh(stack):
    def make():
        directory = Directory(Counting(stack.dsn), ttl=60, size=100)
        directory.refresh()  # a first connection: everything loaded
        return directory
    return make


def until(directory, condition, what):
    deadline = time.monotonic() + 2
    while not condition():
        assert time.monotonic() < deadline, f"{what} not seen within 2 s"
        time.sleep(Directory.CHECK_EVERY_S)
        directory.refresh()


def first_trunk(directory, sim):
    return directory.sim(sim).egress.hops[0].trunk


def test_manager_and_substitute_show_the_district_number_through_its_owner(fresh):
    directory = fresh()
    for sim in (IVAN, BORIS):
        plan = directory.sim(sim)
        assert plan.sim.caller_id == SOCHI and plan.egress.caller == SOCHI
        assert first_trunk(directory, sim) == "kuban-telecom"


def test_override_wins_and_brings_its_own_trunk_and_format(fresh):
    plan = fresh().sim(PAVEL)
    assert plan.sim.caller_id == "+78612100103"
    assert [h.trunk for h in plan.egress.hops] == ["south-link"]
    assert plan.egress.caller == "88612100103"  # south-link writes numbers nationally


def test_sims_of_one_district_share_one_egress(fresh):
    directory = fresh()
    assert directory.sim(IVAN).egress is directory.sim(BORIS).egress


def test_which_numbers_are_ours_is_answered_without_a_query(fresh):
    directory = fresh()
    asked = len(directory.db.asked)
    assert directory.number("+79891234567") is NOT_OURS
    assert directory.did_company("+78612999999") is None
    assert directory.number(IVAN).sim is directory.sim(IVAN)  # a SIM's own number
    assert len(directory.db.asked) == asked
    assert directory.did_company(SOCHI) is not None


def test_a_did_plan_lists_active_sims_in_hunting_order_and_is_read_once(fresh):
    directory = fresh()
    plan = directory.number(ANAPA).did  # Anapa: Anna, Denis (2 SIMs), (Gleb inactive)
    assert plan.targets == ("+79181110007", "+79181110008", "+79181110011")
    assert plan.display == '"Anapa"'
    asked = len(directory.db.asked)
    assert directory.number(ANAPA).did is plan
    assert len(directory.db.asked) == asked


def test_a_moved_manager_reloads_his_sims_and_both_districts(fresh, dba):
    directory = fresh()
    sochi_before = directory.number(SOCHI).did
    dba("UPDATE manager SET district_id = (SELECT id FROM district WHERE name = 'Anapa') "
        "WHERE name = 'Boris'",
        "UPDATE manager SET district_id = (SELECT id FROM district WHERE name = 'Sochi') "
        "WHERE name = 'Boris'")
    until(directory, lambda: directory.sim(BORIS).sim.caller_id == ANAPA, "Boris's move")
    assert directory.sim(BORIS).sim.district_name == "Anapa"
    assert directory.db.asked.count("sims") == 1  # never reloaded whole
    assert BORIS not in directory.number(SOCHI).did.targets  # Sochi's hunt re-read
    assert directory.number(SOCHI).did is not sochi_before
    assert BORIS in directory.number(ANAPA).did.targets


def test_a_caller_id_moved_to_another_trunk_is_followed_without_reloading_every_sim(fresh, dba):
    directory = fresh()
    dba("UPDATE did SET trunk_id = (SELECT id FROM trunk WHERE name = 'south-link') "
        f"WHERE number = '{SOCHI}'",
        "UPDATE did SET trunk_id = (SELECT id FROM trunk WHERE name = 'kuban-telecom') "
        f"WHERE number = '{SOCHI}'")
    until(directory, lambda: first_trunk(directory, IVAN) == "south-link", "the new owner")
    assert directory.db.asked.count("sims") == 1
    assert directory.db.asked.count("sims_changed") >= 1


def test_a_new_did_is_ours_at_once_and_a_removed_one_is_not(fresh, dba):
    directory = fresh()
    new = "+78622550188"
    dba(f"INSERT INTO did (number, company_id, district_id, trunk_id) SELECT '{new}', "
        f"company_id, district_id, trunk_id FROM did WHERE number = '{SOCHI}'",
        f"DELETE FROM did WHERE number = '{new}'")
    until(directory, lambda: directory.did_company(new) is not None, "the new DID")
    assert directory.number(new).did.display == '"Sochi"'
    dba(f"DELETE FROM did WHERE number = '{new}'")
    until(directory, lambda: directory.did_company(new) is None, "the removed DID")
    assert directory.db.asked.count("did_index") == 1  # the index is updated, not reloaded


def test_a_trunk_change_rebuilds_the_egress_without_a_query_per_sim(fresh, dba):
    directory = fresh()
    dba("UPDATE trunk SET egress_port = 5099 WHERE name = 'kuban-telecom'",
        "UPDATE trunk SET egress_port = 5060 WHERE name = 'kuban-telecom'")
    until(directory, lambda: directory.sim(IVAN).egress.hops[0].uri_suffix == "@127.0.0.2:5099",
          "the new egress port")
    assert directory.db.asked.count("sims") == 1 and "sims_changed" not in directory.db.asked


def test_masking_switched_on_for_a_company_then_off_for_a_district_reaches_dids_and_sims(fresh, dba):
    directory = fresh()
    assert not directory.number(SOCHI).did.masked and not directory.sim(IVAN).sim.mask_numbers
    dba("UPDATE company SET mask_numbers = true WHERE name = 'Kuban Realty'",
        "UPDATE company SET mask_numbers = false WHERE name = 'Kuban Realty'")
    until(directory, lambda: directory.number(SOCHI).did.masked, "the company's masking")
    assert directory.sim(IVAN).sim.mask_numbers and directory.number(ANAPA).did.masked
    dba("UPDATE district SET mask_numbers = false WHERE name = 'Sochi'",
        "UPDATE district SET mask_numbers = NULL WHERE name = 'Sochi'")
    until(directory, lambda: not directory.number(SOCHI).did.masked, "Sochi's own setting")
    assert not directory.sim(IVAN).sim.mask_numbers and directory.number(ANAPA).did.masked
    assert directory.db.asked.count("sims") == 1  # never reloaded whole
