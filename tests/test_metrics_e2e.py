"""Prometheus metrics end to end (README, Metrics): after a known SIPp load the scrape shows
exactly the calls, outcomes, hunting steps, failovers and refusals that load made, and
Kamailio's own statistics and the workers' cache figures beside them."""

from __future__ import annotations

import os
import re
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from prometheus_client.parser import text_string_to_metric_families

from harness.prometheus import CONFIG as PROMETHEUS_CONFIG, Prometheus, dashboard_queries
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


# -- the real Prometheus, with the shipped scrape config and dashboard -------------------

@pytest.fixture(scope="module")
def prometheus(stack, tmp_path_factory):
    server = Prometheus(tmp_path_factory.mktemp("prometheus"),
                        f"{stack.config.metrics_addr}:{stack.config.metrics_port}", interval_s=0.5)
    server.start()
    yield server
    server.stop()


def test_the_scrape_config_is_valid():
    done = subprocess.run(["promtool", "check", "config", str(PROMETHEUS_CONFIG)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_prometheus_stores_what_the_proxy_serves(stack, sipp, register, prometheus):
    """Debian's Prometheus, with docker/prometheus's config, scrapes the same counts as the
    exposition parsed directly, after calls of its own (none while comparing)."""
    register(IVAN, SIM_A)
    sim = answering_sim(sipp, SIM_A)
    call_from_trunk(sipp, SOCHI_DID).run()
    sim.succeeded()
    sim_refused(sipp, stack, BORIS, "+441234567890", 403, "International Calls Disabled").run()
    direct = scrape(stack)
    prometheus.scraped_after(time.time())
    for name in ("kamailio_pbx_calls_total", "kamailio_pbx_refusals_total",
                 "kamailio_pbx_hunt_steps_total"):
        stored = prometheus.values(name)
        served = {labels: value for (n, labels), value in direct.items() if n == name}
        assert stored == served and served, name
    assert calls(direct, "inbound", "answered", SOCHI) >= 1


def test_every_dashboard_query_is_valid_and_has_data(stack, prometheus):
    """Each panel of docker/grafana/cloud-pbx.json is PromQL Prometheus accepts, and finds
    data for every metric the proxy serves."""
    served = {name for name, _ in scrape(stack)}
    prometheus.scraped_after(time.time())
    queries = dashboard_queries("1m")
    assert len(queries) >= 10
    for title, expr, _ in queries:
        body = prometheus.query(expr)
        assert body["status"] == "success", (title, expr, body.get("error"))
        metric = re.search(r"kamailio_\w+", expr)[0]
        if metric in served:
            assert body["data"]["result"], (title, expr)
    assert {re.search(r"kamailio_\w+", e)[0] for _, e, _ in queries} <= served | {
        "kamailio_pbx_failovers_total"}, "a panel names a metric the proxy does not serve"
