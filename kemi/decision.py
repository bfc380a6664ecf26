"""The routing decision: a pure function of the request and the routing data, no KSR, no I/O.

The routing policy (README "Who may call what" is the same table; each cell has a test):

source            | called number                     | decision
------------------|-----------------------------------|-------------------------------------------
trusted trunk     | REGISTER                          | 403 Carriers Do Not Register
trusted trunk     | a DID                             | ring the district's managers in order
trusted trunk     | a corporate SIM's number          | ring that SIM
trusted trunk     | anything else                     | 404 Number Dialed Incorrectly
any other source  | anything                          | authenticate first: 407 (401 REGISTER), 403
authenticated SIM | a DID of its own company          | ring that district's managers, caller = SIM
authenticated SIM | a SIM of its own company          | ring it directly, nothing rewritten
authenticated SIM | emergency (112, 101-104)          | default trunk, caller = the SIM's own number
authenticated SIM | an allowed external number        | out through the caller-ID owner's trunk
authenticated SIM | a forbidden external number       | 403 with the reason
authenticated SIM | unparsable                        | 404 Number Dialed Incorrectly
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import RoutingData, Sim, Trunk
from .phone import (INTERNATIONAL, KAZAKHSTAN, PREMIUM_RATE, UNASSIGNED, as_carrier_reads,
                    destination_class, for_trunk, original_called, to_e164)


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
    privacy: str | None = None
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
    """Ring corporate SIMs one after another (serial hunting)."""

    targets: tuple[str, ...]  # SIM usernames, in hunting order
    caller: str  # From user the SIM shows
    display: str | None  # From display name (the district); None: From is not rewritten
    pai: str | None  # P-Asserted-Identity user to send on, None to remove it
    via: str  # the trunk the call came in on, or "sim"


@dataclass(frozen=True)
class Attempt:
    """One trunk to try for an outbound call."""

    trunk: str
    ruri: str
    auth_username: str | None = None
    auth_password: str | None = None


@dataclass(frozen=True)
class CallOut:
    """An outbound call: the client sees `caller`; trunks are tried in order."""

    called: str  # E.164 (or the emergency short code)
    caller: str  # From and P-Asserted-Identity user, in the first trunk's format
    anonymous: bool  # the SIM asked for privacy (RFC 3323/3325): From is anonymised
    attempts: tuple[Attempt, ...]


NUMBER_DIALED_INCORRECTLY = Reply(404, "Number Dialed Incorrectly")
NOBODY_REACHABLE = Reply(480, "Temporarily Unavailable")
METHOD_NOT_ALLOWED = Reply(405, "Method Not Allowed")
NO_ROUTE_OUT = Reply(503, "No Trunk Available")
UNKNOWN_CREDENTIALS = Reply(403, "Forbidden")  # the same answer as a wrong password
# Registrations bind a SIM to where it sends from; a carrier's address is never one.
REGISTRATION_FROM_TRUNK = Reply(403, "Carriers Do Not Register")
AUTHENTICATE = Authenticate()
REGISTER = Register()

ROUTED_METHODS = frozenset({"INVITE"})
EMERGENCY_NUMBERS = frozenset({"112", "101", "102", "103", "104"})
DESTINATION_REFUSALS = {
    INTERNATIONAL: ("allow_international", Reply(403, "International Calls Disabled")),
    PREMIUM_RATE: ("allow_premium_rate", Reply(403, "Premium Rate Calls Disabled")),
    KAZAKHSTAN: ("allow_kazakhstan", Reply(403, "Calls To Kazakhstan Disabled")),
    # Outside every assigned Russian range: not a number of ours to call; only a company
    # that may call abroad sends it to the carrier, which has the last word.
    UNASSIGNED: ("allow_international", NUMBER_DIALED_INCORRECTLY),
}
PRIVACY_TOKENS = frozenset({"id", "user", "header"})


def decide(call: Call, data: RoutingData, region: str = "RU"):
    """Reply | Authenticate | Register | Ring | CallOut for an initial request."""
    trunk = data.trunk_for_source(call.source_ip)
    if call.method == "REGISTER":
        if trunk is not None:
            return REGISTRATION_FROM_TRUNK
        return REGISTER if call.sim else AUTHENTICATE
    if trunk is not None:
        return _from_trunk(call, trunk, data, region)
    if call.sim is None:
        return AUTHENTICATE
    return _from_sim(call, call.sim, data, region)


# -- inbound: a carrier's trunk ------------------------------------------------------

def _from_trunk(call: Call, trunk: Trunk, data: RoutingData, region: str):
    if call.method == "OPTIONS":
        return Reply(200, "OK")
    if call.method not in ROUTED_METHODS:
        return METHOD_NOT_ALLOWED
    # A forwarded call rings the district the client dialled, not the forwarding target.
    for raw in (original_called(call.diversion, call.history_info), call.ruri_user):
        number = to_e164(raw, region)
        if number is None:
            continue
        route = data.did_route(number)
        if route is not None and route.district_active:
            return _ring(call, route.hunt, route.district_name, trunk.name, region)
        sim = data.sim(number)
        if sim is not None and sim.active:
            return _ring(call, (sim.username,), sim.district_name, trunk.name, region)
    return NUMBER_DIALED_INCORRECTLY


def _ring(call: Call, targets: tuple[str, ...], district: str, via: str, region: str):
    if not targets:
        return NOBODY_REACHABLE
    # The manager must be able to call back: show the number in E.164; anonymous and
    # unparsable callers are shown as they came.
    caller = to_e164(call.from_user, region) or call.from_user or "anonymous"
    pai = (to_e164(call.pai_user, region) or call.pai_user) if call.pai_user else None
    return Ring(targets=targets, caller=caller, display=district, pai=pai, via=via)


# -- a corporate SIM -------------------------------------------------------------------

def _from_sim(call: Call, sim: Sim, data: RoutingData, region: str):
    if call.method not in ROUTED_METHODS:
        return METHOD_NOT_ALLOWED
    dialled = call.ruri_user or ""
    if dialled in EMERGENCY_NUMBERS:
        return _emergency(dialled, sim, data.trunks())
    number = to_e164(dialled, region)
    if number is None:
        return NUMBER_DIALED_INCORRECTLY
    # Numbers of another company are external numbers. Should the database be unable to
    # say whether an uncached number is one of ours, the call goes out: a DID of ours
    # then comes back in through its carrier, instead of the manager getting an error.
    route = data.did_route(number, unknown_if_unavailable=True)
    if route is not None and route.company_id == sim.company_id:
        if not route.district_active:
            return NUMBER_DIALED_INCORRECTLY
        if not route.hunt:
            return NOBODY_REACHABLE
        return Ring(route.hunt, caller=sim.username, display=route.district_name, pai=None,
                    via="sim")
    callee = data.sim(number)
    if callee is not None and callee.company_id == sim.company_id:
        if not callee.active:
            return NUMBER_DIALED_INCORRECTLY
        return Ring((callee.username,), caller=sim.username, display=None, pai=None, via="sim")
    refusal = destination_refusal(number, sim)
    if refusal is not None:
        return refusal
    return call_out(number, sim.caller_id, sim.caller_id_trunk_id, data.trunks(),
                    anonymous=wants_privacy(call.privacy))


def destination_refusal(number: str, sim: Sim) -> Reply | None:
    """Why the SIM's company may not call this number, if it may not."""
    rule = DESTINATION_REFUSALS.get(destination_class(number))
    if rule is None:
        return None
    permission, refusal = rule
    return None if getattr(sim, permission) else refusal


def call_out(number: str, caller_id: str, owner_trunk_id: int, trunks: tuple[Trunk, ...],
             anonymous: bool = False):
    """Carriers refuse caller IDs they do not own: the owner's trunk first, then only
    trunks that accept foreign caller IDs."""
    owner = [t for t in trunks if t.id == owner_trunk_id]
    others = [t for t in trunks if t.id != owner_trunk_id and t.accepts_foreign_caller_id]
    return _plan(number, caller_id, owner + others, anonymous)


def _emergency(dialled: str, sim: Sim, trunks: tuple[Trunk, ...]):
    # The emergency service must be able to call this very phone back: its own number.
    default = [t for t in trunks if t.is_default]
    others = [t for t in trunks if not t.is_default and t.accepts_foreign_caller_id]
    return _plan(dialled, sim.username, default + others, anonymous=False)


def _plan(number: str, caller_id: str, trunks: list[Trunk], anonymous: bool):
    if not trunks:
        return NO_ROUTE_OUT
    # A trunk whose format cannot carry this number (a +7 10x number written nationally
    # reads 8-10-..., an international call) is not tried: the carrier must dial the very
    # number the destination policy judged.
    usable = [t for t in trunks
              if as_carrier_reads(for_trunk(number, t.number_format), t.number_format) == number]
    if not usable:
        return NUMBER_DIALED_INCORRECTLY
    attempts = tuple(Attempt(t.name, _ruri(for_trunk(number, t.number_format), t),
                             t.auth_username, t.auth_password) for t in usable)
    return CallOut(called=number, caller=for_trunk(caller_id, usable[0].number_format),
                   anonymous=anonymous, attempts=attempts)


def _ruri(user: str, trunk: Trunk) -> str:
    transport = "" if trunk.transport == "udp" else f";transport={trunk.transport}"
    return f"sip:{user}@{trunk.egress_host}:{trunk.egress_port}{transport}"


def wants_privacy(privacy: str | None) -> bool:
    """Privacy: id (RFC 3325), user or header (RFC 3323) hide the caller from the client."""
    if not privacy:
        return False
    return any(token.strip().lower() in PRIVACY_TOKENS for token in privacy.replace(",", ";").split(";"))


# What to do when a trunk answered an outbound attempt with a failure.
AUTHENTICATE_TO_TRUNK, TRY_NEXT_TRUNK, GIVE_UP = "authenticate", "next", "give up"


def after_trunk_failure(status: int, attempts: tuple[Attempt, ...], authenticated: bool) -> str:
    """Carrier challenge: answer once. 408 or 5xx: the next eligible trunk. Anything else
    (busy, declined, not found) is the client's answer and goes back to the SIM."""
    if status in (401, 407):
        return AUTHENTICATE_TO_TRUNK if attempts[0].auth_username and not authenticated else GIVE_UP
    if (status == 408 or 500 <= status <= 599) and len(attempts) > 1:
        return TRY_NEXT_TRUNK
    return GIVE_UP


# -- authentication outcomes -----------------------------------------------------------

def check_sim(sim: Sim | None) -> Reply | None:
    """The refusal for a SIM whose digest verified but that may not call, if any."""
    if sim is None:
        return UNKNOWN_CREDENTIALS
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
