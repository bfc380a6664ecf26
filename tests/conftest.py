"""Fixtures: a private PostgreSQL and a real Kamailio for the session, SIPp far ends per test."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg2
import pytest

from kemi import db
from kemi.config import ROOT, Config
from kemi.stack import Kamailio, PostgresCluster, Rtpengine, free_port, prepare_database

from harness.sipp import SilentPeer, Sipp

# Distinct loopback addresses for distinct roles: "trusted because of its source
# address" is then really tested.
PROXY_IP = "127.0.0.1"
SIM_IP = "127.0.0.1"
TRUNK_IP = "127.0.0.2"  # kuban-telecom (E.164)
UNTRUSTED_IP = "127.0.0.3"
NATIONAL_TRUNK_IP = "127.0.0.4"  # south-link (8XXXXXXXXXX, accepts foreign caller IDs)
STRICT_TRUNK_IP = "127.0.0.5"  # west-line (accepts only its own numbers)
TRUNK_PORT = 5060  # where every test carrier receives calls (trunk.egress_port)
PROXY_PORT = 15060  # UDP and TCP
PROXY_TLS_PORT = 15061


# The session proxy's masking keys (README, Masked client numbers): test keys, in a file
# as in production; tests/test_masking_e2e.py rotates them.
MASK_KEYS = "1 EF4359D8D580AA4F7F036D6F04FC6A94 active\n"


def demo_password(sim: str) -> str:
    """sql/demo.sql: the password of a demo SIM."""
    return "demo-" + sim.lstrip("+")


@dataclass
class Stack:
    config: Config
    cluster: PostgresCluster
    proxy: Kamailio
    log: Path
    media: Rtpengine | None = None

    @property
    def remote(self) -> str:
        return f"{self.config.sip_addr}:{self.config.sip_port}"

    @property
    def dsn(self) -> str:
        return self.cluster.dsn


@pytest.fixture(scope="session")
def stack():
    state = Path(tempfile.mkdtemp(prefix="cloud-pbx-test-"))
    os.chmod(state, 0o755)
    keys = state / "mask.keys"
    keys.write_text(MASK_KEYS)
    keys.chmod(0o600)
    # PBX_TEST_WIRING=kemi runs the whole suite through the full-KEMI wiring.
    config = replace(Config(), state_dir=str(state), sip_port=PROXY_PORT, pg_port=free_port(),
                     tls_port=PROXY_TLS_PORT,
                     wiring=os.environ.get("PBX_TEST_WIRING", "native"),
                     children=4, no_answer_ms=1000, ring_ms=2000,
                     cache_ttl_s=60.0,  # long: live changes must come from notifications
                     flood_reqs=1000,  # every test SIM sends from 127.0.0.1
                     # no keepalives: SIPp far ends answer only their scenario's requests
                     # (keepalives are tested in the NAT lab, tests/test_nat_e2e.py)
                     natping_s=0, keepalive_timeout_s=0,
                     # every call's media anchored, as in production
                     media_ng_port=free_port(), rpc_port=free_port(), media_ports="31000-31999",
                     mask_keys_file=str(keys), metrics_port=free_port())
    cluster = PostgresCluster(state, config.pg_port, durable=False)
    proxy = Kamailio(config, state / "kamailio", log_path=state / "kamailio.log")
    media = Rtpengine.for_config(config, state / "rtpengine")
    try:
        cluster.start()
        prepare_database(cluster.dsn, config.realm)
        db.run_script(cluster.dsn, ROOT / "tests" / "data.sql", {"pbx.realm": config.realm})
        media.start()
        proxy.start()
        yield Stack(config, cluster, proxy, state / "kamailio.log", media)
    finally:
        proxy.stop()
        media.stop()
        cluster.stop()
        if os.environ.get("PBX_KEEP_TEST_STATE"):
            print(f"test state kept in {state}")
        else:
            shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def sipp(stack, tmp_path):
    """Factory of SIPp far ends aimed at the proxy; stops any still running at the end."""
    started: list[Sipp] = []

    def make(flow: str, name: str, remote_override: str | None = None, **kwargs) -> Sipp:
        far_end = Sipp(flow, name, tmp_path, remote=remote_override or stack.remote, **kwargs)
        started.append(far_end)
        return far_end

    yield make
    for far_end in started:
        far_end.stop()


@pytest.fixture
def dba(stack):
    """dba(sql, revert): raw SQL committed as a DBA would; reverted after the test."""
    conn = psycopg2.connect(stack.dsn, application_name="dba")
    conn.autocommit = True
    undo: list[str] = []

    def run(statement: str, revert: str | None = None) -> None:
        with conn.cursor() as cur:
            cur.execute(statement)
        if revert:
            undo.append(revert)

    yield run
    with conn.cursor() as cur:
        for statement in reversed(undo):
            cur.execute(statement)
    conn.close()


@pytest.fixture
def silent(request):
    """silent(ip, port): a bound UDP port that answers nothing and records what reaches it."""
    peers: list[SilentPeer] = []

    def bind(ip: str, port: int) -> SilentPeer:
        peers.append(SilentPeer(ip, port))
        return peers[-1]

    yield bind
    for peer in peers:
        peer.close()


@pytest.fixture
def register(stack, sipp):
    """register(sim, port): the SIM registers from 127.0.0.1:port; unregistered after the test."""
    registered: list[str] = []

    def do(sim: str, port: int) -> None:
        sipp("register", "uac.xml", local_ip=SIM_IP, local_port=port, service=sim,
             auth=(sim, demo_password(sim)), keys={"realm": stack.config.realm}).run()
        registered.append(sim)

    yield do
    for sim in registered:
        stack.proxy.rpc("ul.rm", "location", "s:" + sim)  # s: keeps kamcmd from reading a number
