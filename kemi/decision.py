"""The routing decision: a pure function of the request and the routing data, no KSR, no I/O.

Routing policy (README "Who may call what" is the same table):

| source \\ called number | a DID                  | a corporate SIM's number | anything else               |
|------------------------|------------------------|--------------------------|-----------------------------|
| trusted trunk          | ring the district's    | ring that SIM            | 404 Number Dialed Incorrectly|
|                        | managers in order      |                          |                             |
| any other source       | challenged first (407; 401 for REGISTER); bad credentials 403     |
| authenticated SIM      | 403 Outbound Calls Not Enabled (outbound is the next milestone)    |
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import RoutingData, Sim, Trunk
from .phone import original_called, to_e164


@dataclass(frozen=True)
class Call:
    """What the decision needs to know about an initial request."""

    method: str
    source_ip: str
    ruri_user: str | None
    from_user: str | None
    pai_user: str | None = None
    diversion: str | None = None
    history_info: str | None = None
    sim: Sim | None = None  # set once the request passed digest authentication


@dataclass(frozen=True)
class Reply:
    code: int
    reason: str


@dataclass(frozen=True)
class Authenticate:
    """Verify the digest credentials (challenge when absent), then decide again."""


@dataclass(frozen=True)
class Register:
    """Store the authenticated SIM's contact in the location table."""


@dataclass(frozen=True)
class Ring:
    """Ring the SIMs one after another (serial hunting), showing the caller as given."""

    targets: tuple[str, ...]  # SIM usernames, in hunting order
    caller: str  # From user the SIM shows: the client's number in E.164 when it is one
    display: str  # From display name: the district the client called
    pai: str | None  # P-Asserted-Identity user to send on, None to remove it
    trunk: str


NUMBER_DIALED_INCORRECTLY = Reply(404, "Number Dialed Incorrectly")
NOBODY_REACHABLE = Reply(480, "Temporarily Unavailable")
AUTHENTICATE = Authenticate()
REGISTER = Register()

ROUTED_METHODS = frozenset({"INVITE"})


def decide(call: Call, data: RoutingData, region: str = "RU") -> Reply | Authenticate | Register | Ring:
    if call.method == "REGISTER":
        return REGISTER if call.sim else AUTHENTICATE
    trunk = data.trunk_for_source(call.source_ip)
    if trunk is not None:
        return _from_trunk(call, trunk, data, region)
    if call.sim is None:
        return AUTHENTICATE
    return Reply(403, "Outbound Calls Not Enabled")


def _from_trunk(call: Call, trunk: Trunk, data: RoutingData, region: str):
    if call.method == "OPTIONS":
        return Reply(200, "OK")
    if call.method not in ROUTED_METHODS:
        return Reply(405, "Method Not Allowed")
    # A forwarded call rings the district the client dialled, not the forwarding target.
    for raw in (original_called(call.diversion, call.history_info), call.ruri_user):
        number = to_e164(raw, region)
        if number is None:
            continue
        route = data.did_route(number)
        if route is not None and route.district_active:
            return _ring(call, route.hunt, route.district_name, trunk, region)
        sim = data.sim(number)
        if sim is not None and sim.active:
            return _ring(call, (sim.username,), sim.district_name, trunk, region)
    return NUMBER_DIALED_INCORRECTLY


def _ring(call: Call, targets: tuple[str, ...], district: str, trunk: Trunk, region: str):
    if not targets:
        return NOBODY_REACHABLE
    # The manager must be able to call back: show the number in E.164; anonymous and
    # unparsable callers are shown as they came.
    caller = to_e164(call.from_user, region) or call.from_user or "anonymous"
    pai = (to_e164(call.pai_user, region) or call.pai_user) if call.pai_user else None
    return Ring(targets=targets, caller=caller, display=district, pai=pai, trunk=trunk.name)


def check_sim(sim: Sim | None) -> Reply | None:
    """The refusal for credentials naming a SIM that may not authenticate, if any."""
    if sim is None:
        return Reply(403, "Forbidden")
    if not sim.sim_active:
        return Reply(403, "SIM Inactive")
    if not sim.manager_active:
        return Reply(403, "Manager Inactive")
    return None


# auth module return codes (README.auth, pv_auth_check): wrong password and an auth
# user that is not the From/To user are refusals; expired or reused nonces and missing
# credentials are answered with a fresh challenge.
_AUTH_REFUSED = {-2: "Forbidden", -3: "Forbidden", -8: "Forbidden"}


def auth_verdict(rc: int) -> Reply | Authenticate | None:
    """None when credentials verified, a challenge to send, or a refusal."""
    if rc > 0:
        return None
    if rc in _AUTH_REFUSED:
        return Reply(403, _AUTH_REFUSED[rc])
    return AUTHENTICATE
