"""The Docker stack end to end (`make test-docker`; skipped elsewhere, e.g. by `make test`).

docker/stack.py brings the two containers up (starting dockerd and making the base image
first when needed), pbxctl inside the proxy container loads a small data set of the test's
own, and SIPp places calls through the containerised proxy with the same scenarios and
assertions as tests/test_inbound_e2e.py and tests/test_outbound_e2e.py. Then a pbxctl change
reaches the running container at once, the db container restarts under the proxy and
calls (and changes) work again, and everything is taken down: no container, no volume,
and the daemon stopped if the test started it.

Ports and addresses are apart from the main suite's (15060/15061, carriers 127.0.0.2-5:5060,
abuse sources 127.0.0.11-22), so both can run at once on one machine: the proxy on
127.0.0.1:25060 (TLS 25061), rtpengine's control 25222 and media 26000-26999, the carriers
on 127.0.25.2 and 127.0.25.3:5060, SIMs on 127.0.0.1:25201/25301. The database has no TCP
port at all (its socket is a volume).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from harness.sipp import Check, Sipp, literal, request_line, udp_bound
from kemi.config import ROOT
from kemi.stack import sip_ping

from .test_outbound_e2e import shows

pytestmark = [
    pytest.mark.skipif(not os.environ.get("PBX_TEST_DOCKER"),
                       reason="the Docker stack: make test-docker (PBX_TEST_DOCKER=1)"),
    pytest.mark.timeout(1800),
]

_spec = importlib.util.spec_from_file_location("docker_stack", ROOT / "docker" / "stack.py")
dstack = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dstack)

PROJECT = "cloud-pbx-test"
PROXY_IP, PROXY_PORT = "127.0.0.1", 25060
SIM_IP = "127.0.0.1"
CARRIER_A, CARRIER_B, CARRIER_PORT = "127.0.25.2", "127.0.25.3", 5060
REG_PORT, SIM_OUT_PORT = 25201, 25301
ENV = {
    "PBX_SIP_ADDR": PROXY_IP, "PBX_SIP_PORT": str(PROXY_PORT), "PBX_TLS_PORT": "25061",
    "PBX_MEDIA_NG_PORT": "25222", "PBX_RPC_PORT": "25090", "PBX_MEDIA_PORTS": "26000-26999",
    # SIPp far ends answer only their scenario's requests: no keepalive OPTIONS to them
    "PBX_NATPING_S": "0", "PBX_KEEPALIVE_TIMEOUT_S": "0",
    "PBX_CHILDREN": "2",
}
REALM = "pbx.local"

# The test's own data (pbxctl, below): the demo's numbers, carriers at addresses of its own.
SOCHI_DID, KRASNODAR_DID = "+78622550101", "+78612100101"
IVAN = "+79181110003"
PASSWORD = "docker-test-79181110003"  # a test password, made here, stored only as HA1
CLIENT = "+79891234567"
# Trunks as a CSV on pbxctl's stdin (the README's way of importing one's own files).
TRUNKS_CSV = ("name,carrier,sources,egress_host,number_format,is_default\n"
              f"carrier-a,Carrier A,{CARRIER_A},{CARRIER_A},e164,yes\n"
              f"carrier-b,Carrier B,{CARRIER_B},{CARRIER_B},national,no\n")
DATA = [
    ["company", "add", "--name", "Kuban Realty"],
    ["district", "add", "--company", "Kuban Realty", "--name", "Sochi", "--caller-id", SOCHI_DID,
     "--trunk", "carrier-a"],
    ["district", "add", "--company", "Kuban Realty", "--name", "Krasnodar", "--caller-id",
     KRASNODAR_DID, "--trunk", "carrier-b"],
    ["manager", "add", "--company", "Kuban Realty", "--district", "Sochi", "--name", "Ivan",
     "--position", "1"],
]

TIMES: dict[str, float] = {}


def pbxctl(*args: str, stdin: str | None = None) -> str:
    """pbxctl inside the running proxy container."""
    cid = dstack.container("proxy", PROJECT, ENV)
    done = subprocess.run([dstack.DOCKER, "exec", "-i", cid, "pbxctl", *args], input=stdin or "",
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"pbxctl {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def docker_stack():
    for ip, port in ((PROXY_IP, PROXY_PORT), (CARRIER_A, CARRIER_PORT), (CARRIER_B, CARRIER_PORT),
                     (SIM_IP, REG_PORT), (SIM_IP, SIM_OUT_PORT)):
        assert not udp_bound(ip, port), f"{ip}:{port} is taken: the Docker test needs it"
    t0 = time.monotonic()
    ours_before = dstack._started_pid()  # a dockerd another run of the helper started: left alone
    try:
        done = dstack.up(project=PROJECT, env=ENV)
        TIMES["up (daemon, base image, build, containers healthy)"] = time.monotonic() - t0
        TIMES["base image made now"] = float(done["made_base"])
        t1 = time.monotonic()
        pbxctl("trunk", "import", "/dev/stdin", stdin=TRUNKS_CSV)
        for command in DATA:
            pbxctl(*command)
        pbxctl("sim", "add", "--username", IVAN, "--company", "Kuban Realty", "--manager", "Ivan",
               "--password-stdin", stdin=PASSWORD + "\n")
        TIMES["data loaded with pbxctl"] = time.monotonic() - t1
        yield
    finally:
        t2 = time.monotonic()
        if dstack.daemon_answers():
            dstack.compose("logs", "--no-color", "--tail", "200", project=PROJECT, env=ENV,
                           check=False, capture=False) if os.environ.get("PBX_KEEP_TEST_STATE") else None
            dstack.compose("down", "--volumes", "--remove-orphans", project=PROJECT, env=ENV,
                           capture=False)
            left = subprocess.run([dstack.DOCKER, "ps", "-aq", "--filter",
                                   f"label=com.docker.compose.project={PROJECT}"],
                                  capture_output=True, text=True).stdout.split()
            volumes = subprocess.run([dstack.DOCKER, "volume", "ls", "-q", "--filter",
                                      f"label=com.docker.compose.project={PROJECT}"],
                                     capture_output=True, text=True).stdout.split()
        else:
            left, volumes = [], []
        if ours_before is None and dstack._started_pid() is not None:  # this test started it
            dstack.stop_daemon()
        TIMES["down"] = time.monotonic() - t2
        TIMES["total"] = time.monotonic() - t0
        print("\ndocker e2e times (s): " + json.dumps({k: round(v, 1) for k, v in TIMES.items()}))
        assert not left and not volumes, f"left behind: containers {left}, volumes {volumes}"
        assert not udp_bound(PROXY_IP, PROXY_PORT), "the proxy's port is still bound"


@pytest.fixture
def sipp(docker_stack, tmp_path):
    started: list[Sipp] = []

    def make(flow: str, name: str, **kwargs) -> Sipp:
        far_end = Sipp(flow, name, tmp_path, remote=f"{PROXY_IP}:{PROXY_PORT}", **kwargs)
        started.append(far_end)
        return far_end

    yield make
    for far_end in started:
        far_end.stop()


def shows_carrier(number: str, carrier_ip: str, client: str = CLIENT) -> tuple[Check, ...]:
    """The e2e suite's carrier checks, for this stack's SIM port."""
    return shows(number, carrier_ip, client, sim_ports=(SIM_OUT_PORT,))


def register(sipp) -> None:
    sipp("register", "uac.xml", local_ip=SIM_IP, local_port=REG_PORT, service=IVAN,
         auth=(IVAN, PASSWORD), keys={"realm": REALM}).run()


def inbound_call(sipp) -> None:
    """tests/test_inbound_e2e.py: the carrier calls the Sochi DID written nationally; Ivan's
    SIM sees the client in E.164 with the district as display name; the carrier never
    learns who answered."""
    sim = sipp("inbound_call", "sim_uas.xml", local_ip=SIM_IP, local_port=REG_PORT,
               checks=(Check("From", f'^ *"Sochi" <sip:{literal(CLIENT)}@'),), service=IVAN).start()
    try:
        sipp("inbound_call", "trunk_uac.xml", local_ip=CARRIER_A,
             keys={"called": "88622550101", "caller": "89891234567"},
             checks=(Check("Contact", "9181110", present=False),
                     Check("Contact", f":{REG_PORT}[;>]", present=False))).run()
    except AssertionError:
        sim.stop()  # its port free for the next call
        raise
    sim.succeeded()


def attempts_until(call, attempts: int) -> int:
    """Calls that failed before `call` succeeded, as a carrier retrying would see them."""
    for failed in range(attempts):
        try:
            call()
            return failed
        except AssertionError:
            if failed == attempts - 1:
                raise
    return attempts


def outbound_call(sipp, carrier_ip: str, checks: tuple[Check, ...]) -> None:
    far = sipp("outbound_call", "trunk_uas.xml", local_ip=carrier_ip, local_port=CARRIER_PORT,
               checks=checks).start()
    sipp("outbound_call", "sim_uac.xml", local_ip=SIM_IP, local_port=SIM_OUT_PORT, service=IVAN,
         auth=(IVAN, PASSWORD), keys={"realm": REALM, "called": "89891234567"}).run()
    far.succeeded()


def ivan_id() -> str:
    rows = json.loads(pbxctl("manager", "list", "--company", "Kuban Realty", "--json"))
    return str(next(r["id"] for r in rows if r["name"] == "Ivan"))


def test_calls_changes_and_a_db_restart_through_the_containers(docker_stack, sipp):
    assert sip_ping(PROXY_IP, PROXY_PORT) == 200
    register(sipp)

    t = time.monotonic()
    inbound_call(sipp)
    outbound_call(sipp, CARRIER_A, shows_carrier(SOCHI_DID, CARRIER_A))
    TIMES["register + inbound + outbound"] = time.monotonic() - t

    # A pbxctl change reaches the running proxy at once: Ivan's caller ID becomes the
    # Krasnodar number, owned by carrier B (national format), so the very next call leaves
    # through carrier B showing it.
    pbxctl("manager", "update", ivan_id(), "--caller-id", KRASNODAR_DID)
    changed = time.monotonic()
    outbound_call(sipp, CARRIER_B, shows_carrier("88612100101", CARRIER_B, "89891234567"))
    TIMES["pbxctl change -> call showing it, done"] = time.monotonic() - changed

    # The database container restarts under the running proxy: calls work again, and so
    # do changes (the proxy's connections and LISTEN come back by themselves).
    db = dstack.container("db", PROJECT, ENV)
    t = time.monotonic()
    subprocess.run([dstack.DOCKER, "restart", db], check=True, capture_output=True, timeout=120)
    dstack.wait_healthy(("db", "proxy"), project=PROJECT, env=ENV)
    TIMES["db restart until healthy"] = time.monotonic() - t
    # A worker finds its connection dead only on its first request after the restart: one
    # that needs a query then (a DID it never cached) answers 503, as while the database is
    # down (README, Database faults), and reconnects on its next request. So the first call
    # per worker may fail; one must succeed within PBX_CHILDREN + 1 calls.
    TIMES["after the restart: inbound calls failed (503) before one rang"] = attempts_until(
        lambda: inbound_call(sipp), int(ENV["PBX_CHILDREN"]) + 1)

    # A change made after the restart: for the same reason a worker decides its first
    # request after the restart on the plans it had, and reloads on its next one. Carrier B
    # (the old number's owner) may take the first calls; carrier A must get one, showing
    # the new number, within PBX_CHILDREN + 1 calls.
    pbxctl("manager", "update", ivan_id(), "--caller-id", SOCHI_DID)
    changed = time.monotonic()
    fresh = sipp("outbound_call", "trunk_uas.xml", local_ip=CARRIER_A, local_port=CARRIER_PORT,
                 checks=shows_carrier(SOCHI_DID, CARRIER_A)).start()
    stale_calls = 0
    for _ in range(int(ENV["PBX_CHILDREN"]) + 1):
        stale = sipp("outbound_call", "trunk_uas.xml", local_ip=CARRIER_B,
                     local_port=CARRIER_PORT).start()
        sipp("outbound_call", "sim_uac.xml", local_ip=SIM_IP, local_port=SIM_OUT_PORT,
             service=IVAN, auth=(IVAN, PASSWORD),
             keys={"realm": REALM, "called": "89891234567"}).run()
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and fresh.process.poll() is None \
                and stale.process.poll() is None:
            time.sleep(0.02)
        stale.stop()
        if fresh.process.poll() is not None:
            break
        stale_calls += 1
    fresh.succeeded(timeout=5)
    TIMES["after the restart: calls on old plans before the change showed"] = stale_calls
    TIMES["after the restart: change -> call showing it"] = time.monotonic() - changed
