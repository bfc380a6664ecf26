"""kamailio.cfg and the Python adapter name the same routes and methods."""

from __future__ import annotations

import re

from kemi import adapter
from kemi.adapter import Router
from kemi.kemi_wiring import KemiRouter
from kemi.config import ROOT

CFG = (ROOT / "kamailio.cfg").read_text()


def test_every_python_exec_resolves_to_a_router_method():
    names = re.findall(r'python_exec\("([A-Za-z_]+)"', CFG)
    assert names, "kamailio.cfg calls no Python"
    for name in names:
        assert callable(getattr(Router, name, None)), f"python_exec({name!r}) has no Router method"


def test_every_failure_route_armed_from_python_exists_in_both_wirings():
    defined = set(re.findall(r"^failure_route\[([A-Z_]+)\]", CFG, re.M))
    armed = {v for k, v in vars(adapter).items() if k.startswith("FAILURE_ROUTE_")}
    assert armed and armed <= defined, f"armed {armed}, cfg defines {defined}"
    # With -A FULL_KEMI the failure routes are methods of the KEMI router.
    for name in armed:
        assert callable(getattr(KemiRouter, name, None)), f"KemiRouter lacks {name}"


def test_the_cfg_is_accepted_by_kamailio():
    import subprocess

    from kemi.stack import KAMAILIO
    done = subprocess.run([KAMAILIO, "-c", "-f", str(ROOT / "kamailio.cfg")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_full_kemi_cfg_is_accepted_by_kamailio():
    import subprocess

    from kemi.stack import KAMAILIO
    done = subprocess.run([KAMAILIO, "-c", "-f", str(ROOT / "kamailio.cfg"), "-A", "FULL_KEMI"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_route_initial_gets_the_fields_the_adapter_parses_and_acts_on_its_answers():
    call = re.search(r'python_exec\("route_initial", "([^"]*)"\);\n(.*?)\n\texit;', CFG, re.S)
    assert call, "kamailio.cfg must pass REQUEST_FIELDS to route_initial"
    assert call.group(1) == adapter.REQUEST_FIELDS
    answers = call.group(2)
    for code, route in ((adapter.RELAY, "RELAY_INITIAL"), (adapter.RELAY_TO_SIM, "RELAY_INITIAL"),
                        (adapter.AUTH_FAILED, "AUTH_FAILED")):
        branch = re.search(rf"\$rc == {code}\) \{{(.*?)\n\t\}}", answers, re.S)
        assert branch and f"route({route});" in branch.group(1), (code, route)
    assert 't_on_branch("TO_SIM")' in re.search(rf"\$rc == {adapter.RELAY_TO_SIM}\) \{{(.*?)\n\t\}}",
                                                answers, re.S).group(1)
    relay = CFG[CFG.index("route[RELAY_INITIAL]"):]
    relay = relay[:relay.index("\n}")]
    for name in adapter.IDENTITY_HEADERS:
        assert f'remove_hf("{name}");' in relay


def test_kamailio_cfg_challenges_non_trunk_sources_before_python():
    """A source outside the published trunk networks without credentials is challenged by
    kamailio.cfg (route UNTRUSTED), before python_exec, once the trunks are known."""
    nets, loaded = (v[len("$shv("):-1] for v in (adapter.TRUNK_NETWORKS_VAR,
                                                  adapter.TRUNKS_LOADED_VAR))
    assert f'modparam("pv", "shvset", "{nets}=s:")' in CFG
    assert f'modparam("pv", "shvset", "{loaded}=i:0")' in CFG
    assert f'is_in_subnet("$si", "{adapter.TRUNK_NETWORKS_VAR}")' in CFG
    untrusted = CFG[CFG.index("route[UNTRUSTED]"):]
    untrusted = untrusted[:untrusted.index("\n}")]
    assert 'auth_challenge(REALM, "1")' in untrusted and 'is_present_hf("Proxy-Authorization")' in untrusted
    assert CFG.index(f"{adapter.TRUNKS_LOADED_VAR} == 1) {{\n\t\troute(UNTRUSTED)") \
        < CFG.index('python_exec("route_initial"')


def test_htables_named_by_python_exist_in_kamailio_cfg():
    for table in (adapter.REFUSALS_TABLE, adapter.PENDING_TABLE, adapter.AUTH_OK_TABLE,
                  adapter.STATS_TABLE, adapter.DB_GATE_TABLE):
        assert re.search(rf'modparam\("htable", "htable", "{table}=>', CFG), table


def test_the_change_watcher_runs_python_in_both_wirings():
    assert re.search(r'modparam\("rtimer", "exec", "timer=watch;route=WATCH"\)', CFG)
    assert 'python_exec("watch_changes")' in CFG[CFG.index("route[WATCH]"):]
    assert callable(getattr(Router, "watch_changes"))
    assert re.search(r'modparam\("rtimer", "exec", "timer=watch;route=watch_changes"\)', CFG)
    stray = re.search(r'modparam\("tm", "on_sl_reply", "(\w+)"\)', CFG).group(1)
    assert f"onreply_route[{stray}]" in CFG and callable(getattr(KemiRouter, stray))
