"""Prometheus metrics end to end (README, Metrics): after a known SIPp load the scrape shows
exactly the calls, outcomes, hunting steps, failovers and refusals that load made, and
Kamailio's own statistics and the workers' cache figures beside them."""

from __future__ import annotations

import os
import urllib.error
import urllib.request

import pytest

from prometheus_client.parser import text_string_to_metric_families

from harness.sipp import Check, literal
from .conftest import NATIONAL_TRUNK_IP, SIM_IP, TRUNK_IP, TRUNK_PORT
from .test_inbound_e2e import BORIS, IVAN, SOCHI_DID, answering_sim, call_from_trunk
from .test_outbound_e2e import OLGA, carrier, sim_calls, sim_refused

# The full-KEMI wiring (kept for measurement) counts nothing (kemi/stack.py).
pytestmark = pytest.mark.skipif(os.environ.get("PBX_TEST_WIRING") == "kemi",
                                reason="PBX_WIRING=kemi serves no metrics")

SOCHI, KRASNODAR = "Kuban Realty/Sochi", "Kuban Realty/Krasnodar"
SIM_A = 5211


def scrape(stack) -> dict[tuple, float]:
    """Every sample of /metrics: (name, sorted labels) -> value."""
    url = f"http://{stack.config.metrics_addr}:{stack.config.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as answer:
        assert answer.status == 200
        text = answer.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def calls(samples, direction, outcome, district) -> float:
    key = ("kamailio_pbx_calls_total", (("direction", direction), ("district", district),
                                        ("outcome", outcome)))
    return samples.get(key, 0)


def delta(before, after, name, **labels) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0) - before.get(key, 0)


def test_a_known_load_is_counted_exactly(stack, sipp, register):
    before = scrape(stack)
    register(IVAN, SIM_A)
    # inbound, answered
    sim = answering_sim(sipp, SIM_A)
    call_from_trunk(sipp, SOCHI_DID).run()
    sim.succeeded()
    # inbound, Ivan busy and nobody else registered: one hunting step, nobody reachable
    busy = sipp("hunt_busy", "sim_uas.xml", local_ip=SIM_IP, local_port=SIM_A).start()
    sipp("inbound_refused", "trunk_uac.xml", local_ip=TRUNK_IP,
         keys={"called": SOCHI_DID, "caller": "+79891234567"},
         values={"CODE": "480", "REASON": "Temporarily Unavailable"}).run()
    busy.succeeded()
    # outbound, answered, after a failover from kuban-telecom (503) to south-link
    failing = carrier(sipp, TRUNK_IP, flow="trunk_failover")
    backup = carrier(sipp, NATIONAL_TRUNK_IP)
    sim_calls(sipp, stack, OLGA, "89891234567").run()
    failing.succeeded()
    backup.succeeded()
    # refused by the destination policy
    sim_refused(sipp, stack, BORIS, "+441234567890", 403, "International Calls Disabled").run()
    after = scrape(stack)
    assert calls(after, "inbound", "answered", SOCHI) - calls(before, "inbound", "answered", SOCHI) == 1
    assert (calls(after, "inbound", "nobody_reachable", SOCHI)
            - calls(before, "inbound", "nobody_reachable", SOCHI)) == 1
    assert (calls(after, "outbound", "answered", KRASNODAR)
            - calls(before, "outbound", "answered", KRASNODAR)) == 1
    assert delta(before, after, "kamailio_pbx_hunt_steps_total", district=SOCHI) == 1
    assert delta(before, after, "kamailio_pbx_failovers_total",
                 from_trunk="kuban-telecom", to_trunk="south-link") == 1
    assert delta(before, after, "kamailio_pbx_refusals_total",
                 code="403", reason="International Calls Disabled") == 1
    # Kamailio's own statistics, and every worker's cache figures (published once a second)
    names = {name for name, _ in after}
    assert {"kamailio_tmx_UAS_transactions", "kamailio_dialog_active_dialogs",
            "kamailio_shmem_used_size", "kamailio_usrloc_registered_users"} <= names, sorted(names)[:50]
    assert any(name == "kamailio_pbx_cache_hits" for name, _ in after)


def test_only_metrics_are_served_there(stack):
    base = f"http://{stack.config.metrics_addr}:{stack.config.metrics_port}"
    for path in ("/", "/metrics/../etc", "/stats"):
        try:
            urllib.request.urlopen(base + path, timeout=5)
            raise AssertionError(f"{path} was served")
        except urllib.error.HTTPError as refused:
            assert refused.code == 404, (path, refused.code)
    # /RPC2 is the xmlrpc module's (rtpengine ends calls through it on its own port): here
    # route XMLRPC refuses it undispatched (dispatched without arguments, dlg.terminate_dlg
    # answers "Need a Callid"; refused, xmlrpc_reply answers a bare 1)
    request = urllib.request.Request(base + "/RPC2", method="POST", data=(
        b"<?xml version='1.0'?><methodCall><methodName>dlg.terminate_dlg</methodName>"
        b"<params/></methodCall>"), headers={"Content-Type": "text/xml"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        body = answer.read().decode()
    assert "Need a Callid" not in body and "<int>1</int>" in body, body
