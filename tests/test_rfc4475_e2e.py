"""RFC 4475: the 49 SIP torture messages, byte-exact, replayed at a real Kamailio.

The proxy runs in a network namespace of the test's own (loopback, plus a veth pair that
every other destination routes to, so that whatever it would send anywhere is captured and
nothing leaves the machine). Each message is sent from a carrier's address and from a
stranger's; the expectation per message follows ../shared/rfc4475/INDEX.tsv, written as what
this proxy answers under its routing policy: "route normally" means the policy's answer (a
stranger is challenged, a carrier's call to a number that is not ours is 404), never 400 and
never silence. Where Kamailio's core parser drops a message and cannot be configured
otherwise, the expectation is silence, marked DEVIATION (README, Security): the test fails if
that behaviour changes, so the README is revisited.
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import replace
from pathlib import Path

import pytest

from kemi.config import ROOT
from kemi.stack import Kamailio

from harness.netns import Capture, Netns

# The 49 messages of RFC 4475 byte-exact (CRLF, NUL octets and all), with INDEX.tsv saying
# what a proxy should do with each; a copy of the workplace's ../shared/rfc4475/.
TORTURE = ROOT / "tests" / "rfc4475"
PROXY = ("127.0.0.1", 5070)
CARRIER, STRANGER = "127.0.0.2", "127.0.0.3"

POLICY_INVITE = {CARRIER: r"404 Number Dialed Incorrectly", STRANGER: r"407 "}
POLICY_OPTIONS = {CARRIER: r"200 OK", STRANGER: r"407 "}  # a carrier's OPTIONS is a keepalive
POLICY_REGISTER = {CARRIER: r"403 Carriers Do Not Register", STRANGER: r"401 "}
BOTH = lambda status: {CARRIER: status, STRANGER: status}  # noqa: E731
SILENT = {CARRIER: None, STRANGER: None}
DEVIATION = "DEVIATION: Kamailio's core parser drops it (no route runs, no reply possible)"

# file -> (what each source gets back: a status-line regex, or None for nothing), why
EXPECTED = {
    "3.1.1.1-wsinv.dat": (SILENT, DEVIATION + ": line folding inside CSeq"),
    "3.1.1.2-intmeth.dat": (SILENT, DEVIATION + ": unusual token characters in the method"),
    "3.1.1.3-esc01.dat": (POLICY_INVITE, "valid: routed by the policy"),
    "3.1.1.4-escnull.dat": (POLICY_REGISTER, "valid: a registration, authenticated first"),
    "3.1.1.5-esc02.dat": (SILENT, DEVIATION + ": a header name with % escapes"),
    "3.1.1.6-lwsdisp.dat": (POLICY_OPTIONS, "valid"),
    "3.1.1.7-longreq.dat": (POLICY_INVITE, "valid: long values accepted"),
    "3.1.1.8-dblreq.dat": (POLICY_REGISTER, "valid: the REGISTER handled, trailing octets ignored"),
    "3.1.1.9-semiuri.dat": (POLICY_OPTIONS, "valid"),
    "3.1.1.10-transports.dat": (POLICY_OPTIONS, "valid"),
    "3.1.1.11-mpart01.dat": ({CARRIER: r"405 Method Not Allowed", STRANGER: r"407 "},
                             "valid: a MESSAGE, which the policy does not route"),
    "3.1.1.12-unreason.dat": (SILENT, "a response matching no transaction: dropped"),
    "3.1.1.13-noreason.dat": (SILENT, "a response matching no transaction: dropped"),
    "3.1.2.1-badinv01.dat": (SILENT, DEVIATION + ": stray separators in Via (400 is due)"),
    "3.1.2.2-clerr.dat": (BOTH(r"400 Content-Length Larger Than Message"), "invalid: 400"),
    "3.1.2.3-ncl.dat": (SILENT, DEVIATION + ": negative Content-Length (an error reply is due)"),
    "3.1.2.4-scalar02.dat": (BOTH(r"400 CSeq number is illegal"), "invalid: 400"),
    "3.1.2.5-scalarlg.dat": (SILENT, "a response: dropped"),
    "3.1.2.6-quotbal.dat": (SILENT, DEVIATION + ": unterminated quote (400 is due)"),
    "3.1.2.7-ltgtruri.dat": (BOTH(r"400 "), "invalid: 400"),
    "3.1.2.8-lwsruri.dat": (SILENT, DEVIATION + ": LWS in the Request-URI (400 is due)"),
    "3.1.2.9-lwsstart.dat": (SILENT, DEVIATION + ": several SP in the request line (may reject)"),
    "3.1.2.10-trws.dat": (POLICY_OPTIONS, "accepted; nothing is forwarded"),
    "3.1.2.11-escruri.dat": (POLICY_INVITE, "accepted; the R-URI is never forwarded as is"),
    "3.1.2.12-baddate.dat": (POLICY_INVITE, "Date does not matter to routing"),
    "3.1.2.13-regbadct.dat": (POLICY_REGISTER, "liberal: brackets inferred"),
    "3.1.2.14-badaspec.dat": (POLICY_OPTIONS, "must not break: liberal"),
    "3.1.2.15-baddn.dat": (POLICY_OPTIONS, "liberal, and the error is never propagated"),
    "3.1.2.16-badvers.dat": (SILENT, DEVIATION + ": SIP/7.0 (505 is due)"),
    "3.1.2.17-mismatch01.dat": (BOTH(r"400 CSeq method does not match"), "invalid: 400"),
    "3.1.2.18-mismatch02.dat": (BOTH(r"400 CSeq method does not match"), "invalid: 400 acceptable"),
    "3.1.2.19-bigcode.dat": (SILENT, "a response: dropped"),
    "3.2.1-badbranch.dat": (POLICY_OPTIONS, "must not break"),
    "3.3.1-insuf.dat": (SILENT, "must not break (no Call-ID, From, To: nothing to answer to)"),
    "3.3.2-unkscm.dat": (BOTH(r"416 Unsupported URI Scheme"), "valid: 416"),
    "3.3.3-novelsc.dat": (BOTH(r"416 Unsupported URI Scheme"), "valid: 416"),
    "3.3.4-unksm2.dat": (BOTH(r"400 Invalid From Header"), "we are the registrar: 400"),
    "3.3.5-bext01.dat": (BOTH(r"420 "), "valid: 420 with Unsupported"),
    "3.3.6-invut.dat": (POLICY_INVITE, "valid"),
    "3.3.7-regaut01.dat": (POLICY_REGISTER, "valid: challenged with a scheme we know"),
    "3.3.8-multi01.dat": (SILENT, DEVIATION + ": several Call-ID, To, From (400 is due)"),
    "3.3.9-mcl01.dat": (SILENT, DEVIATION + ": two Content-Length values (an error is due)"),
    "3.3.10-bcast.dat": (SILENT, "a response toward a broadcast Via: dropped, never sent on"),
    "3.3.11-zeromf.dat": (BOTH(r"483 Too Many Hops"), "valid: 483"),
    "3.3.12-cparam01.dat": (POLICY_REGISTER, "valid: a registration, authenticated first"),
    "3.3.13-cparam02.dat": (POLICY_REGISTER, "valid: a registration, authenticated first"),
    "3.3.14-regescrt.dat": (POLICY_REGISTER, "valid: a registration, authenticated first"),
    "3.3.15-sdp01.dat": (POLICY_INVITE, "no proxy-specific rule: routed by the policy"),
    "3.4.1-inv2543.dat": (POLICY_INVITE, "RFC 2543 syntax accepted"),
}


def _call_id(message: bytes) -> str | None:
    found = re.search(rb"^(?:Call-ID|i)\s*:\s*(\S+)", message, re.M | re.I)
    return found.group(1).decode(errors="replace") if found else None


@pytest.fixture(scope="module")
def torture_proxy(stack):
    """A second Kamailio on the session's database, alone in a network namespace."""
    ns = Netns("pbx4475").create()
    ns.ip("link", "add", "out0", "type", "veth", "peer", "name", "out1")
    for link in ("out0", "out1"):
        ns.ip("link", "set", link, "up")
    ns.ip("addr", "add", "198.51.100.1/24", "dev", "out0")
    ns.ip("route", "add", "default", "dev", "out0")
    state = Path(stack.config.state_dir) / "rfc4475"
    config = replace(stack.config, sip_addr=PROXY[0], sip_port=PROXY[1], dsn=stack.dsn)
    proxy = Kamailio(config, state / "kamailio", log_path=state / "kamailio.log")
    try:
        with ns.entered():  # the proxy, the capture and the senders all inside
            proxy.start()
            captures = [Capture("lo"), Capture("out0")]
            try:
                # The change watcher publishes the trunks within 100 ms; until then a
                # carrier's requests are decided by Python alone, with the same answers.
                results = replay_all(captures)
                results["core stats"] = proxy.rpc("stats.get_statistics", "core:")
            finally:
                for capture in captures:
                    capture.close()
        yield results
    finally:
        proxy.stop()
        ns.delete()


def replay_all(captures) -> dict:
    """file -> source -> every datagram the proxy sent for that message, as
    (destination, payload)."""
    sent_by_proxy = {}
    messages = sorted(TORTURE.glob("*.dat"))
    for source in (CARRIER, STRANGER):
        by_call_id = {}
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((source, 5099))
            for path in messages:
                data = path.read_bytes()
                by_call_id[_call_id(data)] = path.name
                sock.sendto(data, PROXY)
        answered = {name for name, (expect, _) in EXPECTED.items() if expect[source]}
        seen: dict[str, list] = {}
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:  # until every expected answer came (or 5 s)
            for capture in captures:
                for src, dst, payload in capture.datagrams():
                    if src[1] != PROXY[1]:
                        continue
                    name = by_call_id.get(_call_id(payload), "(unattributed)")
                    seen.setdefault(name, []).append((dst, payload))
            if answered <= set(seen):
                break
            time.sleep(0.05)
        time.sleep(0.3)  # then a moment for anything the silent ones might still cause
        for capture in captures:
            for src, dst, payload in capture.datagrams():
                if src[1] == PROXY[1]:
                    name = by_call_id.get(_call_id(payload), "(unattributed)")
                    seen.setdefault(name, []).append((dst, payload))
        for name in [p.name for p in messages] + ["(unattributed)"]:
            sent_by_proxy.setdefault(name, {})[source] = seen.get(name, [])
    return sent_by_proxy


def test_every_torture_message_has_an_expectation():
    assert sorted(EXPECTED) == sorted(p.name for p in TORTURE.glob("*.dat"))
    index = (TORTURE / "INDEX.tsv").read_text().splitlines()[1:]
    assert sorted(line.split("\t")[0] for line in index) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("source", [CARRIER, STRANGER], ids=["from a carrier", "from a stranger"])
def test_torture_message(torture_proxy, name, source):
    expect, why = EXPECTED[name]
    datagrams = torture_proxy[name][source]
    # Nothing ever goes anywhere but back to the sender: no forwarding, no broadcast.
    assert all(dst[0] == source for dst, _ in datagrams), (why, [d for d, _ in datagrams])
    statuses = [p.split(b"\r\n", 1)[0].decode(errors="replace") for _, p in datagrams]
    if expect[source] is None:
        assert statuses == [], (why, statuses)
        return
    finals = [s for s in statuses if re.match(r"SIP/2\.0 [2-6]", s)]
    assert len(finals) == 1 and re.match(rf"SIP/2\.0 {expect[source]}", finals[0]), (why, statuses)


def test_an_unsupported_proxy_require_is_named_in_unsupported(torture_proxy):
    for source in (CARRIER, STRANGER):
        (_, reply), = torture_proxy["3.3.5-bext01.dat"][source]
        unsupported = re.search(rb"^Unsupported:\s*(.*)$", reply, re.M | re.I)
        assert unsupported and b"noProxiesSupportThis" in unsupported.group(1), reply


def test_nothing_is_sent_that_belongs_to_no_message(torture_proxy):
    assert torture_proxy["(unattributed)"] == {CARRIER: [], STRANGER: []}


def test_no_response_was_forwarded_not_even_attempted(torture_proxy):
    """The responses (3.1.1.12, 3.1.1.13, 3.1.2.5, 3.1.2.19, 3.3.10 toward 255.255.255.255)
    match no transaction: dropped before any send is tried (the kernel would refuse a
    broadcast, so no capture could tell)."""
    stats = dict(re.findall(r"core:(\w+)\s*=\s*(\d+)", torture_proxy["core stats"]))
    assert stats["fwd_replies"] == "0", torture_proxy["core stats"]
    assert int(stats["rcv_replies"]) >= 2 * 4, torture_proxy["core stats"]  # each round
