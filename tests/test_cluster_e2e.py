"""A cluster of proxies on the session's database (README, A cluster of proxies): two nodes on
their own loopback addresses, registrations replicated over dmq and kept in PostgreSQL,
calls through each node to SIMs registered on the other, a node SIGKILLed under load and
rejoining, a single node restarted, and a routing change used by both within a second."""

from __future__ import annotations

import os
import re
import signal
import time
from dataclasses import replace
from pathlib import Path

import pytest

from kemi.directory import Directory
from kemi.stack import Kamailio, StackError, free_port, kamcmd, topology_key

from .conftest import PROXY_PORT, SIM_IP, TRUNK_IP, demo_password

pytestmark = pytest.mark.skipif(os.environ.get("PBX_TEST_WIRING") == "kemi",
                                reason="a cluster runs the native wiring only")

# Apart from every other test's addresses (tests/conftest.py, harness/): nodes A and B.
NODE_A, NODE_B = "127.0.0.61", "127.0.0.62"
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
        os.kill(self.proxy.pid, signal.SIGKILL)
        self.proxy.process.wait(10)

    def stop(self) -> None:
        self.proxy.stop()

    def registrations(self) -> set[tuple[str, str]]:
        """(SIM, where calls go) for every registration this node holds (kamcmd ul.dump)."""
        dump = self.proxy.rpc("ul.dump")
        found, aor = set(), None
        for line in dump.splitlines():
            if m := re.match(r"\s*AoR:\s*(\S+)", line):
                aor = m.group(1)
            elif (m := re.match(r"\s*Received:\s*(\S+)", line)) and aor:
                found.add((aor, m.group(1)))
        return found


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
    want = {sim for sim in sims}
    return all(want <= {aor for aor, _ in node.registrations()} for node in cluster.values())


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
