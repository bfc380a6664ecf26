"""kamailio.cfg and the Python adapter name the same routes, methods, AVPs, dialog variables,
shared variables, htables and return codes; the full-KEMI wiring uses kamailio.cfg's literals."""

from __future__ import annotations

import re
import subprocess

import pytest

from benchmarks import kemi_wiring
from benchmarks.kemi_wiring import KemiRouter
from kemi import adapter
from kemi.adapter import Router
from kemi.config import ROOT
from kemi.stack import KAMAILIO

CFG = (ROOT / "kamailio.cfg").read_text()
ADAPTER = (ROOT / "kemi" / "adapter.py").read_text()


def block(header: str) -> str:
    start = CFG.index(header)
    return CFG[start:CFG.index("\n}", start)]


def test_every_python_exec_resolves_to_a_router_method():
    names = re.findall(r'python_exec\("([A-Za-z_]+)"', CFG)
    assert names, "kamailio.cfg calls no Python"
    for name in names:
        assert callable(getattr(Router, name, None)), f"python_exec({name!r}) has no Router method"


def test_every_failure_route_exists_in_both_wirings():
    defined = set(re.findall(r"^failure_route\[([A-Z_]+)\]", CFG, re.M))
    named = {v for k, v in vars(adapter).items() if k.startswith("FAILURE_ROUTE_")}
    assert named and named <= defined, f"named {named}, cfg defines {defined}"
    armed = set(re.findall(r't_on_failure\("([A-Z_]+)"\)', CFG))
    assert armed == named  # every failure route armed is one the adapter knows
    for name in named:  # with -A FULL_KEMI the failure routes are KEMI router methods
        assert callable(getattr(KemiRouter, name, None)), f"KemiRouter lacks {name}"


def test_the_cfg_is_accepted_by_kamailio_in_both_wirings():
    for extra in ([], ["-A", "FULL_KEMI"], ["-A", "FLOOD_OFF"]):
        done = subprocess.run([KAMAILIO, "-c", "-f", str(ROOT / "kamailio.cfg"), *extra],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]


def test_route_initial_gets_the_fields_the_adapter_parses():
    call = re.search(r'python_exec\("route_initial", "([^"]*)"\);', CFG)
    assert call, "kamailio.cfg must pass REQUEST_FIELDS to route_initial"
    # kamailio.cfg escapes '|' inside the free-text fields: $(fU{s.replace,|,%7C}) is $fU.
    assert adapter.ESCAPED == "%7C"
    plain = call.group(1).replace("{s.replace,|,%7C}", "")
    fields = [re.sub(r"^\$\((\w+(\([^)]*\))?)\)$", r"$\1", f) for f in plain.split(adapter.SEPARATOR)]
    assert fields == list(adapter.REQUEST_FIELDS)


def test_route_initial_answers_are_handled_by_kamailio_cfg():
    switch = CFG[CFG.index("switch ($rc) {"):]
    switch = switch[:switch.index("\n\t}")]
    for code, action in ((adapter.RELAY, "route(CALL_OUT);"), (adapter.RELAY_TO_SIM, "route(RING_SIM);"),
                         (adapter.AUTH_FAILED_RC, "route(AUTH_FAILED);"),
                         (adapter.SAVE_REGISTRATION, 'save("location")'),
                         (adapter.CHALLENGE_RC, 'auth_challenge(REALM, "1")')):
        case = re.search(rf"case {code}:(.*?)break;", switch, re.S)
        assert case and action in case.group(1), (code, action)


def test_the_plan_fields_are_read_where_python_writes_them():
    """$avp(plan): CALL_OUT reads ten fields, RING_SIM nine, in the adapter's order (then:
    adapter.MASKED, the call's direction and district for the metrics, the call record's
    key fields and, for a SIM, its username)."""
    avp = adapter.PLAN_AVP[len("$avp("):-1]
    assert set(re.findall(rf"\$\(avp\({avp}\){{s\.select,(\d),\|}}\)", block("route[CALL_OUT]"))) \
        == {str(i) for i in range(10)}
    assert set(re.findall(rf"\$\(avp\({avp}\){{s\.select,(\d),\|}}\)", block("route[RING_SIM]"))) \
        == {str(i) for i in range(9)}
    assert f'{{s.select,6,|}}) == "{adapter.MASKED}"' in block("route[CALL_OUT]")
    assert f'{{s.select,4,|}}) == "{adapter.MASKED}"' in block("route[RING_SIM]")
    assert adapter.SEPARATOR == "|"


def test_avps_and_dialog_variables_are_spelled_alike():
    for name in (adapter.HUNT_AVP, adapter.EGRESS_AVP, adapter.EGRESS_AUTH_AVP,
                 adapter.DIALOG_TRUNK_VAR, adapter.UAC_USER_AVP, adapter.UAC_PASSWORD_AVP):
        assert name in CFG, name
    assert f'modparam("uac", "auth_username_avp", "{adapter.UAC_USER_AVP}")' in CFG
    assert f'modparam("uac", "auth_password_avp", "{adapter.UAC_PASSWORD_AVP}")' in CFG
    for name in (kemi_wiring.CALLER_SIDE_VAR, kemi_wiring.CALLEE_SIDE_VAR,
                 kemi_wiring.MEDIA_BACK_AVP):
        assert name in CFG, name
    # the full-KEMI wiring's media flags, flag numbers and NAT tests are kamailio.cfg's
    assert f'"{kemi_wiring.MEDIA_FLAGS}' in CFG
    assert f"#!define FLT_OFFERED {kemi_wiring.FLT_OFFERED}" in CFG
    assert f"#!define FLB_NAT {kemi_wiring.FLB_NAT}" in CFG
    assert f"#!define FLB_PING {kemi_wiring.FLB_PING}" in CFG
    assert f'nat_uac_test("{kemi_wiring.NAT_TESTS}")' in CFG
    assert f'python_exec("hunt_next", "{adapter.HUNT_AVP}")' in CFG
    assert f'python_exec("egress_next", "{adapter.EGRESS_AVP}|$T_reply_code|{adapter.EGRESS_AUTH_AVP}")' in CFG
    assert f'python_exec("indialog_auth", "{adapter.DIALOG_TRUNK_VAR}|$T_reply_code")' in CFG


def test_htables_and_shared_variables_named_by_python_exist_in_kamailio_cfg():
    for table in (adapter.REFUSALS_TABLE, adapter.PENDING_TABLE, adapter.AUTH_OK_TABLE,
                  adapter.STATS_TABLE, adapter.DB_GATE_TABLE):
        assert re.search(rf'modparam\("htable", "htable", "{table}=>', CFG), table
    nets, loaded = (v[len("$shv("):-1] for v in (adapter.TRUNK_NETWORKS_VAR,
                                                  adapter.TRUNKS_LOADED_VAR))
    assert f'modparam("pv", "shvset", "{nets}=s:")' in CFG
    assert f'modparam("pv", "shvset", "{loaded}=i:0")' in CFG
    assert f"$sht({adapter.AUTH_OK_TABLE}=>$si::$au) = 1" in block("route[AUTHENTICATED]")
    assert re.search(rf'modparam\("htable", "htable", "{adapter.SIMS_TABLE}=>', CFG)
    sims_loaded = adapter.SIMS_LOADED_VAR[len("$shv("):-1]
    assert f'modparam("pv", "shvset", "{sims_loaded}=i:0")' in CFG
    verify = block("route[VERIFY_SIM]")
    assert f"$sht({adapter.SIMS_TABLE}=>$au)" in verify
    for state in (adapter.SIM_ACTIVE, adapter.SIM_INACTIVE):
        assert f'$var(state) != "{state}"' in verify or f'$var(state) == "{state}"' in verify


def test_kamailio_cfg_challenges_non_trunk_sources_before_python():
    assert f'is_in_subnet("$si", "{adapter.TRUNK_NETWORKS_VAR}")' in CFG
    untrusted = block("route[UNTRUSTED]")
    assert 'auth_challenge(REALM, "1")' in untrusted and 'is_present_hf("Proxy-Authorization")' in untrusted
    assert CFG.index(f"{adapter.TRUNKS_LOADED_VAR} == 1) {{\n\t\troute(UNTRUSTED)") \
        < CFG.index('python_exec("route_initial"')


def test_the_identity_headers_are_removed_before_relaying():
    relay = block("route[RELAY_INITIAL]")
    for name in kemi_wiring.IDENTITY_HEADERS:
        assert f'remove_hf("{name}");' in relay


def test_the_full_kemi_wiring_uses_kamailio_cfgs_literals():
    assert f'mf_process_maxfwd_header("{kemi_wiring.MAX_FORWARDS}")' in CFG
    assert f'sanity_check("{kemi_wiring.SANITY_CHECKS}", "{kemi_wiring.SANITY_URIS}")' in CFG
    assert f"$(rU{{s.len}}) > {kemi_wiring.FIELD_MAX}" in CFG


def test_the_change_watcher_runs_python_in_both_wirings():
    assert re.search(r'modparam\("rtimer", "exec", "timer=watch;route=WATCH"\)', CFG)
    assert 'python_exec("watch_changes")' in block("route[WATCH]")
    assert re.search(r'modparam\("rtimer", "exec", "timer=watch;route=watch_changes"\)', CFG)
    stray = re.search(r'modparam\("tm", "on_sl_reply", "(\w+)"\)', CFG).group(1)
    assert f"onreply_route[{stray}]" in CFG and callable(getattr(KemiRouter, stray))


def test_ksr_is_touched_by_one_module():
    for path in (ROOT / "kemi").rglob("*.py"):
        text = path.read_text()
        if path.name in ("adapter.py", "handler.py"):
            continue
        assert "ksr." not in text and "KSR." not in text, path
    assert "import KSR" in (ROOT / "kemi" / "handler.py").read_text()
    assert ADAPTER.count("import KSR") == 0  # handed in, so tests drive it with a fake


def test_the_package_imports_no_tests_and_the_core_no_data_access():
    for path in list((ROOT / "kemi").rglob("*.py")) + list((ROOT / "benchmarks").rglob("*.py")):
        text = path.read_text()
        assert not re.search(r"^\s*(from tests|import tests|from \.\.tests)", text, re.M), path
    decision = (ROOT / "kemi" / "decision.py").read_text()
    imports = set(re.findall(r"^from \.(\w+) import", decision, re.M))
    assert imports <= {"model", "phone", "masking"}, imports  # masking: pure, no I/O either
    masking = (ROOT / "kemi" / "masking.py").read_text()
    assert not re.findall(r"^from \.(\w+) import", masking, re.M)


def test_the_metrics_python_sets_are_declared_in_kamailio_cfg():
    cfg = (ROOT / "kamailio.cfg").read_text()
    for name in (adapter.REFUSALS, adapter.FAILOVERS, *adapter.WORKER_GAUGES, adapter.DB_WAITING):
        assert re.search(rf'"prom_(counter|gauge)", "name={name};', cfg), name


def test_every_setting_reaches_the_proxy_container():
    """docker/compose.yml passes each PBX_* variable through: one left out would be ignored
    in the container without a word."""
    from dataclasses import fields
    from kemi.config import Config
    compose = (ROOT / "docker" / "compose.yml").read_text()
    # the private cluster's port and the measurement-only wiring have no place in the image
    for f in fields(Config):
        if f.name not in ("pg_port", "wiring"):
            assert f"PBX_{f.name.upper()}:" in compose, f.name


def test_the_http_ports_cannot_be_the_sip_ports():
    """kamailio.cfg drops SIP arriving at the metrics and XML-RPC ports: one set to the SIP
    port would silence the proxy, so the configuration refuses it, naming both."""
    from kemi.config import Config, ConfigError
    for environ in ({"PBX_METRICS_PORT": "5060"}, {"PBX_RPC_PORT": "5061"}):
        with pytest.raises(ConfigError, match="must differ from PBX_SIP_PORT and PBX_TLS_PORT"):
            Config.from_env(environ)
    Config.from_env({"PBX_METRICS_PORT": "0", "PBX_TLS_PORT": "0"})  # off: nothing to clash
