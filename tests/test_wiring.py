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


def test_route_initial_gets_the_fields_the_adapter_parses_and_relays_on_its_answer():
    call = re.search(r'python_exec\("route_initial", "([^"]*)"\);\n\tif \(\$rc == (\d+)\) \{\n'
                     r'\t\troute\(RELAY_INITIAL\);', CFG)
    assert call, "kamailio.cfg must pass REQUEST_FIELDS and relay on RELAY"
    assert call.group(1) == adapter.REQUEST_FIELDS and int(call.group(2)) == adapter.RELAY
    relay = CFG[CFG.index("route[RELAY_INITIAL]"):]
    relay = relay[:relay.index("\n}")]
    for name in adapter.IDENTITY_HEADERS:
        assert f'remove_hf("{name}");' in relay


def test_kamailio_cfg_challenges_the_sources_python_marked():
    table, value = adapter.SOURCES_TABLE, adapter.NOT_A_TRUNK
    assert re.search(rf'modparam\("htable", "htable", "{table}=>[^"]*autoexpire=\d+;', CFG)
    block = CFG[CFG.index(f"if ($sht({table}=>$si) == {value}"):]
    block = block[:block.index("}")]
    assert 'auth_challenge(REALM, "1")' in block and 'is_present_hf("Proxy-Authorization")' in block
    assert CFG.index(block) < CFG.index('python_exec("route_initial"')
