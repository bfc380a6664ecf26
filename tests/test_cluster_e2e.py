"""A cluster of proxies on the session's database (README, A cluster of proxies): two nodes on
their own loopback addresses, registrations replicated over dmq and kept in PostgreSQL,
calls through each node to SIMs registered on the other, a node SIGKILLed under load and
rejoining, a single node restarted, and a routing change used by both within a second."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from kemi.stack import Kamailio, StackError, free_port, topology_key, with_children

from .conftest import PROXY_PORT, SIM_IP, TRUNK_IP, demo_password

pytestmark = pytest.mark.skipif(os.environ.get("PBX_TEST_WIRING") == "kemi",
                                reason="a cluster runs the native wiring only")

# Apart from every other test's addresses (tests/conftest.py, harness/): nodes A and B.
NODE_A, NODE_B = "127.0.0.61", "127.0.0.62"
SINGLE = "127.0.0.63"  # a proxy alone, restarted
CLUSTER_PORT = 15070

# sql/demo.sql: each DID rings its district's first manager first.
SOCHI_DID, KRASNODAR_DID, NOVOROSSIYSK_DID = "+78622550101", "+78612100101", "+78617300101"
IVAN, BORIS, OLGA, NINA = "+79181110003", "+79181110004", "+79181110001", "+79181110005"
CLIENT = "+79891234567"
PORTS = {IVAN: 5601, BORIS: 5602, OLGA: 5603, NINA: 5604}


class Node:
    """One proxy of the cluster: its config, its Kamailio, restartable on the same state."""

    def __init__(self, stack, state: Path, addr: str, peers: tuple[str, ...]):
        self.addr = addr
        # The session's database and topology key (proxies sharing calls share it); no
        # media relay (each node would need its own rtpengine), no records.
        self.config = replace(stack.config, sip_addr=addr, sip_port=PROXY_PORT, tls_port=0,
                              media="off", records="off", rpc_port=free_port(),
                              metrics_port=free_port(), state_dir=str(state / addr),
                              dsn=stack.dsn, topology_key=topology_key(stack.config),
                              cluster_peers=",".join(peers), cluster_port=CLUSTER_PORT)
        self.log = state / f"{addr}.log"
        self.proxy = Kamailio(self.config, state / addr / "kamailio", log_path=self.log)

    @property
    def remote(self) -> str:
        return f"{self.addr}:{PROXY_PORT}"

    def start(self) -> float:
        """Start; the seconds until it answered OPTIONS."""
        began = time.monotonic()
        self.proxy.start(timeout=30)
        return time.monotonic() - began

    def kill(self) -> None:
        """SIGKILL to every process of it at once, as a machine that dies (its workers alone
        would go on serving after their parent's death)."""
        pids = with_children(self.proxy.pid)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        self.proxy.process.wait(10)
        until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in pids[1:]), timeout=10)

    def stop(self) -> None:
        self.proxy.stop()

    def registrations(self, sims=None) -> list[tuple[str, str, str]]:
        """(SIM, contact, where calls go) of every registration this node holds (kamcmd
        ul.dump), sorted, duplicates kept; only those of `sims` if given."""
        dump = self.proxy.rpc("ul.dump")
        found, aor, contact = [], None, None
        for line in dump.splitlines():
            if m := re.match(r"\s*AoR:\s*(\S+)", line):
                aor = m.group(1)
            elif m := re.match(r"\s*Address:\s*(\S+)", line):
                contact = m.group(1)
            elif (m := re.match(r"\s*Received:\s*(\S+)", line)) and aor:
                found.append((aor, contact, m.group(1)))
        return sorted(r for r in found if sims is None or r[0] in sims)


def until(condition, timeout: float, step: float = 0.05) -> float:
    """Seconds until condition() held; AssertionError past timeout."""
    began = time.monotonic()
    while not condition():
        if time.monotonic() - began > timeout:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(step)
    return time.monotonic() - began


@pytest.fixture(scope="module")
def cluster(stack, tmp_path_factory):
    state = tmp_path_factory.mktemp("cluster")
    os.chmod(state, 0o755)
    nodes = {NODE_A: Node(stack, state, NODE_A, (NODE_B,)),
             NODE_B: Node(stack, state, NODE_B, (NODE_A,))}
    try:
        for node in nodes.values():
            node.start()
        yield nodes
    finally:
        for node in nodes.values():
            node.stop()


@pytest.fixture
def register_at(stack, sipp, cluster):
    """register_at(node, sim): the SIM registers through that node; removed on every node
    after the test (the removal replicates too)."""
    registered: list[str] = []

    def do(node: Node, sim: str) -> None:
        sipp("register", "uac.xml", remote_override=node.remote, local_ip=SIM_IP,
             local_port=PORTS[sim], service=sim, auth=(sim, demo_password(sim)),
             keys={"realm": stack.config.realm}).run()
        registered.append(sim)

    yield do
    for node in cluster.values():
        for sim in registered:
            try:
                node.proxy.rpc("ul.rm", "location", "s:" + sim)
            except StackError:
                pass  # removed by the replication from the other node already, or node down


def sim_answering(sipp, sim: str, calls: int = 1):
    return sipp("inbound_call", "sim_uas.xml", local_ip=SIM_IP, local_port=PORTS[sim],
                service=sim, calls=calls, timeout_s=60).start()


def client_calling(sipp, node: Node, did: str, calls: int = 1, rate: float | None = None):
    return sipp("inbound_call", "trunk_uac.xml", remote_override=node.remote, local_ip=TRUNK_IP,
                keys={"called": did, "caller": CLIENT}, calls=calls, rate=rate, timeout_s=60)


def everywhere(cluster, sims) -> bool:
    return all(set(sims) <= {r[0] for r in node.registrations()} for node in cluster.values())


def sipp_counts(far_end) -> tuple[int, int]:
    """(successful, failed) calls from a finished SIPp's screen file (-trace_screen)."""
    text = far_end.screen_file.read_text(errors="replace")
    ok = re.findall(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", text)
    failed = re.findall(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", text)
    return int(ok[-1]), int(failed[-1])


# -- one proxy restarted: no registration lost ---------------------------------------------

@pytest.fixture
def single(stack, tmp_path):
    node = Node(stack, tmp_path, SINGLE, ())
    node.start()
    yield node
    for sim in (IVAN, BORIS):
        try:
            node.proxy.rpc("ul.rm", "location", "s:" + sim)
        except StackError:
            pass
    time.sleep(1.5)  # usrloc writes the removal back within its second
    node.stop()


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_a_proxy_restarted_keeps_every_registration(stack, sipp, single, how):
    for sim in (IVAN, BORIS):
        sipp("register", "uac.xml", remote_override=single.remote, local_ip=SIM_IP,
             local_port=PORTS[sim], service=sim, auth=(sim, demo_password(sim)),
             keys={"realm": stack.config.realm}).run()
    before = single.registrations((IVAN, BORIS))
    assert [r[0] for r in before] == [IVAN, BORIS]
    time.sleep(1.2)  # usrloc's write-back: a SIGKILL loses the changes of the last second
    if how == "SIGKILL":
        single.kill()
    else:
        single.stop()
    took = single.start()
    assert single.registrations((IVAN, BORIS)) == before
    print(f"\n{how}: back with {len(before)} of {len(before)} registrations, "
          f"answering {took:.2f} s after the start")
    # no SIM registers again: the call reaches Ivan where he registered before the restart
    phone = sim_answering(sipp, IVAN)
    client_calling(sipp, single, SOCHI_DID).run()
    phone.succeeded()


# -- registrations everywhere ------------------------------------------------------------

def test_a_sim_registered_on_one_node_rings_through_the_other(cluster, sipp, register_at):
    a, b = cluster[NODE_A], cluster[NODE_B]
    register_at(a, IVAN)  # Sochi's first
    register_at(b, OLGA)  # Krasnodar's first
    took = until(lambda: everywhere(cluster, (IVAN, OLGA)), timeout=2)
    print(f"\nregistrations on both nodes {took * 1000:.0f} ms after the last REGISTER's 200")
    # each node holds the same contact, bound to where the REGISTER came from
    assert a.registrations() == b.registrations()
    for sim, node, did in ((IVAN, b, SOCHI_DID), (OLGA, a, KRASNODAR_DID)):
        phone = sim_answering(sipp, sim)
        client_calling(sipp, node, did).run()
        phone.succeeded()


# -- a node lost under load, and back ---------------------------------------------------------

def test_a_node_killed_under_load_loses_no_registration_and_rejoins_current(
        cluster, sipp, register_at):
    a, b = cluster[NODE_A], cluster[NODE_B]
    register_at(a, IVAN)
    register_at(b, OLGA)
    until(lambda: everywhere(cluster, (IVAN, OLGA)), timeout=2)
    before = b.registrations()
    calls, rate = 60, 10  # 6 s through each node; A dies 2 s in
    ivan = sim_answering(sipp, IVAN, calls=calls)
    olga = sim_answering(sipp, OLGA, calls=calls)
    through_b = client_calling(sipp, b, SOCHI_DID, calls=calls, rate=rate).start()
    through_a = client_calling(sipp, a, KRASNODAR_DID, calls=calls, rate=rate).start()
    time.sleep(2.0)
    a.kill()
    # Calls through the survivor, to a SIM that registered with the dead node: none fails.
    through_b.succeeded(60)
    ivan.succeeded(60)
    assert b.registrations() == before
    through_a.wait(60)
    olga.stop()
    ok, failed = sipp_counts(through_a)
    print(f"\nthrough B: {calls} of {calls} calls succeeded while A died; through A: "
          f"{ok} succeeded before the kill, {failed} failed (in setup or sent after it: "
          f"the carrier's next target takes them, README)")
    # While A is down a SIM registers with B; A comes back with it and everything else.
    register_at(b, NINA)
    expected = b.registrations()
    began = time.monotonic()
    a.start()
    until(lambda: a.registrations() == expected, timeout=10)
    print(f"A rejoined: serving with all {len(expected)} current registrations "
          f"{time.monotonic() - began:.2f} s after its start")
    assert a.registrations() == b.registrations() == expected
    # ... and serves them: Nina (registered while it was down) and Ivan (before).
    for sim, did in ((NINA, NOVOROSSIYSK_DID), (IVAN, SOCHI_DID)):
        phone = sim_answering(sipp, sim)
        client_calling(sipp, a, did).run()
        phone.succeeded()


# -- routing caches coherent across nodes -----------------------------------------------------

def test_a_routing_change_is_used_by_every_node_within_a_second(cluster, sipp, register_at,
                                                                 dba, silent):
    a, b = cluster[NODE_A], cluster[NODE_B]
    register_at(a, IVAN)
    register_at(b, BORIS)
    until(lambda: everywhere(cluster, (IVAN, BORIS)), timeout=2)
    # Boris covers for Ivan: he rings first in Sochi (plain SQL, as a DBA would).
    dba("UPDATE manager SET position = CASE name WHEN 'Boris' THEN 1 ELSE 2 END"
        " WHERE name IN ('Ivan', 'Boris')",
        "UPDATE manager SET position = CASE name WHEN 'Ivan' THEN 1 ELSE 2 END"
        " WHERE name IN ('Ivan', 'Boris')")
    time.sleep(1.0)
    ivan = silent(SIM_IP, PORTS[IVAN])  # any INVITE reaching Ivan is the old order
    calls = 20
    boris = sim_answering(sipp, BORIS, calls=2 * calls)
    loads = [client_calling(sipp, node, SOCHI_DID, calls=calls, rate=20).start()
             for node in (a, b)]
    for load in loads:
        load.succeeded(60)
    boris.succeeded(60)
    assert ivan.received() == []


# -- the dmq bus is the peers' only ----------------------------------------------------------

def forged_registration(source: tuple[str, int], node: Node, port: int, contact: str) -> None:
    """A dmq_usrloc update (KDMQ, its JSON contact) saying IVAN is at contact, from source."""
    now = int(time.time())
    body = json.dumps({"action": 1, "aor": IVAN, "ruid": f"forged-{uuid.uuid4().hex}",
                       "c": contact, "received": "", "path": "", "callid": "forged",
                       "user_agent": "forged", "instance": "", "expires": now + 600, "cseq": 1,
                       "flags": 0, "cflags": 0, "q": -1, "last_modified": now, "methods": -1,
                       "reg_id": 0, "server_id": 0})
    message = "\r\n".join([
        f"KDMQ sip:usrloc@{node.addr}:{port} SIP/2.0",
        f"Via: SIP/2.0/UDP {source[0]}:{source[1]};branch=z9hG4bK{uuid.uuid4().hex[:16]}",
        "Max-Forwards: 1", f"From: <sip:usrloc@{source[0]}>;tag={uuid.uuid4().hex[:8]}",
        f"To: <sip:usrloc@{node.addr}>", f"Call-ID: {uuid.uuid4().hex}", "CSeq: 1 KDMQ",
        "Content-Type: application/json", f"Content-Length: {len(body)}", "", body])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(source)
        sock.sendto(message.encode(), (node.addr, port))


def test_only_a_peer_can_put_a_registration_on_the_bus(cluster):
    """A stranger's KDMQ, on the cluster port or the SIP port, would aim a SIM's calls at its
    address: dropped. The same message from the peer's address is taken (so that the forgery
    is one Kamailio would have obeyed)."""
    a = cluster[NODE_A]
    stranger = ("127.0.0.64", 5998)
    forged = {port: f"sip:{IVAN}@127.0.0.66:{5990 + i}"
              for i, port in enumerate((CLUSTER_PORT, PROXY_PORT))}
    try:
        for port, contact in forged.items():
            forged_registration(stranger, a, port, contact)
        time.sleep(1.0)
        held = [c for _, c, _ in a.registrations((IVAN,))]
        assert not any(c in held for c in forged.values()), held
        from_peer = f"sip:{IVAN}@127.0.0.66:5999"
        forged_registration((NODE_B, 5997), a, CLUSTER_PORT, from_peer)
        until(lambda: from_peer in [c for _, c, _ in a.registrations((IVAN,))], timeout=2)
    finally:
        a.proxy.rpc("ul.rm", "location", "s:" + IVAN)
