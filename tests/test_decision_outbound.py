"""The authenticated-SIM row of the routing policy, on the pure decision core."""

from __future__ import annotations

import pytest

from kemi.decision import (AUTHENTICATE_TO_TRUNK, GIVE_UP, NO_ROUTE_OUT, NOBODY_REACHABLE,
                           NUMBER_DIALED_INCORRECTLY, TRY_NEXT_TRUNK, CallOut, Reply, Request,
                           Ring, after_trunk_failure, answers_indialog_challenge, decide,
                           wants_privacy)
from kemi.phone import to_e164
from kemi.plans import hop, ruri

from harness.fakes import KUBAN, SOUTH, WEST, demo_directory, demo_records, facts, sim

IVAN = sim("+79181110003")
SIM_IP = "127.0.0.1"
KUBAN_OUT, SOUTH_OUT = "sip:+79891234567@127.0.0.2:5060", "sip:89891234567@10.20.0.1:5080"


def dial(number, caller=IVAN, method="INVITE", trunks=None, **kw):
    """The decision for `caller`, authenticated, dialling `number`."""
    demo_trunks, sims, dids = demo_records()
    sims = [s for s in sims if s.username != caller.username] + [caller]
    directory = demo_directory(trunks=demo_trunks if trunks is None else trunks, sims=sims)
    req = Request(method, SIM_IP, number, caller.username, **kw)
    return decide(req, facts(directory, req, caller.username))


def ruris(out: CallOut) -> list[str]:
    return [ruri(h, out.called) for h in out.hops]


@pytest.mark.parametrize("typed", ["89891234567", "+79891234567", "9891234567",
                                   "8 (989) 123-45-67", "+7 989 123 45 67"])
def test_client_sees_the_district_number_through_the_owner_trunk(typed):
    out = dial(typed)
    assert (out.called, out.caller, out.anonymous) == ("+79891234567", "+78622550101", False)
    assert ruris(out) == [KUBAN_OUT, SOUTH_OUT]
    assert out.hops[1].auth_username == "kuban-realty"


def test_failover_goes_only_to_trunks_accepting_foreign_caller_ids():
    assert "west-line" not in [h.trunk for h in dial("89891234567").hops]


def test_a_substitute_in_the_district_shows_the_same_number():
    boris = sim("+79181110004", manager_id=2)  # Sochi too: the district's number
    assert dial("89891234567", boris).caller == dial("89891234567", IVAN).caller == "+78622550101"


def test_a_moved_manager_shows_the_new_district_number():
    moved = sim("+79181110003", district="Anapa", caller_id="+78613350101")
    assert dial("89891234567", moved).caller == "+78613350101"


def test_an_override_owned_by_another_carrier_leaves_through_it_in_its_format():
    pavel = sim("+79181110002", caller_id="+78612100103", caller_id_trunk_id=2)
    out = dial("+79891234567", pavel)
    assert out.caller == "88612100103"  # south-link writes numbers the national way
    assert ruris(out) == [SOUTH_OUT]  # nobody else accepts a foreign caller ID


@pytest.mark.parametrize("number, refusal, permission", [
    ("+441234567890", "International Calls Disabled", "allow_international"),
    ("810441234567890", "International Calls Disabled", "allow_international"),
    ("88091234567", "Premium Rate Calls Disabled", "allow_premium_rate"),
    ("+77012345678", "Calls To Kazakhstan Disabled", "allow_kazakhstan"),
    ("87012345678", "Calls To Kazakhstan Disabled", "allow_kazakhstan"),
    ("+76012345678", "Calls To Kazakhstan Disabled", "allow_kazakhstan"),  # no region in phonenumbers
    ("86012345678", "Calls To Kazakhstan Disabled", "allow_kazakhstan"),
])
def test_destination_policy(number, refusal, permission):
    assert dial(number) == Reply(403, refusal)
    allowed = sim("+79181110003", **{permission: True})
    assert isinstance(dial(number, allowed), CallOut)


@pytest.mark.parametrize("typed", ["1050012345", "+71050012345", "2012345678", "5012345678"])
def test_a_number_outside_russian_ranges_is_not_domestic(typed):
    """Issue 12.1: ten digits starting with 1 parse as +7 1xx, which no range assigns;
    written for a national-format trunk it would read 8-10-..., an international call."""
    assert dial(typed) == NUMBER_DIALED_INCORRECTLY
    allowed = sim("+79181110003", allow_international=True)
    out = dial(typed, allowed)
    # Only a trunk whose format carries the number as dialled is tried: south-link writes
    # numbers nationally, where 8 + 10... would be 810, the international prefix.
    carried = ["kuban-telecom"] if out.called.startswith("+710") else ["kuban-telecom", "south-link"]
    assert [h.trunk for h in out.hops] == carried
    assert out.called == to_e164(typed)


def test_a_number_no_trunk_can_carry_as_dialled_is_refused():
    allowed = sim("+79181110003", allow_international=True, caller_id_trunk_id=2)
    assert dial("1050012345", allowed, trunks=(SOUTH,)) == NUMBER_DIALED_INCORRECTLY


def test_the_first_usable_trunk_shows_the_caller_id_in_its_own_format():
    """The owner (national format) cannot carry +7 10x: the next trunk shows the caller ID."""
    pavel = sim("+79181110002", caller_id="+78612100103", caller_id_trunk_id=2,
                allow_international=True)
    kuban_foreign = KUBAN._replace(accepts_foreign_caller_id=True)
    out = dial("1050012345", pavel, trunks=(kuban_foreign, SOUTH))
    assert [h.trunk for h in out.hops] == ["kuban-telecom"] and out.caller == "+78612100103"


@pytest.mark.parametrize("number", ["88005553535", "+78612345678", "89181234567"])
def test_domestic_numbers_are_always_allowed(number):
    assert isinstance(dial(number), CallOut)


def test_international_numbers_are_written_for_each_carrier():
    out = dial("+441234567890", sim("+79181110003", allow_international=True))
    assert ruris(out) == ["sip:+441234567890@127.0.0.2:5060", "sip:810441234567890@10.20.0.1:5080"]


@pytest.mark.parametrize("number", ["112", "101", "102", "103", "104"])
def test_emergency_goes_to_the_default_trunk_showing_the_sims_own_number(number):
    out = dial(number)
    assert out.caller == "+79181110003" and out.emergency
    assert out.hops[0].trunk == "kuban-telecom"
    assert ruris(out)[0] == f"sip:{number}@127.0.0.2:5060"


def test_emergency_without_a_default_trunk_is_503():
    assert dial("112", trunks=(WEST,)) == NO_ROUTE_OUT


def test_own_company_did_rings_that_district_showing_the_sim():
    assert dial("88622550101") == Ring(("+79181110003", "+79181110004"), caller="+79181110003",
                                       display='"Sochi"', pai=None, via="sim",
                                       where="Kuban Realty/Sochi", did="+78622550101")


def test_own_company_did_with_nobody_on_duty_is_480():
    assert dial("+78613350101") == NOBODY_REACHABLE


def test_own_company_sim_rings_directly_without_rewriting():
    assert dial("89181110004") == Ring(("+79181110004",), caller="+79181110003", display=None,
                                       pai=None, via="sim", where="Kuban Realty/Sochi")


@pytest.mark.parametrize("number", ["+79181110008", "+79181110007"])
def test_own_company_inactive_sim_is_not_a_number(number):
    assert dial(number) == NUMBER_DIALED_INCORRECTLY


@pytest.mark.parametrize("number", ["+74952000000", "+79161110001"])
def test_another_companys_numbers_are_external(number):
    out = dial(number)
    assert isinstance(out, CallOut) and out.called == number


@pytest.mark.parametrize("number", ["", None, "12", "abc", "*21#", "+7"])
def test_unparsable_is_404_number_dialed_incorrectly(number):
    assert dial(number) == Reply(404, "Number Dialed Incorrectly")


@pytest.mark.parametrize("method", ["MESSAGE", "REFER", "OPTIONS", "SUBSCRIBE"])
def test_out_of_dialog_requests_other_than_calls_are_not_relayed(method):
    assert dial("+79891234567", method=method) == Reply(405, "Method Not Allowed")


@pytest.mark.parametrize("privacy, anonymous", [
    ("id", True), ("header; id", True), ("user", True), ("none", False), (None, False),
    ("critical", False)])
def test_privacy(privacy, anonymous):
    assert wants_privacy(privacy) is anonymous
    assert dial("+79891234567", privacy=privacy).anonymous is anonymous


def test_no_trunk_at_all_is_503():
    assert dial("+79891234567", trunks=()) == NO_ROUTE_OUT


KUBAN_HOP, SOUTH_HOP = hop(KUBAN), hop(SOUTH)


@pytest.mark.parametrize("status, hops, authenticated, action", [
    (401, (SOUTH_HOP,), False, AUTHENTICATE_TO_TRUNK),
    (407, (SOUTH_HOP,), False, AUTHENTICATE_TO_TRUNK),
    (401, (SOUTH_HOP,), True, GIVE_UP),  # wrong credentials: do not loop
    (401, (KUBAN_HOP, SOUTH_HOP), False, GIVE_UP),  # no credentials for this trunk
    (503, (KUBAN_HOP, SOUTH_HOP), False, TRY_NEXT_TRUNK),
    (500, (KUBAN_HOP, SOUTH_HOP), False, TRY_NEXT_TRUNK),
    (408, (KUBAN_HOP, SOUTH_HOP), False, TRY_NEXT_TRUNK),
    (503, (SOUTH_HOP,), False, GIVE_UP),
    (486, (KUBAN_HOP, SOUTH_HOP), False, GIVE_UP),  # the client is busy: that is the answer
    (404, (KUBAN_HOP, SOUTH_HOP), False, GIVE_UP),
    (603, (KUBAN_HOP, SOUTH_HOP), False, GIVE_UP),
])
def test_after_trunk_failure(status, hops, authenticated, action):
    assert after_trunk_failure(status, hops, authenticated) == action


@pytest.mark.parametrize("status, trunk, answered", [
    (407, SOUTH, True), (401, SOUTH, True), (486, SOUTH, False), (407, KUBAN, False),
    (407, None, False)])
def test_an_in_dialog_challenge_is_answered_only_with_credentials(status, trunk, answered):
    assert answers_indialog_challenge(status, trunk) is answered
