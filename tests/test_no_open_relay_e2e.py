"""Nothing reaches a carrier unless an authenticated, active SIM asked: forgeries end to end."""

from __future__ import annotations

import re

import pytest

from harness import rawsip
from .conftest import (NATIONAL_TRUNK_IP, SIM_IP, STRICT_TRUNK_IP, TRUNK_IP, TRUNK_PORT,
                       UNTRUSTED_IP, demo_password)

CLIENT, IVAN = "+79891234567", "+79181110003"
KUBAN_URI = f"sip:{CLIENT}@{TRUNK_IP}:{TRUNK_PORT}"  # an R-URI pointing straight at a carrier


@pytest.fixture
def carriers(silent):
    return [silent(ip, TRUNK_PORT) for ip in (TRUNK_IP, NATIONAL_TRUNK_IP, STRICT_TRUNK_IP)]


def send(stack, method, ruri, source_ip=UNTRUSTED_IP, **kw):
    source = (source_ip, 5998)
    message = rawsip.build(method, ruri, source, from_uri=kw.pop("from_uri", f"sip:{IVAN}@pbx.local"),
                           to_uri=kw.pop("to_uri", f"sip:{CLIENT}@pbx.local"), **kw)
    return rawsip.exchange(message, source, (stack.config.sip_addr, stack.config.sip_port))


FORGERIES = {
    "forged From and PAI of a SIM": dict(
        method="INVITE", ruri="sip:{client}@{proxy}",
        headers=(f"P-Asserted-Identity: <sip:{IVAN}@pbx.local>",), expect="407"),
    "preloaded Route to the proxy, R-URI at a carrier": dict(
        method="INVITE", ruri=KUBAN_URI, headers=("Route: <sip:{proxy};lr>",), expect="407"),
    "R-URI at a carrier": dict(method="INVITE", ruri=KUBAN_URI, expect="407"),
    "fake To-tag and Route making it look in-dialog": dict(
        method="INVITE", ruri=KUBAN_URI, to_tag="forged", headers=("Route: <sip:{proxy};lr>",),
        expect="481"),
    "fake To-tag without Route": dict(method="BYE", ruri=KUBAN_URI, to_tag="forged", expect="404"),
    "out-of-dialog MESSAGE to a client": dict(method="MESSAGE", ruri="sip:{client}@{proxy}",
                                             expect="407"),
    "out-of-dialog REFER to a client": dict(method="REFER", ruri="sip:{client}@{proxy}",
                                           headers=(f"Refer-To: <{KUBAN_URI}>",), expect="407"),
    "out-of-dialog OPTIONS to a client": dict(method="OPTIONS", ruri="sip:{client}@{proxy}",
                                             expect="407"),
}


@pytest.mark.parametrize("name", FORGERIES)
def test_forged_requests_from_an_untrusted_source_reach_no_carrier(stack, carriers, name):
    case = dict(FORGERIES[name])
    expect = case.pop("expect")
    fill = {"client": CLIENT, "proxy": stack.remote}
    case["ruri"] = case["ruri"].format(**fill)
    case["headers"] = tuple(h.format(**fill) for h in case.get("headers", ()))
    status = send(stack, case.pop("method"), case.pop("ruri"), **case)
    assert status.startswith(f"SIP/2.0 {expect} "), status
    assert all(c.received() == [] for c in carriers)


@pytest.mark.parametrize("method, expect", [("INVITE", "404 Number Dialed Incorrectly"),
                                            ("MESSAGE", "405 Method Not Allowed")])
def test_a_trunk_cannot_transit_through_us(stack, carriers, method, expect):
    status = send(stack, method, f"sip:{CLIENT}@{stack.remote}", source_ip=TRUNK_IP,
                  from_uri=f"sip:{CLIENT}@{TRUNK_IP}")
    assert status == f"SIP/2.0 {expect}"
    assert all(c.received() == [] for c in carriers)


@pytest.mark.parametrize("source, to_tag, logged", [
    (STRICT_TRUNK_IP, None, r'method=INVITE from=\+79891234567 to=\+79891234567 code=404 '
                     r'reason="Number Dialed Incorrectly"'),  # decided in Python
    ("127.0.0.6", "forged", r'method=INVITE from=\+79891234567 to=\+79891234567 code=481 '
                            r'reason="Call/Transaction Does Not Exist"'),  # refused by kamailio.cfg
])
def test_refusals_are_logged_once_per_source_per_second(stack, source, to_tag, logged):
    start = stack.log.stat().st_size
    for _ in range(20):
        assert send(stack, "INVITE", KUBAN_URI, source_ip=source, to_tag=to_tag,
                    from_uri=f"sip:{CLIENT}@{source}",
                    headers=("Route: <sip:%s;lr>" % stack.remote,) if to_tag else ())
    with open(stack.log, errors="replace") as log:
        log.seek(start)
        lines = [l for l in log if f"refused source={source} " in l]
    assert 1 <= len(lines) <= 2, lines  # 20 refusals within (at most) two seconds
    assert re.search(logged, lines[0]), lines[0]


def test_a_source_without_credentials_is_challenged_and_a_trunk_is_not(stack):
    """kamailio.cfg challenges any source outside the trunks' networks (a scanner's flood
    never enters Python); a trunk's call is decided in Python, and it never registers."""
    for _ in range(2):
        status = send(stack, "INVITE", f"sip:{CLIENT}@{stack.remote}", source_ip="127.0.0.7")
        assert status.startswith("SIP/2.0 407 "), status
    status = send(stack, "REGISTER", f"sip:{stack.remote}", source_ip=TRUNK_IP,
                  from_uri=f"sip:{CLIENT}@{TRUNK_IP}", to_uri=f"sip:{CLIENT}@{TRUNK_IP}")
    assert status == "SIP/2.0 403 Carriers Do Not Register"
    status = send(stack, "INVITE", f"sip:{CLIENT}@{stack.remote}", source_ip=TRUNK_IP,
                  from_uri=f"sip:{CLIENT}@{TRUNK_IP}")
    assert status == "SIP/2.0 404 Number Dialed Incorrectly"  # decided in Python, not challenged


def test_a_forged_contact_alias_cannot_aim_a_carriers_requests_elsewhere(stack, sipp, silent):
    """A SIM puts ;alias=<someone else> in its Contact (the parameter the proxy adds for
    NAT): the carrier's BYE still comes to the SIM's real source, nothing to the victim."""
    victim = silent("127.0.0.9", 5099)
    far = sipp("outbound_bye_from_trunk", "trunk_uas.xml", local_ip=TRUNK_IP,
               local_port=TRUNK_PORT).start()
    sim = "+79181110004"
    caller = sipp("forged_contact_alias", "sim_uac.xml", local_ip=SIM_IP, local_port=5207,
                  service=sim, auth=(sim, demo_password(sim)),
                  keys={"realm": stack.config.realm, "called": "89891234567",
                        "victim": "127.0.0.9~5099"}).start()
    far.succeeded()  # the carrier's BYE answered: it reached the SIM
    caller.succeeded()
    assert victim.received() == []
