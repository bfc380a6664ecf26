"""pbxctl explain and the live proxy agree: explain first, then place the same call for real."""

from __future__ import annotations

import io
import json
import re

from kemi.admin.cli import main

from .conftest import SIM_IP, TRUNK_IP, TRUNK_PORT, demo_password
from harness.sipp import Check, literal, request_line

IVAN, BORIS, CLIENT, SOCHI_DID = "+79181110003", "+79181110004", "+79891234567", "+78622550101"


def explain(stack, *argv) -> dict:
    out = io.StringIO()
    ctl = stack.proxy.run_dir / "kamailio_ctl"
    assert main(["explain", *argv, "--dsn", stack.dsn, "--ctl", str(ctl), "--json"], out=out) == 0
    return json.loads(out.getvalue())


def test_inbound_explained_then_rung(stack, sipp, register):
    register(IVAN, 5201)
    said = explain(stack, "--from", "89891234567", "--to", "8 862 255-01-01")
    assert said["hunt"] == [f"{IVAN} (registered)", f"{BORIS} (not registered)"]
    ivan = sipp("inbound_call", "sim_uas.xml", local_ip=SIM_IP, local_port=5201,
                checks=(Check("From", f'"{said["display_name"]}" '
                                      f'<sip:{literal(said["caller_id_shown"])}@'),)).start()
    sipp("inbound_call", "trunk_uac.xml", local_ip=TRUNK_IP,
         keys={"called": "88622550101", "caller": "89891234567"}).run()
    ivan.succeeded()


def test_outbound_explained_then_placed(stack, sipp):
    said = explain(stack, "--from", BORIS, "--to", "89891234567", "--sim", BORIS)
    trunk, ruri = said["trunks"][0].split(": ")
    user, host = re.match(r"sip:([^@]+)@([^:;]+)", ruri).groups()
    carrier = sipp("outbound_call", "trunk_uas.xml", local_ip=host, local_port=TRUNK_PORT,
                   checks=(request_line("INVITE", user, host),
                           Check("From", f"<sip:{literal(said['caller_id_shown'])}@"))).start()
    sipp("outbound_call", "sim_uac.xml", local_ip=SIM_IP, local_port=5301, service=BORIS,
         auth=(BORIS, demo_password(BORIS)),
         keys={"realm": stack.config.realm, "called": "89891234567"}).run()
    carrier.succeeded()
    assert trunk == "kuban-telecom"


def test_token_explained_then_dialled(stack, sipp, monkeypatch):
    """A SIM redials a client from its call history (a token): explain decodes it with the
    proxy's own key file, and the carrier gets the very number explain named."""
    monkeypatch.setenv("PBX_MASK_KEYS_FILE", stack.config.mask_keys_file)
    monkeypatch.delenv("PBX_MASK_KEYS", raising=False)
    out = io.StringIO()
    assert main(["mask", "--company", "Kuban Realty", CLIENT, "--dsn", stack.dsn], out=out) == 0
    token = out.getvalue().strip()
    said = explain(stack, "--from", BORIS, "--to", token, "--sim", BORIS)
    assert said["token"] == f"decodes to {CLIENT}" and said["called"] == CLIENT
    trunk, ruri = said["trunks"][0].split(": ")
    user, host = re.match(r"sip:([^@]+)@([^:;]+)", ruri).groups()
    carrier = sipp("outbound_call", "trunk_uas.xml", local_ip=host, local_port=TRUNK_PORT,
                   checks=(request_line("INVITE", user, host),)).start()
    sipp("outbound_call", "sim_uac.xml", local_ip=SIM_IP, local_port=5303, service=BORIS,
         auth=(BORIS, demo_password(BORIS)),
         keys={"realm": stack.config.realm, "called": token}).run()
    carrier.succeeded()


def test_refusal_explained_then_refused(stack, sipp):
    said = explain(stack, "--from", CLIENT, "--to", "+78612999999", "--source", "trunk", "kuban-telecom")
    code, reason = said["reply"].split(" ", 1)
    sipp("inbound_refused", "trunk_uac.xml", local_ip=TRUNK_IP,
         keys={"called": "+78612999999", "caller": CLIENT},
         values={"CODE": code, "REASON": reason}).run()


def test_explain_says_when_the_proxy_cannot_be_asked(stack):
    out = io.StringIO()
    main(["explain", "--from", CLIENT, "--to", SOCHI_DID, "--dsn", stack.dsn,
          "--ctl", "/nonexistent/ctl", "--json"], out=out)
    assert all("registration unknown: proxy not reachable" in h for h in json.loads(out.getvalue())["hunt"])
