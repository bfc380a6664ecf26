"""The routing policy, cell by cell, on the pure decision core (facts gathered from fakes)."""

from __future__ import annotations

import pytest

from kemi.decision import (AUTH_FAILED, CHALLENGE, DATABASE_DOWN, NO_CREDENTIALS,
                           NOBODY_REACHABLE, NUMBER_DIALED_INCORRECTLY, REFUSED, REGISTER,
                           REGISTRATION_FROM_TRUNK, STALE, UNAVAILABLE, Facts, Number, Reply,
                           Request, Ring, Verified, auth_verdict, check_sim, decide,
                           first_reachable, numbers_to_look_up)

from harness.fakes import demo_directory, facts, sim

TRUNK_IP, NATIONAL_TRUNK_IP, STRANGER_IP = "127.0.0.2", "10.20.3.4", "127.0.0.3"
SOCHI = ("+79181110003", "+79181110004")


def invite(ruri_user, from_user="+79891234567", source=TRUNK_IP, method="INVITE", **kw):
    return Request(method, source, ruri_user, from_user, **kw)


def decided(req, sim_username=None, directory=None):
    directory = directory or demo_directory()
    return decide(req, facts(directory, req, sim_username))


# -- trusted trunk -> a DID ---------------------------------------------------------

@pytest.mark.parametrize("called", ["+78622550101", "78622550101", "88622550101", "8622550101",
                                    "+7 (862) 255-01-01"])
def test_trunk_to_did_rings_the_district_in_hunting_order(called):
    assert decided(invite(called)) == Ring(targets=SOCHI, caller="+79891234567",
                                           display='"Sochi"', pai=None, via="kuban-telecom",
                                           where="Kuban Realty/Sochi", did="+78622550101",
                                           client="+79891234567")


@pytest.mark.parametrize("sent, shown", [
    ("89891234567", "+79891234567"), ("79891234567", "+79891234567"),
    ("9891234567", "+79891234567"), ("+7 989 123-45-67", "+79891234567"),
    ("88005553535", "+78005553535"),  # toll-free
    ("810441234567890", "+441234567890"),  # old international prefix
    ("+441234567890", "+441234567890"), ("+77012345678", "+77012345678"),  # Kazakhstan
    ("anonymous", "anonymous"), ("Restricted", "Restricted"), (None, "anonymous"),
])
def test_the_manager_sees_a_number_to_call_back(sent, shown):
    assert decided(invite("+78622550101", sent)).caller == shown


def test_pai_from_a_trunk_is_kept_normalised():
    assert decided(invite("+78622550101", pai_user="89891234567")).pai == "+79891234567"


def test_district_without_reachable_manager_is_480():
    assert decided(invite("+78613350101")) == NOBODY_REACHABLE


def test_did_of_an_inactive_district_is_not_a_number():
    assert decided(invite("+78617300101")) == NUMBER_DIALED_INCORRECTLY


def test_a_did_whose_plan_the_database_cannot_give_is_503():
    """Ours (the index says so) but never cached, the database down: no guessing."""
    req = invite("+78622550101")
    known = {"+78622550101": Number(did_company=1, did=UNAVAILABLE)}
    trunk = demo_directory().trunk_for_source(TRUNK_IP)
    assert decide(req, Facts(trunk, None, known)) == DATABASE_DOWN


# -- trusted trunk -> a SIM / anything else ---------------------------------------

def test_trunk_to_a_sim_number_rings_that_sim():
    ring = decided(invite("89181110004"))
    assert ring.targets == ("+79181110004",) and ring.display == '"Sochi"'


@pytest.mark.parametrize("called", ["+79181110008", "+79181110007"])
def test_trunk_to_an_inactive_sim_is_not_a_number(called):
    assert decided(invite(called)) == NUMBER_DIALED_INCORRECTLY


@pytest.mark.parametrize("called", ["+78612999999", "12345", "abc", "", None, "112", "+7"])
def test_trunk_to_anything_else_is_404_number_dialed_incorrectly(called):
    assert decided(invite(called)) == Reply(404, "Number Dialed Incorrectly")


def test_trunk_is_recognised_by_network():
    assert decided(invite("+78622550101", source=NATIONAL_TRUNK_IP)).via == "south-link"


# -- forwarded calls ---------------------------------------------------------------

def test_forwarded_call_routes_on_the_last_diversion():
    req = invite("+78612999999", diversion="<sip:+78612000000@a>;reason=x, <sip:88622550101@b>")
    assert decided(req).targets == SOCHI


def test_forwarded_call_routes_on_the_first_history_info_entry():
    req = invite("+78612999999",
                 history_info="<sip:+78622550101@a>;index=1, <sip:+78612999999@b>;index=1.1")
    assert decided(req).targets == SOCHI


def test_diversion_from_elsewhere_to_our_did_routes_on_the_did():
    req = invite("+78612100101", diversion="<sip:+74951234567@other>;reason=unconditional")
    assert decided(req).display == '"Krasnodar"'


def test_the_numbers_looked_up_are_the_original_then_the_request_uri():
    req = invite("+78612100101", diversion="<sip:88622550101@other>")
    trunk = demo_directory().trunk_for_source(TRUNK_IP)
    assert numbers_to_look_up(req, trunk) == ("+78622550101", "+78612100101")


# -- methods -----------------------------------------------------------------------

def test_trunk_options_is_answered():
    assert decided(invite("+78622550101", method="OPTIONS")) == Reply(200, "OK")


@pytest.mark.parametrize("method", ["MESSAGE", "REFER", "SUBSCRIBE", "NOTIFY", "PUBLISH"])
def test_trunk_other_out_of_dialog_methods_are_refused(method):
    assert decided(invite("+78622550101", method=method)) == Reply(405, "Method Not Allowed")


# -- any other source --------------------------------------------------------------

@pytest.mark.parametrize("method", ["INVITE", "MESSAGE", "OPTIONS", "REGISTER"])
def test_other_sources_are_authenticated_before_any_policy(method):
    req = invite("+78622550101", source=STRANGER_IP, method=method)
    assert decide(req, Facts(None, NO_CREDENTIALS, {})) is CHALLENGE
    assert decide(req, Facts(None, STALE, {})) is CHALLENGE
    assert decide(req, Facts(None, REFUSED, {})) is AUTH_FAILED


def test_a_carrier_address_never_registers_a_sim():
    """A registration binds a SIM to its source: a carrier's is refused, even with the
    SIM's credentials, so that no call to a SIM can be aimed at a carrier."""
    assert decided(invite(None, method="REGISTER")) == REGISTRATION_FROM_TRUNK


def test_authenticated_register_is_saved():
    req = invite(None, "+79181110003", source=STRANGER_IP, method="REGISTER")
    assert decided(req, "+79181110003") is REGISTER


@pytest.mark.parametrize("username, refusal", [
    ("+79181110008", Reply(403, "SIM Inactive")), ("+79181110007", Reply(403, "Manager Inactive"))])
def test_a_verified_sim_that_may_not_call_is_told_why(username, refusal):
    for method in ("INVITE", "REGISTER"):
        req = invite("+79891234567", username, source=STRANGER_IP, method=method)
        assert decided(req, username) == refusal


# -- authentication outcomes -------------------------------------------------------

def test_check_sim():
    assert check_sim(None) == Reply(403, "Forbidden")
    assert check_sim(sim("+7", sim_active=False)) == Reply(403, "SIM Inactive")
    assert check_sim(sim("+7", manager_active=False)) == Reply(403, "Manager Inactive")
    assert check_sim(sim("+7")) is None


@pytest.mark.parametrize("rc, verdict", [
    (1, None), (-2, REFUSED), (-3, REFUSED), (-8, REFUSED),
    (-1, STALE), (-4, STALE), (-5, STALE), (-6, STALE)])
def test_auth_verdict(rc, verdict):
    assert auth_verdict(rc) == verdict


# -- hunting ------------------------------------------------------------------------

@pytest.mark.parametrize("registered, first", [
    ({"a", "b", "c"}, 0), ({"b", "c"}, 1), ({"c"}, 2), (set(), None)])
def test_the_first_registered_sim_rings_and_unregistered_ones_are_skipped(registered, first):
    asked = []
    assert first_reachable(("a", "b", "c"), lambda u: asked.append(u) or u in registered) == first
    assert asked == ["a", "b", "c"][:(first + 1) if first is not None else 3]  # no more asked


def test_verified_holds_the_plan():
    plan = demo_directory().sim("+79181110003")
    assert Verified(plan).plan.username == "+79181110003"
