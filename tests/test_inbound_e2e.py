"""Inbound calls end to end: carrier trunk -> real Kamailio + PostgreSQL -> SIPp SIMs."""

from __future__ import annotations

import time

import pytest

from harness import rawsip
from .conftest import NATIONAL_TRUNK_IP, SIM_IP, TRUNK_IP, UNTRUSTED_IP, demo_password
from harness.sipp import Check, literal

# sql/demo.sql
KRASNODAR_DID = "+78612100101"
SOCHI_DID = "+78622550101"
NOVOROSSIYSK_DID = "+78617300101"
ANAPA_DID = "+78613350101"
OLGA = "+79181110001"  # Krasnodar, first in hunting order
IVAN, BORIS = "+79181110003", "+79181110004"  # Sochi: Ivan first, Boris covers
NINA, SERGEI = "+79181110005", "+79181110006"  # Novorossiysk
CLIENT = "+79891234567"
FIRST_PORT, SECOND_PORT = 5201, 5202


def shows_client(district: str, client: str = CLIENT) -> tuple[Check, ...]:
    """The SIM sees the client's E.164 number (dialable back) and the district as display name."""
    return (Check("From", f'^ *"{literal(district)}" <sip:{literal(client)}@'),)


def call_from_trunk(sipp, called, caller=CLIENT, ip=TRUNK_IP, checks=()):
    return sipp("inbound_call", "trunk_uac.xml", local_ip=ip, checks=checks,
                keys={"called": called, "caller": caller})


def refused(sipp, code, reason, called, caller=CLIENT, ip=TRUNK_IP):
    return sipp("inbound_refused", "trunk_uac.xml", local_ip=ip,
                keys={"called": called, "caller": caller},
                values={"CODE": str(code), "REASON": reason})


def answering_sim(sipp, port, checks=(), sim=None):
    return sipp("inbound_call", "sim_uas.xml", local_ip=SIM_IP, local_port=port,
                checks=checks, service=sim).start()


# -- registration ------------------------------------------------------------------

def test_sim_registers_after_401_challenge(register):
    register(OLGA, FIRST_PORT)  # the scenario asserts 401, then 200


def test_wrong_password_is_refused_403(stack, sipp):
    sipp("register_wrong_password", "uac.xml", local_ip=SIM_IP, local_port=FIRST_PORT,
         service=OLGA, auth=(OLGA, "not-" + demo_password(OLGA)),
         keys={"realm": stack.config.realm}).run()


# -- inbound routing ---------------------------------------------------------------

def test_did_rings_the_district_manager_showing_the_client(register, sipp):
    register(OLGA, FIRST_PORT)
    sim = answering_sim(sipp, FIRST_PORT, shows_client("Krasnodar"), sim=OLGA)
    # The carrier never learns who answered: the SIM's Contact (its MSISDN, its port) is
    # replaced by the proxy's realm; the BYE still reaches the SIM.
    call_from_trunk(sipp, KRASNODAR_DID, checks=(
        Check("Contact", "9181110", present=False),
        Check("Contact", f":{FIRST_PORT}[;>]", present=False))).run()
    sim.succeeded()


def test_carrier_writing_national_format_is_normalised(register, sipp):
    # south-link writes 8XXXXXXXXXX for both numbers and asserts the caller in PAI.
    register(OLGA, FIRST_PORT)
    checks = shows_client("Krasnodar", "+79181234567") + (
        Check("P-Asserted-Identity", r"<sip:\+79181234567@"),)
    sim = answering_sim(sipp, FIRST_PORT, checks)
    sipp("inbound_call", "trunk_uac_pai.xml", local_ip=NATIONAL_TRUNK_IP,
         keys={"called": "88612100101", "caller": "89181234567"}).run()
    sim.succeeded()


def test_forwarded_call_rings_the_district_of_the_original_did(register, sipp):
    register(IVAN, FIRST_PORT)
    sim = answering_sim(sipp, FIRST_PORT, shows_client("Sochi"))
    sipp("inbound_forwarded", "trunk_uac.xml", local_ip=TRUNK_IP,
         keys={"called": "+78612999999", "original": SOCHI_DID, "caller": CLIENT}).run()
    sim.succeeded()


def test_trunk_calling_a_sim_number_rings_that_sim(register, sipp):
    register(BORIS, FIRST_PORT)
    sim = answering_sim(sipp, FIRST_PORT, shows_client("Sochi"))
    call_from_trunk(sipp, BORIS).run()
    sim.succeeded()


def test_anonymous_caller_still_rings_shown_as_is(register, sipp):
    register(OLGA, FIRST_PORT)
    sim = answering_sim(sipp, FIRST_PORT, (Check("From", r'^ *"Krasnodar" <sip:anonymous@'),))
    call_from_trunk(sipp, KRASNODAR_DID, caller="anonymous").run()
    sim.succeeded()


# -- hunting -----------------------------------------------------------------------

def test_first_manager_unregistered_rings_the_next(register, sipp):
    register(BORIS, SECOND_PORT)
    sim = answering_sim(sipp, SECOND_PORT, shows_client("Sochi"))
    call_from_trunk(sipp, SOCHI_DID).run()
    sim.succeeded()


@pytest.mark.parametrize("first_sim", ["hunt_busy", "hunt_no_answer", "hunt_ring_timeout"])
def test_first_manager_not_answering_rings_the_next(register, sipp, first_sim):
    register(IVAN, FIRST_PORT)
    register(BORIS, SECOND_PORT)
    ivan = sipp(first_sim, "sim_uas.xml", local_ip=SIM_IP, local_port=FIRST_PORT).start()
    boris = answering_sim(sipp, SECOND_PORT, shows_client("Sochi"))
    call_from_trunk(sipp, SOCHI_DID).run()
    ivan.succeeded()
    boris.succeeded()


def test_client_hanging_up_while_ringing_gets_487_and_nobody_else_rings(register, sipp, silent):
    register(NINA, FIRST_PORT)
    register(SERGEI, SECOND_PORT)
    nina = sipp("hunt_ring_timeout", "sim_uas.xml", local_ip=SIM_IP, local_port=FIRST_PORT).start()
    sergei = silent(SIM_IP, SECOND_PORT)
    sipp("cancel_while_ringing", "trunk_uac.xml", local_ip=TRUNK_IP,
         keys={"called": NOVOROSSIYSK_DID, "caller": CLIENT}).run()
    nina.succeeded()
    time.sleep(1.5)  # longer than the no-answer timer: a wrongly hunted call would have arrived
    assert sergei.received() == []


def test_nobody_reachable_gets_480(sipp):
    refused(sipp, 480, "Temporarily Unavailable", ANAPA_DID).run()


# -- refusals ----------------------------------------------------------------------

@pytest.mark.parametrize("called", ["+78612999999", "12345", "not-a-number"])
def test_unknown_number_from_trunk_gets_404_number_dialed_incorrectly(sipp, called):
    refused(sipp, 404, "Number Dialed Incorrectly", called).run()


def test_untrusted_source_is_challenged_and_never_rings_a_sim(register, sipp, silent):
    register(OLGA, FIRST_PORT)
    olga = silent(SIM_IP, FIRST_PORT)
    refused(sipp, 407, "Proxy Authentication Required", KRASNODAR_DID, ip=UNTRUSTED_IP).run()
    assert olga.received() == []


def test_malformed_request_gets_400(stack):
    bad = rawsip.build("INVITE", f"sip:{KRASNODAR_DID}@{stack.remote}", (TRUNK_IP, 5999),
                       from_uri="sip:client@127.0.0.2", to_uri="sip:x@127.0.0.1", cseq="x INVITE")
    status = rawsip.exchange(bad, (TRUNK_IP, 5999), (stack.config.sip_addr, stack.config.sip_port))
    assert status.startswith("SIP/2.0 400 "), status


# -- in-dialog ---------------------------------------------------------------------

def test_bye_from_the_client_reaches_the_sim(register, sipp):
    test_did_rings_the_district_manager_showing_the_client(register, sipp)


def test_bye_from_the_sim_reaches_the_client_with_its_identity_restored(register, sipp):
    register(OLGA, FIRST_PORT)
    sim = sipp("inbound_bye_from_sim", "sim_uas.xml", local_ip=SIM_IP, local_port=FIRST_PORT,
               checks=shows_client("Krasnodar", "+79181234567")).start()
    # The carrier sent 89181234567 "Client"; the BYE it receives must carry that back in To.
    sipp("inbound_bye_from_sim", "trunk_uac.xml", local_ip=TRUNK_IP,
         keys={"called": KRASNODAR_DID, "caller": "89181234567"},
         # uac restores the URI; kamailio.cfg drops in-dialog display names (no "Krasnodar").
         checks=(Check("To", r'^ *<sip:89181234567@127\.0\.0\.2'),
                 Check("From", r'<sip:\+78612100101@'))).run()
    sim.succeeded()
