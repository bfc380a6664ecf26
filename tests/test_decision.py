"""The routing policy, cell by cell, on the pure decision core."""

from __future__ import annotations

import pytest

from kemi.decision import (AUTHENTICATE, NOBODY_REACHABLE, NUMBER_DIALED_INCORRECTLY, REGISTER,
                           REGISTRATION_FROM_TRUNK,
                           Call, Reply, Ring, auth_verdict, check_sim, decide)

from .fakes import demo_data, sim

TRUNK_IP, NATIONAL_TRUNK_IP, STRANGER_IP = "127.0.0.2", "10.20.3.4", "127.0.0.3"
SOCHI = ("+79181110003", "+79181110004")


def invite(ruri_user, from_user="+79891234567", source=TRUNK_IP, **kw):
    return Call("INVITE", source, ruri_user, from_user, **kw)


# -- trusted trunk -> a DID ---------------------------------------------------------

@pytest.mark.parametrize("called", ["+78622550101", "78622550101", "88622550101", "8622550101",
                                    "+7 (862) 255-01-01"])
def test_trunk_to_did_rings_the_district_in_hunting_order(called):
    ring = decide(invite(called), demo_data())
    assert ring == Ring(targets=SOCHI, caller="+79891234567", display="Sochi", pai=None,
                        via="kuban-telecom")


@pytest.mark.parametrize("sent, shown", [
    ("89891234567", "+79891234567"), ("79891234567", "+79891234567"),
    ("9891234567", "+79891234567"), ("+7 989 123-45-67", "+79891234567"),
    ("88005553535", "+78005553535"),  # toll-free
    ("810441234567890", "+441234567890"),  # old international prefix
    ("+441234567890", "+441234567890"), ("+77012345678", "+77012345678"),  # Kazakhstan
    ("anonymous", "anonymous"), ("Restricted", "Restricted"), (None, "anonymous"),
])
def test_the_manager_sees_a_number_to_call_back(sent, shown):
    ring = decide(invite("+78622550101", sent), demo_data())
    assert ring.caller == shown


def test_pai_from_a_trunk_is_kept_normalised():
    ring = decide(invite("+78622550101", pai_user="89891234567"), demo_data())
    assert ring.pai == "+79891234567"


def test_district_without_reachable_manager_is_480():
    assert decide(invite("+78613350101"), demo_data()) == NOBODY_REACHABLE


def test_did_of_an_inactive_district_is_not_a_number():
    assert decide(invite("+78617300101"), demo_data()) == NUMBER_DIALED_INCORRECTLY


# -- trusted trunk -> a SIM / anything else ---------------------------------------

def test_trunk_to_a_sim_number_rings_that_sim():
    ring = decide(invite("89181110004"), demo_data())
    assert ring.targets == ("+79181110004",) and ring.display == "Sochi"


@pytest.mark.parametrize("called", ["+79181110008", "+79181110007"])
def test_trunk_to_an_inactive_sim_is_not_a_number(called):
    assert decide(invite(called), demo_data()) == NUMBER_DIALED_INCORRECTLY


@pytest.mark.parametrize("called", ["+78612999999", "12345", "abc", "", None, "112", "+7"])
def test_trunk_to_anything_else_is_404_number_dialed_incorrectly(called):
    assert decide(invite(called), demo_data()) == Reply(404, "Number Dialed Incorrectly")


def test_trunk_is_recognised_by_network():
    assert decide(invite("+78622550101", source=NATIONAL_TRUNK_IP), demo_data()).via == "south-link"


# -- forwarded calls ---------------------------------------------------------------

def test_forwarded_call_routes_on_the_last_diversion():
    call = invite("+78612999999", diversion="<sip:+78612000000@a>;reason=x, <sip:88622550101@b>")
    assert decide(call, demo_data()).targets == SOCHI


def test_forwarded_call_routes_on_the_first_history_info_entry():
    call = invite("+78612999999",
                  history_info="<sip:+78622550101@a>;index=1, <sip:+78612999999@b>;index=1.1")
    assert decide(call, demo_data()).targets == SOCHI


def test_diversion_from_elsewhere_to_our_did_routes_on_the_did():
    call = invite("+78612100101", diversion="<sip:+74951234567@other>;reason=unconditional")
    assert decide(call, demo_data()).display == "Krasnodar"


# -- methods -----------------------------------------------------------------------

def test_trunk_options_is_answered():
    assert decide(Call("OPTIONS", TRUNK_IP, "+78622550101", "x"), demo_data()) == Reply(200, "OK")


@pytest.mark.parametrize("method", ["MESSAGE", "REFER", "SUBSCRIBE", "NOTIFY", "PUBLISH"])
def test_trunk_other_out_of_dialog_methods_are_refused(method):
    call = Call(method, TRUNK_IP, "+78622550101", "x")
    assert decide(call, demo_data()) == Reply(405, "Method Not Allowed")


# -- any other source --------------------------------------------------------------

@pytest.mark.parametrize("method", ["INVITE", "MESSAGE", "OPTIONS", "REGISTER"])
def test_other_sources_are_authenticated_before_any_policy(method):
    data = demo_data()
    assert decide(Call(method, STRANGER_IP, "+78622550101", "x"), data) is AUTHENTICATE
    assert data.lookups == []  # nothing about the number was even looked up


def test_a_carrier_address_never_registers_a_sim():
    """A registration binds a SIM to its source: a carrier's is refused, even with the
    SIM's credentials, so that no call to a SIM can be aimed at a carrier."""
    for sim_ in (None, sim("+79181110003")):
        assert decide(Call("REGISTER", TRUNK_IP, None, "x", sim=sim_), demo_data()) \
            == REGISTRATION_FROM_TRUNK


def test_authenticated_register_is_saved():
    call = Call("REGISTER", STRANGER_IP, None, "+79181110003", sim=sim("+79181110003"))
    assert decide(call, demo_data()) is REGISTER


# -- authentication outcomes -------------------------------------------------------

def test_check_sim():
    assert check_sim(None) == Reply(403, "Forbidden")
    assert check_sim(sim("+7", sim_active=False)) == Reply(403, "SIM Inactive")
    assert check_sim(sim("+7", manager_active=False)) == Reply(403, "Manager Inactive")
    assert check_sim(sim("+7")) is None


@pytest.mark.parametrize("rc, verdict", [
    (1, None), (-2, Reply(403, "Forbidden")), (-8, Reply(403, "Forbidden")),
    (-1, AUTHENTICATE), (-4, AUTHENTICATE), (-5, AUTHENTICATE), (-6, AUTHENTICATE)])
def test_auth_verdict(rc, verdict):
    assert auth_verdict(rc) == verdict
