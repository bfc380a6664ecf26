"""SIMs over TCP and TLS: the same refusals on every transport, SIPp over TLS (through
stunnel: Debian's SIPp has no TLS), and a call reaching a SIM on the TLS connection it
registered on, as a phone on mobile data keeps one open."""

from __future__ import annotations

import re
import socket
import subprocess
import time

import pytest

from harness import rawsip
from .conftest import SIM_IP, TRUNK_IP, TRUNK_PORT, demo_password
from harness.sipp import Check, literal

IVAN, BORIS = "+79181110003", "+79181110004"
CLIENT, SOCHI_NUMBER = "+79891234567", "+78622550101"
TRANSPORTS = ("udp", "tcp", "tls")


def port_of(stack, transport: str) -> int:
    return stack.config.tls_port if transport == "tls" else stack.config.sip_port


def phone(stack, transport: str, ip: str, port: int = 0) -> rawsip.Phone:
    return rawsip.Phone((ip, port), (stack.config.sip_addr, port_of(stack, transport)),
                        timeout=3.0, transport=transport)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_same_refusals_on_every_transport(stack, transport, silent):
    carriers = [silent(ip, TRUNK_PORT) for ip in (TRUNK_IP, "127.0.0.4", "127.0.0.5")]
    with phone(stack, transport, "127.0.0.21") as p:  # a stranger
        assert p.request("INVITE", IVAN, CLIENT)[0].startswith("SIP/2.0 407 ")
        # one wrong guess (the ban needs more), on the connection it came on
        assert p.request("INVITE", BORIS, CLIENT, password="wrong")[0] == "SIP/2.0 403 Forbidden"
    with phone(stack, transport, TRUNK_IP) as p:  # a carrier cannot transit through us
        status, _ = p.request("INVITE", CLIENT, CLIENT)
        assert status == "SIP/2.0 404 Number Dialed Incorrectly"
    stack.proxy.rpc("htable.delete", "authfail", "127.0.0.21")
    stack.proxy.rpc("htable.delete", "authfail", "u:" + BORIS)
    assert all(c.received() == [] for c in carriers)


def test_a_forbidden_destination_is_refused_over_tls_too(stack, silent):
    carriers = [silent(ip, TRUNK_PORT) for ip in (TRUNK_IP, "127.0.0.4", "127.0.0.5")]
    with phone(stack, "tls", SIM_IP) as p:
        status, _ = p.request("INVITE", BORIS, "+441234567890", password=demo_password(BORIS))
    assert status == "SIP/2.0 403 International Calls Disabled"
    assert all(c.received() == [] for c in carriers)


@pytest.fixture
def stunnel(stack, tmp_path):
    """A TLS client tunnel toward the proxy's TLS port: SIPp speaks TCP into it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = tmp_path / "stunnel.conf"
    conf.write_text(f"foreground = yes\npid =\nsyslog = no\n[sip]\nclient = yes\n"
                    f"accept = 127.0.0.1:{port}\n"
                    f"connect = {stack.config.sip_addr}:{stack.config.tls_port}\n"
                    f"verifyChain = no\n")
    process = subprocess.Popen(["stunnel4", str(conf)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:  # ready once it accepts
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError("stunnel did not start")
            time.sleep(0.02)
    yield port
    process.terminate()
    process.wait(5)


def test_sipp_registers_and_calls_out_over_tls(stack, sipp, stunnel):
    tunnel = f"127.0.0.1:{stunnel}"
    carrier = sipp("outbound_call", "trunk_uas.xml", local_ip=TRUNK_IP, local_port=TRUNK_PORT,
                   checks=(Check("From", f"<sip:{literal(SOCHI_NUMBER)}@"),)).start()
    for flow, name, keys in (("register", "uac.xml", {}),
                             ("outbound_call", "sim_uac.xml", {"called": "89891234567"})):
        far = sipp(flow, name, local_ip=SIM_IP, local_port=5311, service=BORIS,
                   auth=(BORIS, demo_password(BORIS)), keys={"realm": stack.config.realm, **keys},
                   transport="t1", remote_override=tunnel)
        far.run()
    carrier.succeeded()
    stack.proxy.rpc("ul.rm", "location", "s:" + BORIS)


def test_a_call_reaches_a_sim_on_the_tls_connection_it_registered_on(stack, sipp):
    with phone(stack, "tls", SIM_IP) as p:
        assert p.request("REGISTER", IVAN, password=demo_password(IVAN))[0] == "SIP/2.0 200 OK"
        try:
            caller = sipp("inbound_call", "trunk_uac.xml", local_ip=TRUNK_IP,
                          keys={"called": SOCHI_NUMBER, "caller": CLIENT}).start()
            invite = p.read()
            assert invite and invite.startswith("INVITE "), invite
            assert re.search(rf'^From: *"Sochi" <sip:{re.escape(CLIENT)}@', invite, re.M), invite
            p.answer(invite, "200 OK", "sim1")
            ack = p.read()
            assert ack and ack.startswith("ACK "), ack
            bye = p.read()
            assert bye and bye.startswith("BYE "), bye
            p.answer(bye, "200 OK", "sim1")
            caller.succeeded()
        finally:
            stack.proxy.rpc("ul.rm", "location", "s:" + IVAN)


def test_a_sim_that_cannot_be_reached_is_skipped_for_the_next(stack, sipp, register):
    """Ivan, first in line, registered on a TCP connection that is gone (a phone that lost
    its network): sending to him fails (tm's local 477), hunting goes on to Boris without
    waiting for Ivan's no-answer timer, and the client never hears a 477."""
    with phone(stack, "tcp", SIM_IP) as p:
        assert p.request("REGISTER", IVAN, password=demo_password(IVAN))[0] == "SIP/2.0 200 OK"
    offset = stack.log.stat().st_size
    try:
        register(BORIS, 5202)
        boris = sipp("inbound_call", "sim_uas.xml", local_ip=SIM_IP, local_port=5202).start()
        started = time.monotonic()
        sipp("inbound_call", "trunk_uac.xml", local_ip=TRUNK_IP,  # expects 180, 200: no 477
             keys={"called": SOCHI_NUMBER, "caller": CLIENT}).run()
        boris.succeeded()
        elapsed = time.monotonic() - started
    finally:
        stack.proxy.rpc("ul.rm", "location", "s:" + IVAN)
    log = stack.log.read_text(errors="replace")[offset:]
    failed = re.search(r"sending request on branch \d+ failed", log)
    assert failed, "Ivan was tried, and sending to him failed"
    assert f"ringing sim={BORIS}" in log[failed.end():], "then Boris rang"
    print(f"call answered by the second SIM {elapsed:.2f} s after the INVITE (talk included)")
