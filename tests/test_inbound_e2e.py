"""Inbound calls end to end: carrier trunk -> real Kamailio + PostgreSQL -> SIPp SIMs."""

from __future__ import annotations

from .conftest import NATIONAL_TRUNK_IP, SIM_IP, TRUNK_IP, UNTRUSTED_IP, demo_password
from .sipp import Check, literal

# sql/demo.sql
KRASNODAR_DID = "+78612100101"
KRASNODAR_AD_DID = "+78612100102"
SOCHI_DID = "+78622550101"
NOVOROSSIYSK_DID = "+78617300101"
ANAPA_DID = "+78613350101"
OLGA, PAVEL = "+79181110001", "+79181110002"  # Krasnodar, in hunting order
IVAN, BORIS = "+79181110003", "+79181110004"  # Sochi
NINA, SERGEI = "+79181110005", "+79181110006"  # Novorossiysk
CLIENT = "+79891234567"


def shows_client(district: str, client: str = CLIENT) -> tuple[Check, ...]:
    """The SIM sees the client's E.164 number, the district as display name, no forged PAI."""
    return (Check("From", f'"{literal(district)}" <sip:{literal(client)}@'),)


def test_sim_registers_after_challenge(register):
    register(OLGA, 5201)  # asserts 401 then 200 inside the scenario


def test_wrong_password_is_refused_403(stack, sipp):
    sipp("register_wrong_password", "uac.xml", local_ip=SIM_IP, local_port=5202, service=OLGA,
         auth=(OLGA, "not-" + demo_password(OLGA)), keys={"realm": stack.config.realm}).run()


def test_inbound_did_rings_the_district_manager(register, sipp):
    register(OLGA, 5201)
    sim = sipp("inbound_call", "sim_uas.xml", local_ip=SIM_IP, local_port=5201,
               checks=shows_client("Krasnodar")).start()
    sipp("inbound_call", "trunk_uac.xml", local_ip=TRUNK_IP,
         keys={"called": KRASNODAR_DID, "caller": CLIENT}).run()
    sim.succeeded()
