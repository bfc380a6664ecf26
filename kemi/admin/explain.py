"""pbxctl explain: the decision the proxy would make right now, by the proxy's own decision
core over the same plans a worker holds (loaded afresh: no cache to be stale)."""

from __future__ import annotations

import ipaddress
import time
from datetime import datetime, timezone
from pathlib import Path

from ..config import Config
from ..db import Database
from ..decision import (AUTH_FAILED, CHALLENGE, EMERGENCY_NUMBERS, CallOut, Facts, Reply,
                        Request, Ring, Verified, decide, dialled_number, numbers_to_look_up,
                        sticky_first, sticky_to_look_up)
from ..model import DidPlan
from ..directory import Directory
from ..masking import dialed_token
from ..phone import to_e164
from ..plans import ruri
from ..stack import StackError, kamcmd
from . import keys
from .fields import InputError, phone_number


def explain(admin, args) -> dict:
    config = Config.from_env()
    directory = Directory(Database(admin.session.dsn), ttl=60, size=1000, realm=config.realm)
    directory.refresh()  # a new connection: every snapshot loads
    masker = keys.masker()  # the proxy's keys: tokens made and decoded as it would
    source_ip, auth, source = "", None, "untrusted address (not a trunk)"
    if args.sim:
        username = phone_number("sim", args.sim, admin.region)
        plan = directory.sim(username)
        if plan is None:
            return {"source": f"SIM {username}", "decision": "refuse",
                    "reply": "403 Forbidden", "why": "no such SIM"}
        auth, source_ip = Verified(plan), "0.0.0.0"
        source = f"SIM {username} (authenticated)"
    else:
        trunk_name = args.source[1] if args.source else _did_trunk(admin, args.called)
        if trunk_name:
            trunk = directory.trunk_named(trunk_name)
            if trunk is None:
                raise InputError("trunk", trunk_name, "does not exist")
            source_ip = str(ipaddress.ip_network(trunk.sources[0]).network_address)
            source = f"trunk {trunk.name} ({trunk.carrier}, from {source_ip})"
    trunk = directory.trunk_for_source(source_ip) if source_ip and not args.sim else None
    req = Request("INVITE", source_ip, args.called, args.caller)
    sim = auth.plan if auth is not None else None
    numbers = {n: directory.number(n)
               for n in numbers_to_look_up(req, trunk, admin.region, sim, masker)}
    emergency = (directory.emergency(sim) if sim is not None
                 and args.called in EMERGENCY_NUMBERS else None)
    sticky, now = {}, time.time()
    if trunk is not None:
        client = to_e164(args.caller, admin.region)
        sticky = {c: directory.sticky(c, client)
                  for c in sticky_to_look_up(req, numbers, admin.region)}
    decision = decide(req, Facts(trunk, auth, numbers, emergency, masker, sticky, now),
                      admin.region)
    result = {"source": source, "from": args.caller, "to": args.called}
    if sim is not None and dialed_token(args.called):
        result["token"] = _token(admin, sim, args.called, masker)
    if isinstance(decision, Reply):
        result.update(decision="refuse", reply=f"{decision.code} {decision.reason}")
    elif decision is CHALLENGE:
        result.update(decision="challenge", reply="407 Proxy Authentication Required",
                      why="only trunks are trusted by address; anyone else must authenticate as a SIM")
    elif decision is AUTH_FAILED:
        result.update(decision="refuse", reply="403 Forbidden")
    elif isinstance(decision, Ring):
        registered = _registrations(decision.targets, args.ctl or str(
            Path(config.state_dir) / "kamailio" / "kamailio_ctl"))
        result.update(decision="ring SIMs in order",
                      caller_id_shown=decision.caller,
                      display_name=_unquoted(decision.display) if decision.display else "(unchanged)",
                      hunt=[f"{sim} ({registered[sim]})" for sim in decision.targets])
        did = next((k.did for k in numbers.values() if isinstance(k.did, DidPlan)), None)
        if trunk is not None and did is not None:
            result["sticky"] = _sticky(admin, did, sticky.get(did.company_id), now)
        if decision.masked:  # the district masks: the SIMs see a token (or anonymous)
            result["masked"] = True if masker is not None else (
                "yes, but no keys are configured here (PBX_MASK_KEYS_FILE): the SIMs would see "
                "anonymous, and the proxy refuses to start so")
    elif isinstance(decision, CallOut):
        result.update(decision="call out", called=decision.called, caller_id_shown=decision.caller,
                      anonymous=decision.anonymous,
                      trunks=[f"{h.trunk}: {ruri(h, decision.called)}" for h in decision.hops])
    return result


def _token(admin, sim, called: str, masker) -> str:
    """What a SIM's token decodes to; a decode by hand, so audited as pbxctl unmask is."""
    number = dialled_number(called, sim, masker, admin.region)[0]
    company = admin.session.run("sim_list", {"key": sim.username, "company_id": None})[0]["company"]
    keys.audit(admin, "UNMASK", company=company, token=dialed_token(called),
               decoded=number is not None, sim=sim.username, via="explain")
    if masker is None:
        return "does not decode: no masking keys (PBX_MASK_KEYS_FILE) (404 Number Dialed Incorrectly)"
    if number is None:
        return "does not decode for this company (404 Number Dialed Incorrectly)"
    return f"decodes to {number}"


def _sticky(admin, did: DidPlan, fact, now: float) -> str:
    """Whether the caller's sticky manager rings first, and why (the core's rule)."""
    first, why = sticky_first(did, fact, now)
    if fact is None or not did.sticky_days:
        return f"no: {why}"
    rows = admin.session.run("manager_list", {"key": fact.manager_id, "company_id": None})
    name = f"{rows[0]['name']} (manager {fact.manager_id})" if rows else f"manager {fact.manager_id}"
    when = datetime.fromtimestamp(fact.answered_at, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    call = f"last answered call with {name} on {when}, window {did.sticky_days} days"
    if not first:
        return f"no: {why} ({call})"
    return f"yes: {', '.join(first)} of {name} ring first: {why} ({call})"


def _unquoted(display: str) -> str:
    return display[1:-1].replace('\\"', '"').replace("\\\\", "\\")


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
