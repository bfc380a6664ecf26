"""Call records end to end (README, Call records): SIPp calls through the real Kamailio; acc
writes each call's record into the spool, the shipper puts it into call_record; every
column of each record checked. And the database stopped under load: no record lost, none
twice."""

from __future__ import annotations

import os
import time
from pathlib import Path
from decimal import Decimal

import psycopg2
import psycopg2.extras
import pytest

from .conftest import NATIONAL_TRUNK_IP, SIM_IP, TRUNK_IP
from .test_db_faults_e2e import fault, inbound_calls  # noqa: F401  (a fixture)
from .test_inbound_e2e import (BORIS, IVAN, NINA, NOVOROSSIYSK_DID, SOCHI_DID, answering_sim,
                               call_from_trunk)
from .test_outbound_e2e import OLGA, carrier, sim_calls, sim_refused

pytestmark = pytest.mark.skipif(os.environ.get("PBX_TEST_WIRING") == "kemi",
                                reason="PBX_WIRING=kemi records nothing")

CLIENT = "+79891234567"
SIM_A, SIM_B = 5231, 5232


def records(stack, since: float, count: int, timeout: float = 10.0) -> list[dict]:
    """The records of calls begun after since, once count of them were shipped."""
    deadline = time.monotonic() + timeout
    while True:
        conn = psycopg2.connect(stack.dsn)
        try:
            with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                cur.execute("SELECT * FROM call_record WHERE started_at >= to_timestamp(%s) "
                            "ORDER BY started_at", (since,))
                rows = cur.fetchall()
        finally:
            conn.close()
        if len(rows) >= count or time.monotonic() > deadline:
            assert len(rows) == count, (rows, spool(stack))
            return rows
        time.sleep(0.2)


def spool(stack) -> str:
    """What the spool holds and the log said of records: for a failing test's message."""
    folder = Path(stack.config.records_dir)
    files = {p.name: p.read_text(errors="replace")[-2000:] for p in sorted(folder.iterdir())}
    said = [line for line in stack.log.read_text(errors="replace").splitlines()
            if "record" in line or "acc" in line.lower()]
    return f"spool {files}; log {said[-10:]}"


def same(row: dict, **expected) -> None:
    got = {key: row[key] for key in expected}
    assert got == expected, row


def times_hold(row: dict) -> None:
    assert row["started_at"] <= row["ended_at"]
    if row["answered_at"] is not None:
        assert row["started_at"] <= row["answered_at"] <= row["ended_at"]
        talk = (row["ended_at"] - row["answered_at"]).total_seconds()
        assert abs(Decimal(str(talk)) - row["duration_s"]) < Decimal("0.01"), row


SOCHI = dict(company="Kuban Realty", district="Sochi", did=SOCHI_DID, did_label="main ad",
             client=CLIENT, trunk="kuban-telecom")


def test_an_answered_inbound_call(stack, sipp, register):
    register(IVAN, SIM_A)
    since = time.time()
    sim = answering_sim(sipp, SIM_A)
    call_from_trunk(sipp, SOCHI_DID).run()
    sim.succeeded()
    row, = records(stack, since, 1)
    same(row, direction="inbound", outcome="answered", sip_status=200, sip_reason="OK",
         manager="Ivan", first_manager="Ivan", sim=IVAN, rang_before=0, **SOCHI)
    assert row["call_key"].count(";") == 1 and row["duration_s"] > 0
    times_hold(row)


def test_busy_then_the_next_manager_answers(stack, sipp, register):
    register(IVAN, SIM_A)
    register(BORIS, SIM_B)
    since = time.time()
    busy = sipp("hunt_busy", "sim_uas.xml", local_ip=SIM_IP, local_port=SIM_A).start()
    boris = answering_sim(sipp, SIM_B)
    call_from_trunk(sipp, SOCHI_DID).run()
    busy.succeeded()
    boris.succeeded()
    row, = records(stack, since, 1)  # one record for the call, not one per SIM
    same(row, direction="inbound", outcome="answered", sip_status=200, manager="Boris",
         first_manager="Ivan", sim=BORIS, rang_before=1, **SOCHI)
    times_hold(row)


def test_nobody_reachable(stack, sipp, register):
    register(IVAN, SIM_A)
    since = time.time()
    busy = sipp("hunt_busy", "sim_uas.xml", local_ip=SIM_IP, local_port=SIM_A).start()
    sipp("inbound_refused", "trunk_uac.xml", local_ip=TRUNK_IP,
         keys={"called": SOCHI_DID, "caller": CLIENT},
         values={"CODE": "480", "REASON": "Temporarily Unavailable"}).run()
    busy.succeeded()
    row, = records(stack, since, 1)
    same(row, direction="inbound", outcome="nobody_reachable", sip_status=480,
         sip_reason="Temporarily Unavailable", manager=None, sim=None, first_manager="Ivan",
         rang_before=1, answered_at=None, duration_s=Decimal("0.000"), **SOCHI)
    times_hold(row)


def test_the_client_hangs_up_while_the_manager_rings(stack, sipp, register):
    register(NINA, SIM_A)
    since = time.time()
    nina = sipp("hunt_ring_timeout", "sim_uas.xml", local_ip=SIM_IP, local_port=SIM_A).start()
    sipp("cancel_while_ringing", "trunk_uac.xml", local_ip=TRUNK_IP,
         keys={"called": NOVOROSSIYSK_DID, "caller": CLIENT}).run()
    nina.succeeded()
    row, = records(stack, since, 1)
    same(row, direction="inbound", outcome="cancelled", sip_status=487,
         sip_reason="Request Terminated", manager=None, sim=None, first_manager="Nina",
         rang_before=1, answered_at=None, duration_s=Decimal("0.000"), company="Kuban Realty",
         district="Novorossiysk", did=NOVOROSSIYSK_DID, did_label="main ad", client=CLIENT,
         trunk="kuban-telecom")
    times_hold(row)


def test_an_answered_outbound_call_after_a_carrier_failover(stack, sipp, register):
    since = time.time()
    failing = carrier(sipp, TRUNK_IP, flow="trunk_failover")
    backup = carrier(sipp, NATIONAL_TRUNK_IP)
    sim_calls(sipp, stack, OLGA, "89891234567").run()
    failing.succeeded()
    backup.succeeded()
    row, = records(stack, since, 1)
    same(row, direction="outbound", outcome="answered", sip_status=200, sim=OLGA,
         client=CLIENT, trunk="south-link", company="Kuban Realty", district="Krasnodar",
         rang_before=0)
    assert row["manager"] == row["first_manager"] and row["manager"] is not None
    assert row["did"] is not None and row["did"].startswith("+7861")
    times_hold(row)


def test_a_refused_destination_is_on_record(stack, sipp):
    since = time.time()
    sim_refused(sipp, stack, BORIS, "+441234567890", 403, "International Calls Disabled").run()
    row, = records(stack, since, 1)
    same(row, direction="outbound", outcome="refused", sip_status=403,
         sip_reason="International Calls Disabled", sim=BORIS, manager="Boris",
         client="+441234567890", company="Kuban Realty", district="Sochi", answered_at=None,
         rang_before=0)
    assert row["ended_at"] == row["started_at"]


@pytest.mark.parametrize("kind", ["stopped", "frozen"])
def test_no_record_is_lost_or_doubled_while_the_database_is_away(stack, sipp, register, fault,
                                                                 kind):
    """PostgreSQL stopped, or frozen (SIGSTOP: connections hang instead of failing), for
    10 s under 8 calls/s: calls go on from cache with none failed (what the same fault
    costs with records off: test_routing_survives_a_database_fault), the records wait in
    the spool and arrive once it is back, one each."""
    from .test_db_faults_e2e import warm_every_worker
    register(IVAN, 5201)
    warm_every_worker(stack, sipp)
    since = time.time()
    calls = 120
    ivan, trunk = inbound_calls(sipp, calls, 8)  # 15 s of calls across the fault
    time.sleep(2.0)
    fault(kind)
    away = time.time()
    try:
        time.sleep(10.0)
    finally:
        back = time.time()
        fault.off()
    trunk.succeeded(90)  # zero failed calls
    ivan.succeeded(90)
    rows = records(stack, since, calls, timeout=60)
    assert len({r["call_key"] for r in rows}) == calls
    assert {r["outcome"] for r in rows} == {"answered"}
    # most of them ended while the database was away: they waited in the spool
    during = [r for r in rows if away + 0.5 < r["ended_at"].timestamp() < back - 0.5]
    assert len(during) >= 50, (away, back, [r["ended_at"] for r in rows])


def test_a_rotated_spool_loses_and_doubles_nothing(stack, sipp, register):
    """The rotation the shipper does past 16 MB (kemi/records.py Spool.tidy), by hand: the
    live files renamed, then flatstore.rotate; Kamailio's next records go to new files, the
    renamed ones are shipped to their end, every call once."""
    register(IVAN, SIM_A)
    since = time.time()
    sim = answering_sim(sipp, SIM_A)
    call_from_trunk(sipp, SOCHI_DID).run()
    sim.succeeded()
    records(stack, since, 1)
    folder = Path(stack.config.records_dir)
    live = sorted(p for p in folder.glob("cdr_*.log") if p.stat().st_size)
    renamed = {path.with_name(path.name + ".1"): path.stat().st_size for path in live}
    for path in live:
        path.rename(path.with_name(path.name + ".1"))
    stack.proxy.rpc("flatstore.rotate")
    sim = answering_sim(sipp, SIM_A)
    call_from_trunk(sipp, SOCHI_DID).run()
    sim.succeeded()
    rows = records(stack, since, 2)
    assert len({r["call_key"] for r in rows}) == 2
    # the second call's record is in a file Kamailio opened anew, under the live name
    assert {p: p.stat().st_size for p in renamed if p.exists()} == \
        {p: size for p, size in renamed.items() if p.exists()}, "no renamed file grew"
    assert any(p.stat().st_size for p in folder.glob("cdr_*.log")), sorted(folder.iterdir())
