"""Sticky manager end to end (README, Sticky manager; issue 17's "Done when"): Boris, second in
Sochi's order, calls a client out from his SIM and the client answers; the record is shipped,
the relation follows, every worker learns it; the client's call back to the district number
rings Boris first. Boris busy: Ivan next. Out of the window, sticky off, or Boris
deactivated: Ivan first. A client whose call was never answered is not sticky.

Sticky routing is off for the rest of the suite (tests/data.sql): each test here switches
it on for Sochi and uses a client number of its own."""

from __future__ import annotations

import os
import time

import psycopg2
import pytest

from kemi.directory import Directory
from kemi.masking import Keys, Masker
from harness.sipp import Check, literal

from .conftest import MASK_KEYS, SIM_IP, TRUNK_IP, TRUNK_PORT, demo_password
from .test_inbound_e2e import BORIS, IVAN, SOCHI_DID, answering_sim, call_from_trunk, shows_client
from .test_outbound_e2e import carrier, sim_calls, sim_refused
from .test_records_e2e import records

pytestmark = pytest.mark.skipif(os.environ.get("PBX_TEST_WIRING") == "kemi",
                                reason="PBX_WIRING=kemi records nothing: no relation is made")

IVAN_PORT, BORIS_PORT = 5251, 5252


@pytest.fixture
def sochi_sticky(dba):
    dba("UPDATE district SET sticky = true WHERE name = 'Sochi'",
        "UPDATE district SET sticky = NULL, sticky_days = NULL WHERE name = 'Sochi'")
    return dba


def query(stack, statement, params=()):
    conn = psycopg2.connect(stack.dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall()
    finally:
        conn.close()


def workers_caught_up() -> None:
    """A committed change is in every worker's socket; each reads it on a request at most
    CHECK_EVERY_S after its last look."""
    time.sleep(2.5 * Directory.CHECK_EVERY_S)


def sticky_to(stack, client: str, manager: str, timeout: float = 10.0) -> None:
    """Wait until the shipped record made the client's relation with that manager."""
    deadline = time.monotonic() + timeout
    while True:
        rows = query(stack, "SELECT m.name FROM sticky_relation r JOIN manager m "
                            "ON m.id = r.manager_id WHERE r.client = %s", (client,))
        if rows == [(manager,)]:
            workers_caught_up()
            return
        assert time.monotonic() < deadline, f"relation of {client}: {rows}, not {manager}"
        time.sleep(0.1)


def boris_called(stack, sipp, client: str) -> None:
    """Boris calls the client out (dialled nationally) and the client answers."""
    far = carrier(sipp, TRUNK_IP)
    sim_calls(sipp, stack, BORIS, "8" + client[2:]).run()
    far.succeeded()
    sticky_to(stack, client, "Boris")


def rings_first(sipp, silent, client: str, first: tuple[str, int], other_port: int):
    """The client calls the district number: `first` answers, the other SIM hears nothing."""
    quiet = silent(SIM_IP, other_port)
    answering = answering_sim(sipp, first[1], shows_client("Sochi", client), sim=first[0])
    call_from_trunk(sipp, SOCHI_DID, caller=client).run()
    answering.succeeded()
    heard = quiet.received()
    quiet.close()  # the port is that SIM's again for the next call
    assert heard == [], "the other SIM rang"


@pytest.fixture
def both_registered(register):
    register(IVAN, IVAN_PORT)
    register(BORIS, BORIS_PORT)


def test_the_client_calling_back_reaches_boris_first(stack, sipp, silent, sochi_sticky,
                                                     both_registered):
    client = "+79895550101"
    boris_called(stack, sipp, client)
    since = time.time()
    rings_first(sipp, silent, client, (BORIS, BORIS_PORT), IVAN_PORT)
    row, = records(stack, since, 1)
    assert (row["direction"], row["manager"], row["first_manager"], row["sticky"]) == \
        ("inbound", "Boris", "Boris", True)


def test_boris_busy_ivan_rings_next(stack, sipp, sochi_sticky, both_registered):
    client = "+79895550102"
    boris_called(stack, sipp, client)
    since = time.time()
    busy = sipp("hunt_busy", "sim_uas.xml", local_ip=SIM_IP, local_port=BORIS_PORT).start()
    ivan = answering_sim(sipp, IVAN_PORT, shows_client("Sochi", client), sim=IVAN)
    call_from_trunk(sipp, SOCHI_DID, caller=client).run()
    busy.succeeded()
    ivan.succeeded()
    row, = records(stack, since, 1)
    assert (row["manager"], row["first_manager"], row["rang_before"], row["sticky"]) == \
        ("Ivan", "Boris", 1, True)


def test_after_the_window_ivan_rings_first(stack, sipp, silent, sochi_sticky, both_registered):
    """The window is whole days (at least one): made one day here, and the relation's call
    moved a day and a minute into the past, as the clock would."""
    client = "+79895550103"
    boris_called(stack, sipp, client)
    sochi_sticky("UPDATE district SET sticky_days = 1 WHERE name = 'Sochi'")
    sochi_sticky("UPDATE sticky_relation SET answered_at = now() - interval '1 day 1 minute' "
                 f"WHERE client = '{client}'")
    workers_caught_up()
    rings_first(sipp, silent, client, (IVAN, IVAN_PORT), BORIS_PORT)
    # Ivan answered: from now on the client is Ivan's (the latest answered call wins)
    sticky_to(stack, client, "Ivan")


def test_with_sticky_off_ivan_rings_first(stack, sipp, silent, sochi_sticky, both_registered):
    client = "+79895550104"
    boris_called(stack, sipp, client)
    sochi_sticky("UPDATE district SET sticky = false WHERE name = 'Sochi'")
    workers_caught_up()
    rings_first(sipp, silent, client, (IVAN, IVAN_PORT), BORIS_PORT)


def test_a_deactivated_manager_is_ignored(stack, sipp, silent, sochi_sticky, both_registered):
    client = "+79895550105"
    boris_called(stack, sipp, client)
    sochi_sticky("UPDATE manager SET active = false WHERE name = 'Boris'",
                 "UPDATE manager SET active = true WHERE name = 'Boris'")
    workers_caught_up()
    rings_first(sipp, silent, client, (IVAN, IVAN_PORT), BORIS_PORT)


def test_a_client_who_never_answered_is_not_sticky(stack, sipp, silent, sochi_sticky,
                                                   both_registered):
    client = "+79895550106"
    since = time.time()
    busy_client = sipp("hunt_busy", "sim_uas.xml", local_ip=TRUNK_IP, local_port=TRUNK_PORT).start()
    sim_refused(sipp, stack, BORIS, client, 486, "Busy Here").run()
    busy_client.succeeded()
    row, = records(stack, since, 1)  # shipped: had it been answered, the relation were made
    assert (row["outcome"], row["manager"]) == ("busy", "Boris")
    workers_caught_up()
    assert query(stack, "SELECT count(*) FROM sticky_relation WHERE client = %s",
                 (client,)) == [(0,)]
    rings_first(sipp, silent, client, (IVAN, IVAN_PORT), BORIS_PORT)


def test_a_masked_client_dialled_by_token_calls_back_to_boris(stack, sipp, silent, sochi_sticky,
                                                              both_registered):
    """Sochi masks: Boris sees the client as a token and dials the token; the record keeps the
    real number, so the relation is the client's, and the client's call back rings Boris first
    (showing him the same token)."""
    client = "+79895550107"
    sochi_sticky("UPDATE district SET mask_numbers = true WHERE name = 'Sochi'",
                 "UPDATE district SET mask_numbers = NULL WHERE name = 'Sochi'")
    company, = query(stack, "SELECT company_id FROM district WHERE name = 'Sochi'")[0]
    token = Masker(Keys.parse(MASK_KEYS)).mask(client, company)
    workers_caught_up()
    far = sipp("masked_outbound", "trunk_uas.xml", local_ip=TRUNK_IP, local_port=TRUNK_PORT,
               keys={"number": client}, checks=(Check("To", f"<sip:{literal(client)}@"),)).start()
    sipp("masked_outbound", "sim_uac.xml", local_ip=SIM_IP, local_port=5300, service=BORIS,
         auth=(BORIS, demo_password(BORIS)),
         keys={"realm": stack.config.realm, "called": token}).run()
    far.succeeded()
    sticky_to(stack, client, "Boris")
    quiet = silent(SIM_IP, IVAN_PORT)
    boris = answering_sim(sipp, BORIS_PORT, (Check("From", f"<sip:{literal(token)}@"),), sim=BORIS)
    call_from_trunk(sipp, SOCHI_DID, caller=client).run()
    boris.succeeded()
    assert quiet.received() == [], "Ivan rang"
    quiet.close()
