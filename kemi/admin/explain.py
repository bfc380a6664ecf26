"""pbxctl explain: the decision the proxy would make right now, by the proxy's own decision core."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from ..config import Config
from ..db import Database
from ..decision import Authenticate, Call, CallOut, Reply, Ring, check_sim, decide
from ..directory import Directory
from ..phone import to_e164
from ..stack import StackError, kamcmd
from .fields import InputError, phone_number


def explain(admin, args) -> dict:
    config = Config.from_env()
    # A Directory like a worker's, fresh: no cache to be stale.
    directory = Directory(Database(admin.session.dsn), ttl=60, size=1000)
    source_ip, sim, source = "", None, "untrusted address (not a trunk)"
    if args.sim:
        username = phone_number("sim", args.sim, admin.region)
        sim = directory.sim(username)
        refusal = check_sim(sim)
        if refusal is not None:
            return {"source": f"SIM {username}", "decision": "refuse",
                    "reply": f"{refusal.code} {refusal.reason}"}
        source = f"SIM {username} (authenticated)"
    else:
        trunk_name = args.source[1] if args.source else _did_trunk(admin, args.called)
        if trunk_name:
            trunk = next((t for t in directory.trunks() if t.name == trunk_name), None)
            if trunk is None:
                raise InputError("trunk", trunk_name, "does not exist")
            source_ip = str(ipaddress.ip_network(trunk.sources[0]).network_address)
            source = f"trunk {trunk.name} ({trunk.carrier}, from {source_ip})"
    call = Call("INVITE", source_ip, args.called, args.caller, sim=sim)
    decision = decide(call, directory, admin.region)
    result = {"source": source, "from": args.caller, "to": args.called}
    if isinstance(decision, Reply):
        result.update(decision="refuse", reply=f"{decision.code} {decision.reason}")
    elif isinstance(decision, Authenticate):
        result.update(decision="challenge", reply="407 Proxy Authentication Required",
                      why="only trunks are trusted by address; anyone else must authenticate as a SIM")
    elif isinstance(decision, Ring):
        registered = _registrations(decision.targets, args.ctl or str(
            Path(config.state_dir) / "kamailio" / "kamailio_ctl"))
        result.update(decision="ring SIMs in order",
                      caller_id_shown=decision.caller,
                      display_name=decision.display if decision.display is not None else "(unchanged)",
                      hunt=[f"{sim} ({registered[sim]})" for sim in decision.targets])
    elif isinstance(decision, CallOut):
        result.update(decision="call out", called=decision.called, caller_id_shown=decision.caller,
                      anonymous=decision.anonymous,
                      trunks=[f"{a.trunk}: {a.ruri}" for a in decision.attempts])
    return result


def _did_trunk(admin, called: str) -> str | None:
    """The trunk a DID arrives on: the natural source when explain is given none."""
    number = to_e164(called, admin.region)
    rows = admin.session.run("did_list", {"key": number, "company_id": None}) if number else []
    return rows[0]["trunk"] if rows else None


def _registrations(sims, ctl: str) -> dict[str, str]:
    """Whether each SIM is registered now, asked of the running proxy over its ctl socket."""
    status = {}
    for sim in sims:
        try:
            kamcmd(ctl, "ul.lookup", "location", "s:" + sim, timeout=3)
            status[sim] = "registered"
        except StackError as exc:
            if "not found" not in str(exc).lower():
                reason = (str(exc).strip().splitlines() or ["no answer"])[-1]
                return {s: f"registration unknown: proxy not reachable at {ctl} ({reason})"
                        for s in sims}
            status[sim] = "not registered"
    return status
