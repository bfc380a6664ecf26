"""Abuse end to end: password guessing, floods, stray replies, registrations that point
elsewhere, oversize fields; each refused by the real Kamailio as README "Security" says."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import uuid

import pytest

from dataclasses import replace

from kemi.config import ROOT
from kemi.stack import Kamailio, free_port

from harness import rawsip
from .conftest import (NATIONAL_TRUNK_IP, SIM_IP, TRUNK_IP, TRUNK_PORT, demo_password)
from harness.sipp import Check, literal

IVAN, BORIS, DENIS_SPARE = "+79181110003", "+79181110004", "+79181110011"
INACTIVE_SIM = "+79181110009"
CLIENT = "+79891234567"
SOCHI_NUMBER = "+78622550101"


@pytest.fixture
def forget(stack):
    """forget(table, key): drop a ban, a lock or a failure count when the test ends, so
    that no other test inherits it."""
    keys: list[tuple[str, str]] = []
    yield lambda table, key: keys.append((table, key))
    for table, key in keys:
        try:
            stack.proxy.rpc("htable.delete", table, "s:" + key)  # s: a string, even "+7918..."
        except Exception:
            pass  # already expired or never set


def phone(stack, ip: str, port: int = 5990, timeout: float = 1.0) -> rawsip.Phone:
    return rawsip.Phone((ip, port), (stack.config.sip_addr, stack.config.sip_port), timeout)


def log_since(stack, offset: int) -> str:
    with open(stack.log, errors="replace") as log:
        log.seek(offset)
        return log.read()


def logged(stack, offset: int, pattern: str, timeout: float = 2.0) -> re.Match | None:
    """The first line after offset matching pattern; waits for it, since a line may be
    written just after the reply that prompted it was sent."""
    deadline = time.monotonic() + timeout
    while True:
        found = re.search(pattern, log_since(stack, offset))
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def banned(stack) -> str:
    return stack.proxy.rpc("htable.dump", "ipban")


# -- password guessing -------------------------------------------------------------------

def test_a_nonce_answers_one_guess_only(stack, forget):
    """one_time_nonce: a second guess with the same nonce is not even checked (a fresh
    challenge), so each guess costs the guesser a round trip."""
    attacker = "127.0.0.11"
    forget("authfail", attacker)
    forget("authfail", "u:" + DENIS_SPARE)
    with phone(stack, attacker) as p:
        status, challenge = p.request("REGISTER", DENIS_SPARE)
        assert status.startswith("SIP/2.0 401 ")
        nonce_header = rawsip.header(challenge, "WWW-Authenticate")
        ruri = f"sip:{stack.remote}"
        statuses = []
        for guess in ("wrong-1", "wrong-2"):
            creds = rawsip.digest(nonce_header, "REGISTER", ruri, DENIS_SPARE, guess)
            msg = rawsip.build("REGISTER", ruri, p.source, from_uri=f"sip:{DENIS_SPARE}@pbx.local",
                               to_uri=f"sip:{DENIS_SPARE}@pbx.local",
                               headers=(f"Authorization: {creds}", "Expires: 600"))
            statuses.append(p.send(msg).split("\r\n", 1)[0])
    assert statuses[0] == "SIP/2.0 403 Forbidden"
    assert statuses[1].startswith("SIP/2.0 401 "), statuses  # the nonce is spent


def test_a_guesser_is_banned_after_the_allowed_failures(stack, forget):
    attacker = "127.0.0.12"
    for table, key in (("ipban", attacker), ("authfail", attacker),
                       ("authfail", "u:" + DENIS_SPARE)):
        forget(table, key)
    offset = stack.log.stat().st_size
    limit = stack.config.auth_failures
    answers = []
    with phone(stack, attacker) as p:
        for i in range(limit + 2):
            answers.append(p.request("REGISTER", DENIS_SPARE, password=f"guess-{i}")[0])
    assert answers[:limit] == ["SIP/2.0 403 Forbidden"] * limit
    assert answers[limit:] == [None, None]  # banned: dropped unanswered
    assert attacker in banned(stack)
    assert logged(stack, offset, rf"banned source={re.escape(attacker)} reason=password-guessing "
                                 rf"failures={limit} for={stack.config.ban_s} s")
    # A banned source gets nothing at all, not even a challenge, for any request.
    with phone(stack, attacker, 5991) as p:
        assert p.request("INVITE", DENIS_SPARE, CLIENT)[0] is None
    # Its SIM, from its own address, is not affected.
    with phone(stack, SIM_IP, 5992) as p:
        assert p.request("REGISTER", DENIS_SPARE, password=demo_password(DENIS_SPARE))[0] \
            == "SIP/2.0 200 OK"


def test_a_username_guessed_from_many_sources_answers_only_sources_it_knew(stack, forget):
    """Past user_failures failures for one SIM, from sources each under the per-source
    limit, the SIM is locked against every source it never authenticated from; its own
    phone, which authenticated before, keeps working."""
    own_phone = (SIM_IP, 5993)
    for table, key in (("userlock", DENIS_SPARE), ("authfail", "u:" + DENIS_SPARE),
                       ("authok", f"{SIM_IP}::{DENIS_SPARE}")):
        forget(table, key)
    with rawsip.Phone(own_phone, (stack.config.sip_addr, stack.config.sip_port)) as p:
        assert p.request("REGISTER", DENIS_SPARE, password=demo_password(DENIS_SPARE))[0] \
            == "SIP/2.0 200 OK"
    offset = stack.log.stat().st_size
    sources = [f"127.0.1.{i}" for i in range(1, stack.config.user_failures + 1)]
    for source in sources:
        forget("authfail", source)
        with phone(stack, source) as p:
            assert p.request("REGISTER", DENIS_SPARE, password="not-it")[0] == "SIP/2.0 403 Forbidden"
    assert DENIS_SPARE in stack.proxy.rpc("htable.dump", "userlock")
    assert logged(stack, offset, rf"locked user={re.escape(DENIS_SPARE)} ")
    # The right password from a new source is refused like a wrong one...
    forget("authfail", "127.0.1.200")
    with phone(stack, "127.0.1.200") as p:
        assert p.request("REGISTER", DENIS_SPARE, password=demo_password(DENIS_SPARE))[0] \
            == "SIP/2.0 403 Forbidden"
    # ...while the SIM's own phone still registers.
    with rawsip.Phone(own_phone, (stack.config.sip_addr, stack.config.sip_port)) as p:
        assert p.request("REGISTER", DENIS_SPARE, password=demo_password(DENIS_SPARE))[0] \
            == "SIP/2.0 200 OK"


def test_an_inactive_sim_is_not_revealed_before_its_digest_verifies(stack, forget):
    forget("authfail", "127.0.0.13")
    forget("authfail", "u:" + INACTIVE_SIM)
    with phone(stack, "127.0.0.13") as p:
        assert p.request("INVITE", INACTIVE_SIM, CLIENT, password="wrong")[0] == "SIP/2.0 403 Forbidden"
        assert p.request("INVITE", INACTIVE_SIM, CLIENT, password=demo_password(INACTIVE_SIM))[0] \
            == "SIP/2.0 403 SIM Inactive"


# -- floods --------------------------------------------------------------------------------

def test_a_flood_from_one_source_is_banned_while_sims_keep_calling(stack, sipp, forget, silent):
    flooder = "127.0.0.14"
    forget("ipban", flooder)
    offset = stack.log.stat().st_size
    carrier = sipp("outbound_call", "trunk_uas.xml", local_ip=TRUNK_IP, local_port=TRUNK_PORT,
                   calls=40).start()
    calls = sipp("outbound_call", "sim_uac.xml", local_ip=SIM_IP, local_port=5301, service=IVAN,
                 auth=(IVAN, demo_password(IVAN)), calls=40, rate=20,
                 keys={"realm": stack.config.realm, "called": "89891234567"}).start()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((flooder, 5994))
        sock.setblocking(False)
        target = (stack.config.sip_addr, stack.config.sip_port)
        sent = 0
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:  # as fast as one Python process sends
            sock.sendto(rawsip.build("INVITE", f"sip:{CLIENT}@{stack.remote}", (flooder, 5994),
                                     from_uri=f"sip:{IVAN}@pbx.local",
                                     to_uri=f"sip:{CLIENT}@pbx.local").encode(), target)
            sent += 1
            try:
                while sock.recv(65535):
                    pass
            except BlockingIOError:
                pass
    assert sent > 3 * stack.config.flood_reqs, sent  # a flood, by the limit's measure
    calls.succeeded(60)
    carrier.succeeded(60)
    assert flooder in banned(stack)
    assert logged(stack, offset, rf"banned source={re.escape(flooder)} reason=flood")


def test_a_trunk_at_a_high_rate_is_never_banned(stack, sipp, register):
    """Carriers send bursts far above a single phone's rate: they are exempt from pike."""
    register(IVAN, 5203)
    calls = 450  # 3 requests each: INVITE, ACK, BYE, at 150 calls/s
    answering = sipp("trunk_burst", "sim_uas.xml", local_ip=SIM_IP, local_port=5203,
                     calls=calls).start()
    sipp("inbound_call", "trunk_uac.xml", local_ip=TRUNK_IP, calls=calls, rate=150,
         keys={"called": SOCHI_NUMBER, "caller": CLIENT}).run(60)
    answering.succeeded(60)
    assert 3 * calls > stack.config.flood_reqs  # the rate would ban any other source
    assert TRUNK_IP not in banned(stack)


# -- stray replies and registrations -----------------------------------------------------

def test_a_reply_matching_no_transaction_is_not_forwarded(stack, silent):
    carrier = silent(NATIONAL_TRUNK_IP, TRUNK_PORT)
    branch = "z9hG4bK" + uuid.uuid4().hex[:16]
    reply = "\r\n".join([
        "SIP/2.0 200 OK",
        f"Via: SIP/2.0/UDP {stack.remote};branch={branch}",
        f"Via: SIP/2.0/UDP {NATIONAL_TRUNK_IP}:{TRUNK_PORT};branch=z9hG4bK{uuid.uuid4().hex[:8]}",
        f"From: <sip:{CLIENT}@x>;tag=1", f"To: <sip:{CLIENT}@x>;tag=2",
        f"Call-ID: {uuid.uuid4().hex}", "CSeq: 1 INVITE", "Content-Length: 0", "", ""])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.15", 5995))
        sock.sendto(reply.encode(), (stack.config.sip_addr, stack.config.sip_port))
    # What the proxy would do with it, it does at once: an OPTIONS answered after it
    # shows the reply was processed (UDP from one socket is read in order by the kernel).
    assert rawsip.exchange(rawsip.build("OPTIONS", f"sip:{stack.remote}", ("127.0.0.15", 5995),
                                        from_uri="sip:probe@x", to_uri=f"sip:{stack.remote}"),
                           ("127.0.0.15", 5995), (stack.config.sip_addr, stack.config.sip_port)) \
        == "SIP/2.0 200 OK"
    time.sleep(0.2)
    assert carrier.received() == []


def test_a_carrier_does_not_register(stack):
    with phone(stack, TRUNK_IP) as p:
        assert p.request("REGISTER", IVAN)[0] == "SIP/2.0 403 Carriers Do Not Register"


def test_a_registration_is_bound_to_its_source_not_to_the_contact_it_names(
        stack, sipp, silent):
    """A SIM registering a carrier's address as its Contact: a call to it still goes to
    where the SIM registered from, and the carrier receives nothing."""
    sim_port = 5204
    with rawsip.Phone((SIM_IP, sim_port), (stack.config.sip_addr, stack.config.sip_port)) as p:
        status, _ = p.request("REGISTER", IVAN, password=demo_password(IVAN),
                              contact=f"<sip:+441234567890@{NATIONAL_TRUNK_IP}:{TRUNK_PORT}>")
    assert status == "SIP/2.0 200 OK"
    try:
        carrier = silent(NATIONAL_TRUNK_IP, TRUNK_PORT)
        answering = sipp("inbound_call", "sim_uas.xml", local_ip=SIM_IP, local_port=sim_port,
                         checks=(Check("From", f'"Sochi" <sip:{literal(CLIENT)}@'),)).start()
        sipp("inbound_call", "trunk_uac.xml", local_ip=TRUNK_IP,
             keys={"called": SOCHI_NUMBER, "caller": CLIENT}).run()
        answering.succeeded()
        assert carrier.received() == []
    finally:
        stack.proxy.rpc("ul.rm", "location", "s:" + IVAN)


def test_a_call_to_a_sim_is_never_relayed_to_a_carriers_address(stack, sipp, silent, dba):
    """A SIM registered from an address that later became a trunk's: its branch is dropped
    and hunting goes on; nothing reaches that address."""
    address, sim_port = "127.0.0.16", 5205
    with rawsip.Phone((address, sim_port), (stack.config.sip_addr, stack.config.sip_port)) as p:
        assert p.request("REGISTER", IVAN, password=demo_password(IVAN))[0] == "SIP/2.0 200 OK"
    try:
        dba(f"UPDATE trunk SET sources = sources || '{address}/32'::cidr WHERE name = 'west-line'",
            "UPDATE trunk SET sources = '{127.0.0.5/32}' WHERE name = 'west-line'")
        time.sleep(1.0)  # the change watcher publishes trunk networks within a second
        watched = silent(address, sim_port)
        status = rawsip.exchange(
            rawsip.build("INVITE", f"sip:{SOCHI_NUMBER}@{stack.remote}", (TRUNK_IP, 5996),
                         from_uri=f"sip:{CLIENT}@{TRUNK_IP}", to_uri=f"sip:{SOCHI_NUMBER}@x"),
            (TRUNK_IP, 5996), (stack.config.sip_addr, stack.config.sip_port))
        assert status == "SIP/2.0 480 Temporarily Unavailable"
        assert watched.received() == []
    finally:
        stack.proxy.rpc("ul.rm", "location", "s:" + IVAN)


# -- oversize fields and logging -----------------------------------------------------------

@pytest.mark.parametrize("where, expect, source_ip", [
    ("from", "SIP/2.0 400 From Too Long", "127.0.0.17"),
    ("ruri", "SIP/2.0 414 Request-URI Too Long", "127.0.0.20")])
def test_oversize_fields_are_refused_before_python_and_logged(stack, where, expect, source_ip):
    source = (source_ip, 5997)
    long_user = "9" * 8200
    offset = stack.log.stat().st_size
    ruri = f"sip:{long_user if where == 'ruri' else CLIENT}@{stack.remote}"
    from_uri = f"sip:{long_user if where == 'from' else IVAN}@pbx.local"
    message = rawsip.build("INVITE", ruri, source, from_uri=from_uri, to_uri=f"sip:{CLIENT}@x")
    assert rawsip.exchange(message, source, (stack.config.sip_addr, stack.config.sip_port)) == expect
    code = expect.split(" ")[1]
    assert logged(stack, offset, rf"refused source={re.escape(source_ip)} .* code={code} ")


def test_malformed_requests_are_logged(stack):
    source = ("127.0.0.18", 5998)
    offset = stack.log.stat().st_size
    message = rawsip.build("OPTIONS", f"sip:{CLIENT}@{stack.remote}", source,
                           from_uri="sip:a@x", to_uri="sip:b@x", cseq="8 INVITE")
    assert rawsip.exchange(message, source, (stack.config.sip_addr, stack.config.sip_port)) \
        .startswith("SIP/2.0 400 ")
    assert logged(stack, offset, r'refused source=127\.0\.0\.18 method=OPTIONS .* code=400 '
                                 r'reason="malformed request"')


def test_the_refusal_log_counts_the_lines_it_suppressed(stack):
    """One line per source per second; the next line says how many were left out, so
    "1 line per second" still tells a log reader how many refusals there were."""
    source = ("127.0.0.19", 5999)
    offset = stack.log.stat().st_size
    refusals = 30

    def refuse():
        return rawsip.exchange(
            rawsip.build("INVITE", f"sip:{CLIENT}@{stack.remote}", source,
                         from_uri=f"sip:{CLIENT}@x", to_uri=f"sip:{CLIENT}@x", to_tag="forged",
                         headers=(f"Route: <sip:{stack.remote};lr>",)),
            source, (stack.config.sip_addr, stack.config.sip_port))

    for _ in range(refusals):
        assert refuse().startswith("SIP/2.0 481 ")
    second = int(time.time())
    while int(time.time()) == second:  # the next refusal falls in a later second
        time.sleep(0.05)
    assert refuse().startswith("SIP/2.0 481 ")
    pattern = r"refused source=127\.0\.0\.19 .* suppressed=(\d+)"
    for _ in range(50):  # the last line may come just after its reply
        lines = re.findall(pattern, log_since(stack, offset))
        if len(lines) + sum(map(int, lines)) == refusals + 1:
            break
        time.sleep(0.02)
    assert len(lines) + sum(map(int, lines)) == refusals + 1, lines


FILTER = ROOT / "docker" / "fail2ban" / "filter.d" / "cloud-pbx.conf"


def fail2ban_sources(log, mode: str) -> list[str]:
    """The sources Debian's fail2ban-regex finds in log with our filter, in order."""
    done = subprocess.run(["fail2ban-regex", "-o", "ip", str(log), f"{FILTER}[mode={mode}]"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.fixture(scope="module")
def json_stack(stack, tmp_path_factory):
    """A second proxy on the session's database logging as the Docker deployment does
    (PBX_LOG_FORMAT=json), for what fail2ban reads."""
    folder = tmp_path_factory.mktemp("json-log")
    config = replace(stack.config, sip_port=free_port(), tls_port=0, media="off",
                     rpc_port=free_port(), metrics_port=free_port(), state_dir=str(folder),
                     dsn=stack.dsn, log_format="json")
    proxy = Kamailio(config, folder / "kamailio", log_path=folder / "kamailio.log")
    try:
        proxy.start()
        json_stack = replace(stack, config=config, proxy=proxy, log=folder / "kamailio.log",
                             media=None)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # ready when its change watcher knows the trunks
            if not carrier_calls_elsewhere(json_stack).startswith("SIP/2.0 407 "):
                break
            time.sleep(0.05)
        yield json_stack
    finally:
        proxy.stop()


def carrier_calls_elsewhere(stack) -> str:
    """A carrier's call to a number that is not ours: the final reply."""
    carrier = (TRUNK_IP, 5996)
    return rawsip.final_reply(
        rawsip.build("INVITE", f"sip:+78620000000@{stack.remote}", carrier,
                     from_uri=f"sip:{CLIENT}@{TRUNK_IP}", to_uri=f"sip:+78620000000@{stack.remote}"),
        carrier, (stack.config.sip_addr, stack.config.sip_port))


def verdicts(log_text: str) -> list[tuple[str, str, str]]:
    """(module, verdict, source) of each refused or banned line of a JSON log: parsed as
    JSON, not with the filter's regex."""
    found = []
    for line in log_text.splitlines():
        if not line.startswith("{"):  # the core's startup banner ("Listening on ...") only
            assert "source=" not in line, line
            continue
        entry = json.loads(line)
        verdict = re.match(r"(refused|banned) source=(\S+) ", entry["message"])
        if verdict:
            found.append((entry["module"], verdict[1], verdict[2]))
    return found


def as_dockerd_writes(text: str) -> str:
    return "".join(json.dumps({"log": line + "\n", "stream": "stderr",
                               "time": "2026-12-02T10:00:00.000000000Z"},
                              separators=(",", ":")) + "\n" for line in text.splitlines())


def test_fail2ban_matches_every_refusal_line_and_nothing_else(json_stack):
    """docker/fail2ban's filter over a JSON-logging proxy's whole log, as a file and as
    Docker's json-file log: it finds the source of every refused and banned line the proxy
    wrote, from kamailio.cfg (xlog) and from Python (KSR.notice), and of nothing else."""
    stack = json_stack
    attacker = "127.0.0.22"
    with phone(stack, attacker) as p:  # a ban: password guessing
        for i in range(stack.config.auth_failures):
            p.request("REGISTER", DENIS_SPARE, password=f"guess-{i}")
    proxy = (stack.config.sip_addr, stack.config.sip_port)
    stranger = ("127.0.0.23", 5999)  # kamailio.cfg refuses: a forged in-dialog request
    reply = rawsip.exchange(
        rawsip.build("INVITE", f"sip:{CLIENT}@{stack.remote}", stranger,
                     from_uri=f"sip:{CLIENT}@x", to_uri=f"sip:{CLIENT}@x", to_tag="forged",
                     headers=(f"Route: <sip:{stack.remote};lr>",)),
        stranger, proxy)
    assert reply.startswith("SIP/2.0 481 "), reply
    reply = carrier_calls_elsewhere(stack)  # Python refuses: a number that is not ours
    assert reply.startswith("SIP/2.0 404 "), reply
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:  # unparsable: dropped
        sock.bind(("127.0.0.24", 5999))
        sock.sendto((ROOT / "tests" / "rfc4475" / "3.1.2.6-quotbal.dat").read_bytes(), proxy)
    assert logged(stack, 0, rf"banned source={re.escape(attacker)} ")
    assert logged(stack, 0, r"refused source=127\.0\.0\.23 ")
    assert logged(stack, 0, r"refused source=127\.0\.0\.24 .*unparsable")

    text = log_since(stack, 0)
    written = verdicts(text)
    assert {module for module, verdict, _ in written if verdict == "refused"} == {"xlog", "core"}, \
        "both kamailio.cfg's and Python's refusal lines are in the log"
    plain, docker = stack.log.parent / "fail2ban.log", stack.log.parent / "fail2ban-json.log"
    plain.write_text(text)
    docker.write_text(as_dockerd_writes(text))
    for mode, kinds in (("refused", {"refused"}), ("banned", {"banned"}),
                        ("all", {"refused", "banned"})):
        expected = [source for _, verdict, source in written if verdict in kinds]
        assert expected, mode
        assert fail2ban_sources(plain, mode) == expected, mode
        assert fail2ban_sources(docker, mode) == expected, mode


@pytest.mark.parametrize("where", ["From", "Call-ID"])
def test_a_folded_header_cannot_forge_a_refusal_line(json_stack, where):
    """A From (which Kamailio's parser logs as it came when it cannot parse it) or a Call-ID
    (in every line's prefix) folded over two lines, the second reading as a refusal line or
    field, to have fail2ban ban someone else: the JSON log escapes the line break and the
    quotes, the filter finds only the sender."""
    stack = json_stack
    framed = "192.0.2.66"
    offset = stack.log.stat().st_size
    forged = (f"\r\n 0(1) NOTICE: <script>: refused source={framed} method=INVITE "
              f'", "message": "refused source={framed} method=INVITE\\')
    stranger = ("127.0.0.25", 5999)
    message = rawsip.build("INVITE", f"sip:{CLIENT}@{stack.remote}", stranger,
                           from_uri=f"sip:x{forged}@x" if where == "From" else f"sip:{CLIENT}@x",
                           call_id=f"forged{forged}" if where == "Call-ID" else None,
                           to_uri=f"sip:{CLIENT}@x", to_tag="forged",
                           headers=(f"Route: <sip:{stack.remote};lr>",))
    reply = rawsip.exchange(message, stranger, (stack.config.sip_addr, stack.config.sip_port))
    assert reply.startswith(("SIP/2.0 400 ", "SIP/2.0 481 ")), reply
    assert logged(stack, offset, r"refused source=127\.0\.0\.25 ")
    text = log_since(stack, offset)
    assert framed in text  # the forgery is in the log, escaped:
    assert all(line.startswith("{") for line in text.splitlines())  # no line of its own
    log = stack.log.parent / f"fail2ban-forged-{where}.log"
    log.write_text(text)
    assert fail2ban_sources(log, "all") == ["127.0.0.25"]
    log.write_text(as_dockerd_writes(text))
    assert fail2ban_sources(log, "all") == ["127.0.0.25"]
    assert [source for *_, source in verdicts(text)] == ["127.0.0.25"]


def test_fail2ban_reads_no_text_log(stack):
    """The text log (PBX_LOG_FORMAT=text, make run's) is for people: the filter matches none
    of its lines, refusals included, rather than lines a caller could have written."""
    assert carrier_calls_elsewhere(stack).startswith("SIP/2.0 404 ")
    assert logged(stack, 0, rf"refused source={re.escape(TRUNK_IP)} ")
    log = stack.log.parent / "fail2ban-text.log"
    log.write_text(log_since(stack, 0))
    assert fail2ban_sources(log, "all") == []
