"""The database stops or freezes under SIPp load: cached routes keep routing, known SIMs keep
authenticating, misses get a fast 503 without Retry-After, and fresh data returns by itself."""

from __future__ import annotations

import re
import signal
import time

import psycopg2
import pytest

from harness import rawsip
from kemi import db
from .conftest import SIM_IP, TRUNK_IP, TRUNK_PORT, demo_password
from harness.sipp import Check, literal, request_line

IVAN, BORIS, CLIENT = "+79181110003", "+79181110004", "+79891234567"
SOCHI_DID, UNCACHED_DID, NEW_DID = "+78622550101", "+78612100102", "+78622550109"
RESTART_DID = "+78622550177"


def worker_activity(stack) -> dict[int, int]:
    """Lookups (hits + misses) per worker PID, as published to the stats htable."""
    dump = stack.proxy.rpc("htable.dump", "stats")
    counts: dict[int, int] = {}
    for pid, name, value in re.findall(r"name:\s*(\d+)\.(\w+)\s+value:\s*(\d+)", dump):
        if name in ("hits", "misses"):
            counts[int(pid)] = counts.get(int(pid), 0) + int(value)
    return counts


def inbound_calls(sipp, calls: int, rate: float, called: str = SOCHI_DID):
    ivan = sipp("inbound_call", "sim_uas.xml", local_ip=SIM_IP, local_port=5201, calls=calls,
                timeout_s=120, checks=(Check("From", f'"Sochi" <sip:{literal(CLIENT)}@'),)).start()
    trunk = sipp("inbound_call", "trunk_uac.xml", local_ip=TRUNK_IP, local_port=5062,  # 5060: carrier
                 calls=calls, rate=rate,
                 timeout_s=120, keys={"called": called, "caller": CLIENT}).start()
    return ivan, trunk


def warm_every_worker(stack, sipp) -> None:
    """Sochi calls until every worker has routed one (each then holds the Sochi DID and
    the SIM snapshot): the kernel hands datagrams to workers unevenly."""
    before = worker_activity(stack)
    for _ in range(10):
        for _batch in range(2):  # workers publish once a second, at a request: two batches
            ivan, trunk = inbound_calls(sipp, 12, 30)
            trunk.succeeded(60)
            ivan.succeeded(60)
            time.sleep(1.1)
        after = worker_activity(stack)
        # every UDP worker (TCP workers publish too once a TCP test ran: they route none of these)
        if sum(after[pid] > before.get(pid, 0) for pid in after) >= stack.config.children:
            return
    pytest.fail(f"not every worker routed a warm-up call: {worker_activity(stack)}")


@pytest.fixture
def fault(stack):
    """fault("stopped" | "frozen") turns the fault on; it is always undone."""
    state = {}

    def on(kind: str) -> None:
        state["kind"] = kind
        if kind == "stopped":
            stack.cluster.stop()
        else:
            stack.cluster.signal_all(signal.SIGSTOP)

    def off() -> None:
        kind = state.pop("kind", None)
        if kind == "stopped":
            stack.cluster.start()
        elif kind == "frozen":
            stack.cluster.signal_all(signal.SIGCONT)

    on.off = off
    yield on
    off()


@pytest.mark.parametrize("kind", ["stopped", "frozen"])
def test_routing_survives_a_database_fault(stack, sipp, register, fault, kind):
    register(IVAN, 5201)
    warm_every_worker(stack, sipp)
    ivan, trunk = inbound_calls(sipp, 40, 8)  # 5 s of calls across the fault
    time.sleep(1.0)
    fault(kind)
    try:
        # A DID no worker has cached: 503 at once, and no Retry-After (a carrier would
        # stop sending the calls we can still route).
        started = time.monotonic()
        reply = rawsip.final_reply(rawsip.build(
            "INVITE", f"sip:{UNCACHED_DID}@{stack.remote}", (TRUNK_IP, 5997),
            from_uri=f"sip:{CLIENT}@{TRUNK_IP}", to_uri=f"sip:{UNCACHED_DID}@{stack.remote}"),
            (TRUNK_IP, 5997), (stack.config.sip_addr, stack.config.sip_port))
        elapsed = time.monotonic() - started
        assert reply.startswith("SIP/2.0 503 Service Unavailable"), reply
        assert "Retry-After" not in reply
        assert elapsed < stack.config.db_timeout_ms / 1000 + 0.5, elapsed
        # A known SIM still registers, and still calls a client out.
        register(BORIS, 5202)
        carrier = sipp("outbound_call", "trunk_uas.xml", local_ip=TRUNK_IP, local_port=TRUNK_PORT,
                       checks=(request_line("INVITE", CLIENT, TRUNK_IP),
                               Check("From", f"<sip:{literal(SOCHI_DID)}@"))).start()
        sipp("outbound_call", "sim_uac.xml", local_ip=SIM_IP, local_port=5301, service=BORIS,
             auth=(BORIS, demo_password(BORIS)),
             keys={"realm": stack.config.realm, "called": "89891234567"}).run()
        carrier.succeeded()
    finally:
        fault.off()
    trunk.succeeded(90)  # every cached call went through: zero failed
    ivan.succeeded(90)
    # The database is back: fresh data is used within a second, nobody restarted anything.
    conn = psycopg2.connect(stack.dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("INSERT INTO did (number, company_id, district_id, trunk_id) "
                        f"SELECT '{NEW_DID}', company_id, district_id, trunk_id FROM did "
                        f"WHERE number = '{SOCHI_DID}'")
        time.sleep(1.0)
        ivan, trunk = inbound_calls(sipp, 1, 1, called=NEW_DID)
        trunk.succeeded(30)
        ivan.succeeded(30)
    finally:
        with conn, conn.cursor() as cur:
            cur.execute(f"DELETE FROM did WHERE number = '{NEW_DID}'")
        conn.close()


def terminate_backends(stack, application: str) -> int:
    """pg_terminate_backend for every connection of that application_name (a restart as
    the clients see it): how many there were."""
    conn = psycopg2.connect(stack.dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (application,))
            pids = [pid for pid, in cur.fetchall()]
            for pid in pids:  # one by one: a WHERE may run pg_terminate_backend on any row
                cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
            for _ in range(100):  # until they have said their last word and gone (the proxy
                cur.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,))
                if cur.fetchone()[0] == 0:  # may have opened new ones meanwhile)
                    return len(pids)
                time.sleep(0.02)
            raise AssertionError(f"{application}: backends still there after 2 s")
    finally:
        conn.close()


def test_a_closed_connection_is_replaced_at_once(stack):
    """The server closed an established connection: the next query opens a new one and
    answers, instead of failing and keeping the breaker open for the next requests."""
    database = db.Database(stack.dsn, application="cloud-pbx-test-reconnect", listen=True)
    try:
        assert database.query("company_count")[0]["n"] >= 1
        assert database.changed().everything  # the first connection: everything
        assert terminate_backends(stack, "cloud-pbx-test-reconnect") == 1
        assert database.query("company_count")[0]["n"] >= 1
        assert not database.breaker_open
        assert terminate_backends(stack, "cloud-pbx-test-reconnect") == 1
        assert database.changed().everything  # notifications were lost: everything again
        assert not database.breaker_open
    finally:
        database.close()


def test_calls_right_after_the_proxys_connections_are_closed(stack, sipp, register):
    """Every worker's connection is closed by the server (as at a database restart) while
    a DID is added: within the second changes take, the first call to that DID rings, on
    its first attempt (a worker replaces its connection at once, not after a failure)."""
    register(IVAN, 5201)
    warm_every_worker(stack, sipp)
    conn = psycopg2.connect(stack.dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'cloud-pbx'")
            assert cur.fetchone()[0] >= stack.config.children
        terminate_backends(stack, "cloud-pbx")
        with conn.cursor() as cur:
            cur.execute("INSERT INTO did (number, company_id, district_id, trunk_id) "
                        f"SELECT '{RESTART_DID}', company_id, district_id, trunk_id FROM did "
                        f"WHERE number = '{SOCHI_DID}'")
        time.sleep(1.0)  # README: a change reaches the running proxy within a second
        ivan, trunk = inbound_calls(sipp, 1, 1, called=RESTART_DID)
        trunk.succeeded(30)
        ivan.succeeded(30)
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DELETE FROM did WHERE number = '{RESTART_DID}'")
        conn.close()
