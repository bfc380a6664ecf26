"""Outbound calls from corporate SIMs end to end: SIPp SIM -> Kamailio -> SIPp carriers."""

from __future__ import annotations

import pytest

from .conftest import (NATIONAL_TRUNK_IP, SIM_IP, STRICT_TRUNK_IP, TRUNK_IP, TRUNK_PORT,
                       demo_password)
from harness.sipp import Check, literal, request_line

# sql/demo.sql and tests/data.sql
SOCHI_NUMBER, KRASNODAR_NUMBER = "+78622550101", "+78612100101"
PAVEL_OVERRIDE = "+78612100103"  # owned by south-link
OLGA, PAVEL = "+79181110001", "+79181110002"  # Krasnodar
IVAN, BORIS = "+79181110003", "+79181110004"  # Sochi: Boris is Ivan's substitute
INACTIVE_SIM, INACTIVE_MANAGERS_SIM = "+79181110009", "+79181110010"
CLIENT = "+79891234567"
SIM_PORT, OTHER_SIM_PORT = 5301, 5302


@pytest.fixture
def carriers_silent(silent):
    """Every test carrier's port bound and watched: what a refusal must never reach."""
    return {ip: silent(ip, TRUNK_PORT) for ip in (TRUNK_IP, NATIONAL_TRUNK_IP, STRICT_TRUNK_IP)}


def nothing_reached(carriers) -> None:
    for ip, peer in carriers.items():
        assert peer.received() == [], f"carrier {ip} received a request"


def shows(number: str, carrier_ip: str, client: str = CLIENT,
          sim_ports: tuple[int, ...] = (SIM_PORT, OTHER_SIM_PORT)) -> tuple[Check, ...]:
    """What a carrier must receive: the client in its R-URI, `number` as From and PAI."""
    return (request_line("INVITE", client, carrier_ip),
            Check("From", f"<sip:{literal(number)}@"),
            Check("P-Asserted-Identity", f"^ *<sip:{literal(number)}@"),
            # the identity headers the SIM sent are gone
            Check("P-Asserted-Identity", "79990000000", present=False),
            Check("P-Preferred-Identity", ".", present=False),
            Check("Remote-Party-ID", ".", present=False),
            # the SIM itself stays hidden: neither its MSISDN nor its port in the Contact
            Check("Contact", "9181110", present=False),
            Check("Contact", f":({'|'.join(map(str, sim_ports))})[;>]", present=False))


def carrier(sipp, ip, checks=(), flow="outbound_call", name="trunk_uas.xml"):
    return sipp(flow, name, local_ip=ip, local_port=TRUNK_PORT, checks=checks).start()


def sim_calls(sipp, stack, sim, called, flow="outbound_call", checks=(), password=None):
    return sipp(flow, "sim_uac.xml", local_ip=SIM_IP, local_port=SIM_PORT, service=sim,
                auth=(sim, password or demo_password(sim)), checks=checks,
                keys={"realm": stack.config.realm, "called": called})


def sim_refused(sipp, stack, sim, called, code, reason, caller=None, password=None):
    return sipp("outbound_refused", "sim_uac.xml", local_ip=SIM_IP, local_port=SIM_PORT,
                auth=(sim, password or demo_password(sim)),
                keys={"realm": stack.config.realm, "called": called, "caller": caller or sim},
                values={"CODE": str(code), "REASON": reason})


# -- caller ID back --------------------------------------------------------------------

@pytest.mark.parametrize("manager", [IVAN, BORIS], ids=["Ivan", "Boris substituting"])
def test_client_sees_the_district_number(stack, sipp, manager):
    far = carrier(sipp, TRUNK_IP, shows(SOCHI_NUMBER, TRUNK_IP))
    sim_calls(sipp, stack, manager, "89891234567").run()
    far.succeeded()


def test_override_leaves_through_its_owner_in_its_number_format(stack, sipp):
    # south-link writes numbers the national way: 8XXXXXXXXXX for both parties.
    far = carrier(sipp, NATIONAL_TRUNK_IP, shows("88612100103", NATIONAL_TRUNK_IP, "89891234567"))
    sim_calls(sipp, stack, PAVEL, "+79891234567").run()
    far.succeeded()


def test_carrier_challenge_is_answered_with_the_trunk_credentials(stack, sipp):
    far = carrier(sipp, NATIONAL_TRUNK_IP, flow="outbound_carrier_auth",
                  checks=(Check("Proxy-Authorization", 'username="kuban-realty"'),
                          Check("Proxy-Authorization", 'realm="south\\.example"'),
                          Check("From", "<sip:88612100103@")))
    sim_calls(sipp, stack, PAVEL, "89891234567").run()  # its BYE must still pass
    far.succeeded()


def test_a_carrier_challenging_the_bye_gets_the_trunk_credentials(stack, sipp):
    far = carrier(sipp, NATIONAL_TRUNK_IP, flow="outbound_carrier_auth_bye",
                  checks=(Check("Proxy-Authorization", 'username="kuban-realty"'),
                          Check("Proxy-Authorization", 'realm="south\\.example"')))
    sim_calls(sipp, stack, PAVEL, "89891234567").run()  # the SIM's BYE gets 200
    far.succeeded()


def test_after_a_carrier_challenge_the_dialog_keeps_its_cseq_in_order(stack, sipp):
    """Our answer to the carrier's 407 adds a request to the dialog: the SIM's ACK,
    re-INVITE and BYE must reach the carrier with CSeq moved up by one (the carrier's
    scenario checks each), and the carrier's own re-INVITE must still reach the SIM."""
    far = carrier(sipp, NATIONAL_TRUNK_IP, flow="outbound_carrier_auth_reinvite",
                  checks=(Check("From", "<sip:88612100103@"),))
    sim_calls(sipp, stack, PAVEL, "89891234567", flow="outbound_reinvite",
              checks=(Check("To", f"<sip:{literal(PAVEL)}@{literal(stack.config.realm)}>"),)).run()
    far.succeeded()


def test_owner_trunk_out_of_service_fails_over_to_an_eligible_trunk(stack, sipp, silent):
    strict = silent(STRICT_TRUNK_IP, TRUNK_PORT)
    failing = carrier(sipp, TRUNK_IP, flow="trunk_failover")
    # Olga's number is kuban-telecom's; south-link accepts it, west-line would not.
    backup = carrier(sipp, NATIONAL_TRUNK_IP,
                     (request_line("INVITE", "89891234567", NATIONAL_TRUNK_IP),
                      Check("From", f"<sip:{literal(KRASNODAR_NUMBER)}@")))
    sim_calls(sipp, stack, OLGA, "89891234567").run()
    failing.succeeded()
    backup.succeeded()
    assert strict.received() == []


def test_no_failover_to_a_trunk_that_refuses_foreign_caller_ids(stack, sipp, silent):
    kuban, strict = silent(TRUNK_IP, TRUNK_PORT), silent(STRICT_TRUNK_IP, TRUNK_PORT)
    failing = carrier(sipp, NATIONAL_TRUNK_IP, flow="trunk_failover")
    # RFC 3261 16.7: a proxy turns a final 503 into 500 (tm does so).
    sim_refused(sipp, stack, PAVEL, "89891234567", 500, ".*").run()
    failing.succeeded()
    assert kuban.received() == [] and strict.received() == []


def test_emergency_goes_to_the_default_trunk_showing_the_sims_own_number(stack, sipp):
    far = carrier(sipp, TRUNK_IP, (request_line("INVITE", "112", TRUNK_IP),
                                   Check("From", f"<sip:{literal(BORIS)}@")))
    sim_calls(sipp, stack, BORIS, "112").run()
    far.succeeded()


# -- in-dialog -------------------------------------------------------------------------

def test_bye_from_the_client_reaches_the_sim_as_its_own_identity(stack, sipp):
    far = sipp("outbound_bye_from_trunk", "trunk_uas.xml", local_ip=TRUNK_IP,
               local_port=TRUNK_PORT, checks=shows(SOCHI_NUMBER, TRUNK_IP)).start()
    sim_calls(sipp, stack, BORIS, "89891234567", flow="outbound_bye_from_trunk",
              checks=(Check("To", f"<sip:{literal(BORIS)}@{literal(stack.config.realm)}>"),
                      Check("From", f"<sip:{literal('89891234567')}@"))).run()
    far.succeeded()


# -- internal calls and the loop -------------------------------------------------------

def test_sim_to_sim_rings_directly_without_rewriting(stack, sipp, register, carriers_silent):
    register(BORIS, OTHER_SIM_PORT)
    boris = sipp("inbound_call", "sim_uas.xml", local_ip=SIM_IP, local_port=OTHER_SIM_PORT,
                 checks=(Check("From", f'^ *"Manager" <sip:{literal(IVAN)}@'),)).start()
    sim_calls(sipp, stack, IVAN, "89181110004").run()
    boris.succeeded()
    nothing_reached(carriers_silent)


def test_sim_to_own_did_rings_that_district_showing_the_sim(stack, sipp, register, carriers_silent):
    register(OLGA, OTHER_SIM_PORT)
    olga = sipp("inbound_call", "sim_uas.xml", local_ip=SIM_IP, local_port=OTHER_SIM_PORT,
                checks=(Check("From", f'^ *"Krasnodar" <sip:{literal(BORIS)}@'),)).start()
    sim_calls(sipp, stack, BORIS, "88612100101").run()
    olga.succeeded()
    nothing_reached(carriers_silent)


def test_the_client_calling_back_the_number_shown_reaches_the_same_district(stack, sipp, register):
    far = carrier(sipp, TRUNK_IP, shows(SOCHI_NUMBER, TRUNK_IP))
    sim_calls(sipp, stack, BORIS, "89891234567").run()
    far.succeeded()
    register(IVAN, OTHER_SIM_PORT)
    ivan = sipp("inbound_call", "sim_uas.xml", local_ip=SIM_IP, local_port=OTHER_SIM_PORT,
                checks=(Check("From", f'^ *"Sochi" <sip:{literal(CLIENT)}@'),)).start()
    sipp("inbound_call", "trunk_uac.xml", local_ip=TRUNK_IP,
         keys={"called": SOCHI_NUMBER, "caller": CLIENT}).run()
    ivan.succeeded()


# -- refusals: nothing reaches a carrier ------------------------------------------------

@pytest.mark.parametrize("sim, called, code, reason, caller, password", [
    (BORIS, "89891234567", 403, "Forbidden", None, "wrong"),
    (INACTIVE_SIM, "89891234567", 403, "SIM Inactive", None, None),
    (INACTIVE_MANAGERS_SIM, "89891234567", 403, "Manager Inactive", None, None),
    (BORIS, "+441234567890", 403, "International Calls Disabled", None, None),
    (BORIS, "88091234567", 403, "Premium Rate Calls Disabled", None, None),
    (BORIS, "+77012345678", 403, "Calls To Kazakhstan Disabled", None, None),
    (BORIS, "86012345678", 403, "Calls To Kazakhstan Disabled", None, None),
    (BORIS, "12", 404, "Number Dialed Incorrectly", None, None),
    (BORIS, "1050012345", 404, "Number Dialed Incorrectly", None, None),  # +7 10x: no range
    (BORIS, "89891234567", 403, "Forbidden", IVAN, None),  # From forged as another SIM
], ids=["wrong password", "inactive SIM", "inactive manager", "international", "premium",
        "kazakhstan", "kazakhstan +7 6xx", "unparsable", "outside russian ranges", "forged From"])
def test_refused_calls_never_reach_a_carrier(stack, sipp, carriers_silent, sim, called, code,
                                             reason, caller, password):
    sim_refused(sipp, stack, sim, called, code, reason, caller, password).run()
    nothing_reached(carriers_silent)


def test_reinvites_both_ways_carry_each_sides_own_view(stack, sipp):
    far = sipp("outbound_reinvite", "trunk_uas.xml", local_ip=TRUNK_IP, local_port=TRUNK_PORT,
               checks=(Check("From", f"<sip:{literal(SOCHI_NUMBER)}@"),
                       Check("From", "Manager", present=False))).start()
    sim_calls(sipp, stack, BORIS, "89891234567", flow="outbound_reinvite",
              checks=(Check("To", f"<sip:{literal(BORIS)}@{literal(stack.config.realm)}>"),)).run()
    far.succeeded()
