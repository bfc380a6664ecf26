"""SIMs on mobile data, behind a NAT, end to end in a lab of network namespaces
(harness/natlab.py): a real Kamailio and rtpengine in the proxy's namespace, SIPp phones
behind an nftables masquerade, SIPp carriers on their own network, audio counted at every
end. Nothing here can leave the lab: every address is assigned inside it."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from pathlib import Path

import psycopg2
import pytest

from harness.natlab import (CARRIER_SIDE, KUBAN, NAT_PUBLIC, PHONE_SIDE, PROXY_CARRIER_SIDE,
                            PROXY_SIM_SIDE, SIM_A, SIM_B, SOUTH_LINK, WEST_LINE, NatLab)
from harness.netns import Capture
from harness.sipp import Check, Sipp, literal
from kemi import db, rtpengine
from kemi.config import ROOT
from kemi.stack import Kamailio, Rtpengine, StackError, prepare_database

from .conftest import demo_password

# sql/demo.sql
SOCHI_DID = "+78622550101"
IVAN, BORIS = "+79181110003", "+79181110004"  # Sochi: Ivan first, Boris covers
CLIENT = "+79891234567"
SIM_PORT = 5062
PROXY_PORT = 5060
TALK_MS = 1500
PACKETS = 50  # the audio file: 1 s of PCMA, 160 bytes every 20 ms
# The lab's timers, short enough to expire within a test.
NATPING_S, KEEPALIVE_TIMEOUT_S, MEDIA_TIMEOUT_S = 1, 8, 4


@pytest.fixture(scope="module")
def lab(stack, tmp_path_factory):
    """The lab with its own proxy on its own database (the session's cluster, another name):
    the carriers are on 192.0.2.0/24 here."""
    net = NatLab().create()
    state = Path(stack.config.state_dir) / "natlab"
    dsn = stack.dsn.replace("dbname=pbx", "dbname=pbx_nat")
    admin = psycopg2.connect(stack.dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS pbx_nat")
        cur.execute("CREATE DATABASE pbx_nat")
    admin.close()
    prepare_database(dsn, stack.config.realm)
    db.run_script(dsn, ROOT / "tests" / "data.sql", {"pbx.realm": stack.config.realm})
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        for name, address in (("kuban-telecom", KUBAN), ("south-link", SOUTH_LINK),
                              ("west-line", WEST_LINE)):
            cur.execute("UPDATE trunk SET sources = %s::cidr[], egress_host = %s WHERE name = %s",
                        ([f"{address}/32"], address, name))
    config = replace(stack.config, sip_addr=PROXY_SIM_SIDE, carrier_addr=PROXY_CARRIER_SIDE,
                     sip_port=PROXY_PORT, tls_port=0, dsn=dsn, state_dir=str(state),
                     natping_s=NATPING_S, keepalive_timeout_s=KEEPALIVE_TIMEOUT_S,
                     media_ng_port=22222, rpc_port=5090, media_ports="30000-30999",
                     media_timeout_s=MEDIA_TIMEOUT_S)
    proxy = Kamailio(config, state / "kamailio", log_path=state / "kamailio.log")
    media = Rtpengine.for_config(config, state / "rtpengine")
    audio = tmp_path_factory.mktemp("audio") / "second.alaw"
    audio.write_bytes(b"\xd5" * 160 * PACKETS)  # A-law silence
    try:
        with net.proxy.entered():
            media.start()
            proxy.start()
        yield Lab(net, config, proxy, media, audio)
    finally:
        proxy.stop()
        media.stop()
        net.delete()


class Lab:
    def __init__(self, net: NatLab, config, proxy: Kamailio, media: Rtpengine, audio: Path):
        self.net, self.config, self.proxy, self.media, self.audio = net, config, proxy, media, audio

    def ng(self, command: dict) -> dict:
        with self.net.proxy.entered():  # rtpengine's control socket is the proxy's loopback
            return rtpengine.ng(self.media.address, command)

    def sessions(self) -> list[str]:
        with self.net.proxy.entered():
            return rtpengine.calls(self.media.address)

    def relayed(self) -> int:
        return int(self.ng({"command": "statistics"})["statistics"]["totalstatistics"]
                   ["relayedpackets"])

    def open_dialogs(self) -> int:
        """Dialogs Kamailio holds that have not ended (an ended one lingers in dlg.list
        while its BYE transaction waits out tm's wait_timer)."""
        states = re.findall(r"\bstate: (\d+)", self.proxy.rpc("dlg.list"))
        return sum(1 for state in states if state != "5")  # 5: DLG_STATE_DELETED

    def unanchored(self) -> int:
        """Calls connected without the relay (kamailio.cfg's media_unanchored)."""
        stats = self.proxy.rpc("stats.get_statistics", "media_unanchored")
        return int(re.search(r"media_unanchored = (\d+)", stats).group(1))

    def contact(self, sim: str) -> str:
        """ul.lookup's answer for the SIM ('' when it has no registered contact)."""
        try:
            return self.proxy.rpc("ul.lookup", "location", "s:" + sim)
        except StackError:
            return ""


@pytest.fixture
def phones(lab, sipp):
    """SIPp processes in the lab: phone(space, flow, name, **kwargs) started there (its
    sockets belong to that namespace), aimed at the proxy's address on that side."""

    def start(space, flow: str, name: str, proxy_port: int = PROXY_PORT, **kwargs) -> Sipp:
        remote = PROXY_CARRIER_SIDE if space is lab.net.carrier else PROXY_SIM_SIDE
        values = {"AUDIO": str(lab.audio), "TALK_MS": str(TALK_MS), **kwargs.pop("values", {})}
        far_end = sipp(flow, name, remote_override=f"{remote}:{proxy_port}", values=values,
                       **kwargs)
        with space.entered():
            return far_end.start()

    return start


@pytest.fixture
def sim_answers(lab, phones):
    """sim_answers(sim, address=SIM_A, name="sim_uas.xml"): the SIM's phone behind the NAT,
    answering keepalives until its call comes (sipp/nat_inbound/)."""

    def start(sim: str, address: str = SIM_A, name: str = "sim_uas.xml", **kwargs) -> Sipp:
        return phones(lab.net.phone, "nat_inbound", name, local_ip=address, local_port=SIM_PORT,
                      service=sim, calls=1000, **kwargs)

    return start


@pytest.fixture
def client_calls(lab, phones):
    """client_calls(name="trunk_uac.xml", flow="nat_inbound"): the client calls Sochi's DID
    through kuban-telecom."""

    def start(name: str = "trunk_uac.xml", flow: str = "nat_inbound", **kwargs) -> Sipp:
        return phones(lab.net.carrier, flow, name, local_ip=KUBAN,
                      keys={"called": SOCHI_DID, "caller": CLIENT}, **kwargs)

    return start


@pytest.fixture
def register(lab, phones):
    """register(sim, address): the SIM registers from address:SIM_PORT behind the NAT."""
    registered = []

    def do(sim: str, address: str = SIM_A, proxy_port: int = PROXY_PORT) -> None:
        phones(lab.net.phone, "register", "uac.xml", proxy_port=proxy_port,
               local_ip=address, local_port=SIM_PORT,
               service=sim, auth=(sim, demo_password(sim)),
               keys={"realm": lab.config.realm}, extra=("-aa",)).succeeded()
        registered.append(sim)

    yield do
    for sim in registered:
        try:
            lab.proxy.rpc("ul.rm", "location", "s:" + sim)
        except StackError:
            pass  # dropped by the keepalive already


@pytest.fixture
def wire(lab):
    """What the phones and the carriers receive, captured on their links for the test."""
    with lab.net.phone.entered():
        phone = Capture("phone0", received=True)
    with lab.net.carrier.entered():
        carrier = Capture("trunk0", received=True)
    yield Wire(phone, carrier)
    phone.close()
    carrier.close()


class Wire:
    def __init__(self, phone: Capture, carrier: Capture):
        self.captures = {"phone": phone, "carrier": carrier}
        self.got = {"phone": [], "carrier": []}

    def read(self) -> "Wire":
        for side, capture in self.captures.items():
            self.got[side] += capture.datagrams()
        return self

    def rtp(self, side: str) -> list[tuple[str, int]]:
        """Sources of the RTP packets (version 2, PCMA) that side received."""
        return [source for source, _, payload in self.got[side]
                if len(payload) > 12 and payload[0] >> 6 == 2 and payload[1] & 0x7F == 8]

    def sip(self, side: str) -> list[bytes]:
        return [payload for _, (_, port), payload in self.got[side]
                if re.match(rb"^(SIP/2\.0 \d{3} |[A-Z]+ \S+ SIP/2\.0\r\n)", payload)]


@pytest.fixture(autouse=True)
def nothing_left_behind(lab):
    """After every test: no media session held by rtpengine, no dialog held by Kamailio."""
    yield
    deadline = time.monotonic() + 5
    while (lab.sessions() or lab.open_dialogs()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert lab.sessions() == [], "rtpengine still holds a session"
    assert lab.open_dialogs() == 0, "Kamailio still holds a dialog"


def assert_topology_hidden(wire: Wire) -> None:
    """Neither side learns anything of the other: no address of the far side in any header
    or body either party received, SDP c=/o= only the proxy's media address on that side,
    ICE candidates removed, and audio only from the proxy."""
    for side, foreign, own_proxy in (("phone", CARRIER_SIDE, PROXY_SIM_SIDE),
                                     ("carrier", PHONE_SIDE, PROXY_CARRIER_SIDE)):
        messages = wire.sip(side)
        assert messages, f"the {side} received no SIP at all"
        for message in messages:
            text = message.decode(errors="replace")
            for address in foreign:
                assert address not in text, f"{address} reached the {side}:\n{text}"
            for line in re.findall(r"^[oc]=[^\r\n]*", text, re.M):
                assert line.endswith(f"IN IP4 {own_proxy}"), f"the {side} got {line!r}"
            assert "a=candidate" not in text, f"an ICE candidate reached the {side}:\n{text}"
        assert {address for address, _ in wire.rtp(side)} <= {own_proxy}


def assert_audio_both_ways(lab: Lab, wire: Wire, relayed_before: int) -> None:
    """Packets counted at the SIM, at the carrier and in rtpengine's statistics."""
    wire.read()
    at_phone, at_carrier = len(wire.rtp("phone")), len(wire.rtp("carrier"))
    # A few of the carrier's first packets may go before the SIM's own have shown rtpengine
    # where the NAT binding is (the SDP says only the SIM's private address).
    assert at_phone >= PACKETS * 0.8, f"the SIM heard {at_phone} of {PACKETS} packets"
    assert at_carrier >= PACKETS * 0.8, f"the carrier heard {at_carrier} of {PACKETS} packets"
    assert lab.relayed() - relayed_before >= at_phone + at_carrier


# -- registration and keepalives --------------------------------------------------------

def test_a_sim_behind_nat_is_registered_at_its_public_binding(lab, register):
    register(IVAN)
    found = lab.contact(IVAN)
    # the Contact says the private address; calls go where the REGISTER came from
    assert re.search(rf"Received: sip:{literal(NAT_PUBLIC)}:\d+", found), found
    assert SIM_A in found


def test_keepalives_hold_the_nat_binding_open_past_its_lifetime(
        lab, register, sim_answers, client_calls):
    lab.net.binding_lifetime(2)
    try:
        register(IVAN)
        sim = sim_answers(IVAN)
        time.sleep(5)  # the binding's lifetime has passed twice; only keepalives kept it
        client_calls().succeeded()
        sim.succeeded()
    finally:
        lab.net.binding_lifetime(30)


def test_without_keepalives_the_binding_expires_and_the_sim_is_unreachable(
        lab, register, sim_answers, client_calls):
    lab.net.binding_lifetime(2)
    lab.proxy.rpc("nathelper.enable_ping", "0")
    try:
        register(IVAN)
        sim = sim_answers(IVAN)
        time.sleep(5)
        assert lab.contact(IVAN), "still registered: only the NAT forgot the SIM"
        client_calls(flow="inbound_refused",
                     values={"CODE": "480", "REASON": "Temporarily Unavailable"}).succeeded()
        assert sim.process.poll() is None, "the INVITE reached the SIM through an expired binding"
        sim.stop()
    finally:
        lab.proxy.rpc("nathelper.enable_ping", "1")
        lab.net.binding_lifetime(30)


def test_a_sim_that_stops_answering_keepalives_is_dropped(
        lab, register, sim_answers, client_calls):
    register(IVAN, SIM_A)
    register(BORIS, SIM_B)
    start = time.monotonic()
    # Boris's phone keeps answering; Ivan's is gone (nothing listens on its port)
    boris = sim_answers(BORIS, SIM_B, timeout_s=60)
    # usrloc: a contact silent for keepalive_timeout is found by the next ping round (every
    # natping_s) and set to expire 10 s later (usrloc dlist.c)
    limit = KEEPALIVE_TIMEOUT_S + NATPING_S + 10 + 1
    while lab.contact(IVAN) and time.monotonic() - start < limit:
        time.sleep(0.2)
    dropped_after = time.monotonic() - start
    assert not lab.contact(IVAN), f"Ivan still registered after {dropped_after:.1f} s"
    assert lab.contact(BORIS), "Boris answers keepalives and must stay registered"
    print(f"silent SIM dropped after {dropped_after:.1f} s "
          f"(keepalive_timeout {KEEPALIVE_TIMEOUT_S} s, natping {NATPING_S} s)")
    # hunting goes straight to Boris: nothing waits on Ivan's timeout
    client_calls().succeeded()
    boris.succeeded()


# -- calls through the NAT, media anchored ------------------------------------------------

@pytest.mark.parametrize("hangs_up", ["client", "sim"])
def test_inbound_call_through_nat_talks_both_ways(
        lab, register, wire, sim_answers, client_calls, hangs_up):
    register(IVAN)
    relayed = lab.relayed()
    by_client = hangs_up == "client"
    sim = sim_answers(IVAN, name="sim_uas.xml" if by_client else "sim_uas_bye.xml",
                      checks=(Check("From", f'^ *"Sochi" <sip:{literal(CLIENT)}@'),))
    client = client_calls(name="trunk_uac.xml" if by_client else "trunk_uac_wait_bye.xml")
    client.succeeded()
    sim.succeeded()
    assert_audio_both_ways(lab, wire, relayed)
    assert_topology_hidden(wire)


def test_busy_first_sim_hunts_to_the_second_through_nat(
        lab, register, wire, sim_answers, client_calls):
    register(IVAN, SIM_A)
    register(BORIS, SIM_B)
    relayed = lab.relayed()
    ivan = sim_answers(IVAN, name="sim_uas_busy.xml")
    boris = sim_answers(BORIS, SIM_B)
    client_calls().succeeded()
    ivan.succeeded()
    boris.succeeded()
    assert_audio_both_ways(lab, wire, relayed)
    assert_topology_hidden(wire)


def test_outbound_from_nat_fails_over_and_holds_with_media_anchored(lab, register, phones, wire):
    register(IVAN)
    relayed = lab.relayed()
    failing = phones(lab.net.carrier, "trunk_failover", "trunk_uas.xml", local_ip=KUBAN,
                     local_port=5060)
    backup = phones(lab.net.carrier, "nat_outbound", "trunk_uas.xml", local_ip=SOUTH_LINK,
                    local_port=5060,
                    checks=(Check(None, f"^INVITE sip:89891234567@{literal(SOUTH_LINK)}"),
                            Check("From", f"<sip:{literal(SOCHI_DID)}@")))
    phones(lab.net.phone, "nat_outbound", "sim_uac.xml", local_ip=SIM_A, local_port=SIM_PORT,
           service=IVAN, auth=(IVAN, demo_password(IVAN)), extra=("-aa",),
           keys={"realm": lab.config.realm, "called": "89891234567"}).succeeded()
    failing.succeeded()
    backup.succeeded()
    assert_audio_both_ways(lab, wire, relayed)
    assert_topology_hidden(wire)


def test_sim_to_sim_behind_the_same_nat_meet_at_the_proxy(
        lab, register, phones, wire, sim_answers):
    register(IVAN, SIM_A)
    register(BORIS, SIM_B)
    boris = sim_answers(BORIS, SIM_B)
    phones(lab.net.phone, "nat_internal", "sim_uac.xml", local_ip=SIM_A,
           local_port=SIM_PORT, service=IVAN, auth=(IVAN, demo_password(IVAN)), extra=("-aa",),
           keys={"realm": lab.config.realm, "called": BORIS}).succeeded()
    boris.succeeded()
    wire.read()
    phone_rtp = wire.rtp("phone")
    assert len(phone_rtp) >= 2 * PACKETS * 0.8, f"{len(phone_rtp)} packets reached the SIMs"
    assert {address for address, _ in phone_rtp} == {PROXY_SIM_SIDE}
    for message in wire.sip("phone"):
        for line in re.findall(r"^[oc]=[^\r\n]*", message.decode(errors="replace"), re.M):
            assert line.endswith(f"IN IP4 {PROXY_SIM_SIDE}"), line


# -- the media relay's failures -----------------------------------------------------------

def test_media_that_stops_ends_the_call_on_both_sides(lab, register, sim_answers, client_calls):
    """Both sides fall silent (the audio file ends after 1 s): after the media timeout
    rtpengine asks Kamailio to end the dialog, and both get a BYE."""
    register(IVAN)
    sim = sim_answers(IVAN, timeout_s=30)
    started = time.monotonic()
    client_calls(name="trunk_uac_wait_bye.xml", timeout_s=30).succeeded(40)
    sim.succeeded()
    ended_after = time.monotonic() - started
    print(f"silent call ended after {ended_after:.1f} s (media timeout {MEDIA_TIMEOUT_S} s)")
    assert ended_after < 1 + MEDIA_TIMEOUT_S + 5


def test_relay_down_calls_connect_unanchored_counted_and_end_cleanly(
        lab, register, sim_answers, client_calls):
    register(IVAN)
    unanchored = lab.unanchored()
    # a call established with media, then the relay dies under it
    sim = sim_answers(IVAN)
    client = client_calls()
    deadline = time.monotonic() + 5
    while not lab.sessions() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lab.sessions(), "the call was never anchored"
    lab.media.stop()
    try:
        client.succeeded()  # the BYE still reaches the SIM and its 200 the client
        sim.succeeded()
        # a new call while the relay is down connects, unanchored and counted
        sim = sim_answers(IVAN)
        client_calls().succeeded()
        sim.succeeded()
        now = lab.unanchored()
        assert now > unanchored
        assert lab.open_dialogs() == 0
    finally:
        with lab.net.proxy.entered():
            lab.media.start()
        lab.proxy.rpc("rtpengine.enable", "all", "1")  # not wait rtpengine_disable_tout


def test_relay_down_with_the_refuse_policy_refuses_the_call_503(
        lab, register, sim_answers, client_calls):
    """PBX_MEDIA_DOWN=refuse: a second proxy in the lab whose relay never answers."""
    state = Path(lab.config.state_dir) / "refusing"
    config = replace(lab.config, sip_port=5070, media_down="refuse", media_ng_port=22299,
                     rpc_port=5091, metrics_port=9465,  # the lab proxy has 9464
                     natping_s=0, keepalive_timeout_s=0, state_dir=str(state))
    proxy = Kamailio(config, state / "kamailio", log_path=state / "kamailio.log")
    with lab.net.proxy.entered():
        proxy.start()
    try:
        register(IVAN, proxy_port=5070)
        sim = sim_answers(IVAN)
        client_calls(flow="inbound_refused", proxy_port=5070,
                     values={"CODE": "503", "REASON": "Media Relay Unavailable"}).succeeded()
        assert sim.process.poll() is None, "the SIM rang although the call was refused"
        sim.stop()
    finally:
        proxy.stop()
