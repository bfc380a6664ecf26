"""The routing decision: a pure function of the request and the facts gathered for it (plans,
the authentication result), no KSR, no I/O. The failure-route rules are here too.

The routing policy (README "Who may call what" is the same table; each cell has a test):

source            | called number                     | decision
------------------|-----------------------------------|-------------------------------------------
trusted trunk     | REGISTER                          | 403 Carriers Do Not Register
trusted trunk     | a DID                             | ring the district's managers in order
trusted trunk     | a DID, a client's sticky manager  | his SIMs first, then the district's order
trusted trunk     | a corporate SIM's number          | ring that SIM
trusted trunk     | a DID of a masked district        | the same, the caller shown as a token
trusted trunk     | anything else (a token too)       | 404 Number Dialed Incorrectly
any other source  | anything                          | authenticate first: 407 (401 REGISTER), 403
authenticated SIM | a token of its own company        | as if it had dialled the number it stands for
authenticated SIM | any other token                   | 404 Number Dialed Incorrectly
authenticated SIM | a DID of its own company          | ring that district's managers, caller = SIM
authenticated SIM | a SIM of its own company          | ring it directly, nothing rewritten
authenticated SIM | emergency (112, 101-104)          | default trunk, caller = the SIM's own number
authenticated SIM | an allowed external number        | out through the caller-ID owner's trunk
authenticated SIM | a forbidden external number       | 403 with the reason
authenticated SIM | unparsable                        | 404 Number Dialed Incorrectly
"""

from __future__ import annotations

from typing import NamedTuple

from .masking import Masker, dialed_token
from .model import DidPlan, Egress, Hop, Sim, SimPlan, Trunk
from .phone import (DOMESTIC, INTERNATIONAL, KAZAKHSTAN, PREMIUM_RATE, UNASSIGNED, as_carrier_reads,
                    destination_class, for_trunk, original_called, to_e164)


class Request(NamedTuple):
    """What the decision reads of an initial request."""

    method: str
    source_ip: str
    ruri_user: str | None
    from_user: str | None
    pai_user: str | None = None
    diversion: str | None = None
    history_info: str | None = None
    privacy: str | None = None


class _Unavailable:
    """The database could not answer, and nothing was cached: an explicit fact."""

    def __repr__(self) -> str:
        return "UNAVAILABLE"


UNAVAILABLE = _Unavailable()


class Number(NamedTuple):
    """What the routing data says about one number (adapter: Directory.number)."""

    did_company: int | None = None  # the company renting it, when it is a DID
    did: DidPlan | None | _Unavailable = None  # its plan (looked up only for a DID)
    sim: SimPlan | None = None  # the SIM whose MSISDN it is


NOT_OURS = Number()


class Sticky(NamedTuple):
    """A client's relation with a company (adapter: Directory.sticky): the manager of the
    client's last answered call, when, and what the routing data says of that manager now."""

    manager_id: int
    answered_at: float  # epoch seconds
    sims: tuple[str, ...]  # the manager's active SIMs, in hunting order
    manager_active: bool = True
    company_id: int | None = None  # the manager's company now (None: no SIM left to say)


# Authentication facts, for sources that are not trunks.
class Verified(NamedTuple):
    plan: SimPlan


NO_CREDENTIALS, STALE, REFUSED = "no credentials", "stale", "refused"


class Facts(NamedTuple):
    trunk: Trunk | None  # the trunk the source belongs to
    auth: Verified | str | None = None  # for any other source
    numbers: dict = {}  # E.164 -> Number, for numbers_to_look_up()
    emergency: Egress | None = None  # the authenticated SIM's emergency egress, when dialled
    masker: Masker | None = None  # the masking keys' tokens (None: no keys configured)
    sticky: dict = {}  # company id -> Sticky | None, for sticky_to_look_up()
    now: float = 0.0  # epoch seconds: the sticky window's end


# -- decisions -------------------------------------------------------------------------------

class Reply(NamedTuple):
    code: int
    reason: str


class Challenge:
    """No (or stale) credentials: 407 (401 for REGISTER)."""


class AuthFailed:
    """Refused credentials: counted toward a ban and answered 403 by kamailio.cfg."""


class Register:
    """Store the authenticated SIM's contact in the location table."""


class Ring(NamedTuple):
    """Ring corporate SIMs one after another (serial hunting)."""

    targets: tuple[str, ...]  # SIM usernames, in hunting order
    caller: str  # From user the SIM shows
    display: str | None  # quoted From display name (the district); None: From not rewritten
    pai: str | None  # P-Asserted-Identity user to send on, None to remove it
    via: str  # the trunk the call came in on, or "sim"
    masked: bool = False  # caller and PAI are tokens: nothing else of the client reaches the SIM
    where: str = ""  # the district rung, as the metrics name it
    did: str = ""  # the number dialled (E.164), for the call's record
    client: str = ""  # the caller's real number (E.164; "" when not a number), for the record
    sticky: tuple[str, ...] = ()  # the SIMs put first by the client's sticky manager


class CallOut(NamedTuple):
    """An outbound call: the client sees `caller`; hops are tried in order."""

    called: str  # E.164 (or the emergency short code)
    caller: str  # From and P-Asserted-Identity user, in the first hop's format
    anonymous: bool  # the SIM asked for privacy (RFC 3323/3325): From is anonymised
    hops: tuple[Hop, ...]
    emergency: bool = False
    masked: bool = False  # the SIM dialled a token: it must learn nothing of the number
    where: str = ""  # the calling SIM's district, as the metrics name it


NUMBER_DIALED_INCORRECTLY = Reply(404, "Number Dialed Incorrectly")
NOBODY_REACHABLE = Reply(480, "Temporarily Unavailable")
METHOD_NOT_ALLOWED = Reply(405, "Method Not Allowed")
NO_ROUTE_OUT = Reply(503, "No Trunk Available")
DATABASE_DOWN = Reply(503, "Service Unavailable")
UNKNOWN_CREDENTIALS = Reply(403, "Forbidden")  # the same answer as a wrong password
# Registrations bind a SIM to where it sends from; a carrier's address is never one.
REGISTRATION_FROM_TRUNK = Reply(403, "Carriers Do Not Register")
CHALLENGE, AUTH_FAILED, REGISTER = Challenge(), AuthFailed(), Register()

ROUTED_METHODS = frozenset({"INVITE"})
EMERGENCY_NUMBERS = frozenset({"112", "101", "102", "103", "104"})
DESTINATION_REFUSALS = {
    INTERNATIONAL: Reply(403, "International Calls Disabled"),
    PREMIUM_RATE: Reply(403, "Premium Rate Calls Disabled"),
    KAZAKHSTAN: Reply(403, "Calls To Kazakhstan Disabled"),
    # Outside every assigned Russian range: not a number of ours to call; only a company
    # that may call abroad sends it to the carrier, which has the last word.
    UNASSIGNED: NUMBER_DIALED_INCORRECTLY,
}
PRIVACY_TOKENS = frozenset({"id", "user", "header"})


def numbers_to_look_up(req: Request, trunk: Trunk | None, region: str = "RU",
                       sim: SimPlan | None = None, masker: Masker | None = None) -> tuple[str, ...]:
    """The E.164 numbers whose facts decide this request, in the order they are tried: from
    a trunk, the number the client first dialled (forwarded calls), then the Request-URI's;
    from a SIM (sim: its plan), the number it dialled (none for emergency short codes), a
    token decoded."""
    if trunk is not None:
        if req.method not in ROUTED_METHODS:
            return ()
        found = []
        for raw in (original_called(req.diversion, req.history_info), req.ruri_user):
            number = to_e164(raw, region)
            if number is not None and number not in found:
                found.append(number)
        return tuple(found)
    if req.method not in ROUTED_METHODS or (req.ruri_user or "") in EMERGENCY_NUMBERS:
        return ()
    number = dialled_number(req.ruri_user, sim, masker, region)[0]
    return (number,) if number else ()


def dialled_number(dialled: str | None, sim: SimPlan | None, masker: Masker | None,
                   region: str) -> tuple[str | None, bool]:
    """What a SIM dialled, in E.164, and whether it dialled a token. A token decodes only
    with the keys and only for the SIM's own company, whether or not the company masks
    today (switching masking off must not break redial from an old call history)."""
    token = dialed_token(dialled)
    if token is None:
        return to_e164(dialled, region), False
    if masker is None or sim is None:
        return None, True
    return masker.unmask(token, sim.sim.company_id), True


def sticky_to_look_up(req: Request, numbers: dict, region: str = "RU") -> tuple[int, ...]:
    """The companies whose relation with the caller decides this request (Facts.sticky):
    those of the DIDs called that ring with sticky routing on, when the caller is a number."""
    found = ()
    for known in numbers.values():
        did = known.did
        if isinstance(did, DidPlan) and did.sticky_days and did.company_id not in found:
            found += (did.company_id,)
    if found and to_e164(req.from_user, region) is None:
        return ()
    return found


def decide(req: Request, facts: Facts, region: str = "RU"):
    """Reply | Challenge | AuthFailed | Register | Ring | CallOut for an initial request."""
    if facts.trunk is not None:
        return _from_trunk(req, facts, region)
    auth = facts.auth
    if auth in (NO_CREDENTIALS, STALE) or auth is None:
        return CHALLENGE
    if auth == REFUSED:
        return AUTH_FAILED
    plan = auth.plan
    if plan.refusal is not None:
        return plan.refusal
    if req.method == "REGISTER":
        return REGISTER
    return _from_sim(req, plan, facts, region)


# -- inbound: a carrier's trunk ------------------------------------------------------------

def _from_trunk(req: Request, facts: Facts, region: str):
    if req.method == "REGISTER":
        return REGISTRATION_FROM_TRUNK
    if req.method == "OPTIONS":
        return Reply(200, "OK")
    if req.method not in ROUTED_METHODS:
        return METHOD_NOT_ALLOWED
    # A forwarded call rings the district the client dialled, not the forwarding target.
    for number in numbers_to_look_up(req, facts.trunk, region):
        known = facts.numbers.get(number, NOT_OURS)
        if known.did is UNAVAILABLE:
            return DATABASE_DOWN  # ours, but its plan was never cached: no guessing
        did = known.did
        if did is not None and did.active:
            mask = did.company_id if did.masked else None
            first, _why = sticky_first(did, facts.sticky.get(did.company_id), facts.now)
            targets = first + tuple(t for t in did.targets if t not in first) if first \
                else did.targets
            return _ring(req, targets, did.display, facts.trunk.name, region, mask,
                         facts.masker, did.where, number, first)
        sim = known.sim
        if sim is not None and sim.refusal is None:
            mask = sim.sim.company_id if sim.sim.mask_numbers else None
            return _ring(req, (sim.username,), sim.display, facts.trunk.name, region, mask,
                         facts.masker, sim.where, number)
    return NUMBER_DIALED_INCORRECTLY


ANONYMOUS = "anonymous"
DAY_S = 86400
STICKY_APPLIES = "the client's last answered call was with this manager"


def sticky_first(did: DidPlan, sticky: Sticky | None, now: float) -> tuple[tuple[str, ...], str]:
    """Sticky manager: a client whose last answered call with the company (either
    direction) was with a manager, within the district's window, rings that manager's
    active SIMs first; then the district's order without them. Not when sticky routing is
    off there, the call is older than the window, or the manager is inactive, no longer in
    a district of the company, or has no active SIM: then the normal order (and a SIM not
    registered is skipped by hunting, first_reachable). Nor when the manager rings first
    anyway: the order owes him nothing. The SIMs put first (() when none), and why."""
    if not did.sticky_days:
        return (), "sticky routing is off for this district"
    if sticky is None:
        return (), "no answered call of this client with a manager of the company on record"
    if now - sticky.answered_at > did.sticky_days * DAY_S:
        return (), f"the last answered call is older than the {did.sticky_days}-day window"
    if not sticky.manager_active:
        return (), "the manager of the last answered call is inactive"
    if sticky.company_id is not None and sticky.company_id != did.company_id:
        return (), "the manager of the last answered call is no longer in a district of the company"
    if not sticky.sims:
        return (), "the manager of the last answered call has no active SIM"
    if did.targets[:len(sticky.sims)] == sticky.sims:
        return (), "the manager of the last answered call rings first anyway"
    return sticky.sims, STICKY_APPLIES


def _ring(req: Request, targets: tuple[str, ...], display: str, via: str, region: str,
          mask: int | None = None, masker: Masker | None = None, where: str = "",
          did: str = "", sticky: tuple[str, ...] = ()):
    if not targets:
        return NOBODY_REACHABLE
    # The manager must be able to call back: show the number in E.164; anonymous and
    # unparsable callers are shown as they came.
    caller = to_e164(req.from_user, region)
    pai = (to_e164(req.pai_user, region) or req.pai_user) if req.pai_user else None
    if mask is None:
        return Ring(targets=targets, caller=caller or req.from_user or ANONYMOUS,
                    display=display, pai=pai, via=via, where=where, did=did, client=caller or "",
                    sticky=sticky)
    # Masked: the SIM sees tokens of the company's, or nobody. What is not a number, or
    # asked for privacy, is shown as anonymous, never as it came; without keys (the proxy
    # refuses to start so: kemi/handler.py) nobody either: the call rings, nothing leaks.
    token = _token(caller, mask, masker)
    if token is None or wants_privacy(req.privacy):
        return Ring(targets, ANONYMOUS, display, None, via, masked=True, where=where, did=did,
                    client=caller or "", sticky=sticky)
    pai_token = _token(to_e164(req.pai_user, region), mask, masker) if req.pai_user else None
    return Ring(targets, token, display, pai_token, via, masked=True, where=where, did=did,
                client=caller or "", sticky=sticky)


def _token(number: str | None, company_id: int, masker: Masker | None) -> str | None:
    if number is None or masker is None:
        return None
    try:
        return masker.mask(number, company_id)
    except ValueError:  # not a number the token can hold (E.164: 7 to 15 digits)
        return None


# -- a corporate SIM -------------------------------------------------------------------------

def _from_sim(req: Request, plan: SimPlan, facts: Facts, region: str):
    if req.method not in ROUTED_METHODS:
        return METHOD_NOT_ALLOWED
    sim = plan.sim
    dialled = req.ruri_user or ""
    if dialled in EMERGENCY_NUMBERS:
        return _call_out(dialled, facts.emergency, anonymous=False, emergency=True,
                         where=plan.where)
    number, masked = dialled_number(dialled, plan, facts.masker, region)
    if number is None:
        return NUMBER_DIALED_INCORRECTLY
    known = facts.numbers.get(number, NOT_OURS)
    if known.did_company == sim.company_id:
        # A DID of its own company. Should its plan be unavailable (never cached, database
        # down), the call goes out: the DID comes back in through its carrier, rather than
        # the manager getting an error.
        did = known.did
        if did is not UNAVAILABLE and did is not None:
            if not did.active:
                return NUMBER_DIALED_INCORRECTLY
            if not did.targets:
                return NOBODY_REACHABLE
            return Ring(did.targets, caller=sim.username, display=did.display, pai=None, via="sim",
                        where=did.where, did=number)
    callee = known.sim
    if callee is not None and callee.sim.company_id == sim.company_id:
        if callee.refusal is not None:
            return NUMBER_DIALED_INCORRECTLY
        return Ring((callee.username,), caller=sim.username, display=None, pai=None, via="sim",
                    where=callee.where)
    # Numbers of another company are external numbers.
    kind = destination_class(number)
    if kind not in plan.allowed:
        return DESTINATION_REFUSALS[kind]
    return _call_out(number, plan.egress, anonymous=wants_privacy(req.privacy),
                     domestic=kind == DOMESTIC, masked=masked, where=plan.where)


def _call_out(number: str, egress: Egress | None, anonymous: bool, emergency: bool = False,
              domestic: bool = False, masked: bool = False, where: str = ""):
    if egress is None:
        return NO_ROUTE_OUT
    # A trunk whose format cannot carry this number (a +7 10x number written nationally
    # reads 8-10-..., an international call) is not tried: the carrier must dial the very
    # number the destination policy judged. Every trunk format carries a domestic number
    # as dialled (property-tested, tests/test_phone.py).
    hops = egress.hops if domestic else tuple(h for h in egress.hops if carries(h, number))
    if not hops:
        return NUMBER_DIALED_INCORRECTLY
    caller = egress.caller if hops[0] is egress.hops[0] else _caller_for(egress, hops[0])
    return CallOut(called=number, caller=caller, anonymous=anonymous, hops=hops,
                   emergency=emergency, masked=masked, where=where)


def _caller_for(egress: Egress, first: Hop) -> str:
    """The caller ID rewritten for another first hop: from hops[0]'s format back to E.164."""
    return for_trunk(as_carrier_reads(egress.caller, egress.hops[0].number_format),
                     first.number_format)


def carries(h: Hop, number: str) -> bool:
    """Whether the carrier, reading the number as written for it, dials that very number."""
    return as_carrier_reads(for_trunk(number, h.number_format), h.number_format) == number


def wants_privacy(privacy: str | None) -> bool:
    """Privacy: id (RFC 3325), user or header (RFC 3323) hide the caller from the client."""
    if not privacy:
        return False
    return any(token.strip().lower() in PRIVACY_TOKENS for token in privacy.replace(",", ";").split(";"))


# -- failure routes ----------------------------------------------------------------------------

def first_reachable(targets: tuple[str, ...], is_registered) -> int | None:
    """Hunting: the first SIM, in order, with a registration (is_registered(username));
    an unregistered SIM is skipped at once, not rung. None: nobody left to ring."""
    for i, target in enumerate(targets):
        if is_registered(target):
            return i
    return None


# What to do when a trunk answered an outbound attempt with a failure.
AUTHENTICATE_TO_TRUNK, TRY_NEXT_TRUNK, GIVE_UP = "authenticate", "next", "give up"


def after_trunk_failure(status: int, hops: tuple[Hop, ...], authenticated: bool) -> str:
    """Carrier challenge: answer once. 408 or 5xx: the next eligible trunk. Anything else
    (busy, declined, not found) is the client's answer and goes back to the SIM."""
    if status in (401, 407):
        return AUTHENTICATE_TO_TRUNK if hops[0].auth_username and not authenticated else GIVE_UP
    if (status == 408 or 500 <= status <= 599) and len(hops) > 1:
        return TRY_NEXT_TRUNK
    return GIVE_UP


def answers_indialog_challenge(status: int, trunk: Trunk | None) -> bool:
    """A challenge to a BYE or re-INVITE toward a carrier is answered once, with that
    trunk's credentials; a second challenge, or any other failure, goes back to the SIM."""
    return status in (401, 407) and trunk is not None and bool(trunk.auth_username)


# -- authentication outcomes -----------------------------------------------------------------

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
_AUTH_REFUSED = frozenset({-2, -3, -8})


def auth_verdict(rc: int) -> str | None:
    """None when the credentials verified, else REFUSED or STALE (challenge again)."""
    if rc > 0:
        return None
    return REFUSED if rc in _AUTH_REFUSED else STALE
