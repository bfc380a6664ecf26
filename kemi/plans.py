"""Plans from records, ahead of any call: pure functions, no KSR, no I/O.

A call then looks its plan up and applies it; what could be prepared (the carriers a caller
ID may leave through, in order, each carrier's URI, the caller ID in each carrier's format,
the quoted district name, the destination classes a company may call) is prepared here,
when the data arrives, not per call.
"""

from __future__ import annotations

import functools

from .model import DidPlan, DidRoute, Egress, Hop, Sim, SimPlan, Trunk
from .phone import DOMESTIC, INTERNATIONAL, KAZAKHSTAN, PREMIUM_RATE, UNASSIGNED, for_trunk

# Which company permission opens which destination class (company.allow_*); domestic is
# always open. A number in no assigned Russian range goes with international calls.
PERMISSIONS = {INTERNATIONAL: "allow_international", UNASSIGNED: "allow_international",
               PREMIUM_RATE: "allow_premium_rate", KAZAKHSTAN: "allow_kazakhstan"}


def hop(trunk: Trunk) -> Hop:
    transport = "" if trunk.transport == "udp" else f";transport={trunk.transport}"
    return Hop(trunk.name, trunk.number_format,
               f"@{trunk.egress_host}:{trunk.egress_port}{transport}",
               trunk.auth_username, trunk.auth_password)


def ruri(h: Hop, number: str) -> str:
    return "sip:" + for_trunk(number, h.number_format) + h.uri_suffix


def egress(caller_id: str, owner_trunk_id: int, trunks: tuple[Trunk, ...]) -> Egress | None:
    """Carriers refuse caller IDs they do not own: the owner's trunk first, then only trunks
    that accept foreign caller IDs, in trunk order."""
    owner = [t for t in trunks if t.id == owner_trunk_id]
    others = [t for t in trunks if t.id != owner_trunk_id and t.accepts_foreign_caller_id]
    return _egress(caller_id, owner + others)


def emergency_egress(own_number: str, trunks: tuple[Trunk, ...]) -> Egress | None:
    """The default trunk first, the service seeing the SIM's own number (it must be able
    to call that phone back), then trunks that accept foreign caller IDs."""
    default = [t for t in trunks if t.is_default]
    others = [t for t in trunks if not t.is_default and t.accepts_foreign_caller_id]
    return _egress(own_number, default + others)


def _egress(caller_id: str, trunks: list[Trunk]) -> Egress | None:
    if not trunks:
        return None
    return Egress(tuple(hop(t) for t in trunks), for_trunk(caller_id, trunks[0].number_format))


class EgressCache:
    """One Egress per (caller ID, owner trunk), shared by every SIM showing that number:
    a district's managers share one. Rebuilt whole when the trunks change."""

    def __init__(self, trunks: tuple[Trunk, ...] = ()):
        self.trunks = trunks
        self._plans: dict[tuple[str, int], Egress | None] = {}

    def get(self, caller_id: str, owner_trunk_id: int) -> Egress | None:
        key = (caller_id, owner_trunk_id)
        try:
            return self._plans[key]
        except KeyError:
            plan = self._plans[key] = egress(caller_id, owner_trunk_id, self.trunks)
            return plan


def sim_plan(sim: Sim, egresses: EgressCache, refusal_of) -> SimPlan:
    """refusal_of(sim) is the core's rule for a SIM that may not call (decision.check_sim)."""
    return SimPlan(sim, refusal_of(sim), allowed_classes(sim.allow_international,
                                                         sim.allow_premium_rate, sim.allow_kazakhstan),
                   egresses.get(sim.caller_id, sim.caller_id_trunk_id), quoted(sim.district_name),
                   district_label(sim.company_name, sim.district_name))


@functools.lru_cache(maxsize=None)
def allowed_classes(international: bool, premium_rate: bool, kazakhstan: bool) -> frozenset[str]:
    """The destination classes a company's permissions open: eight sets, shared by every SIM."""
    granted = {"allow_international": international, "allow_premium_rate": premium_rate,
               "allow_kazakhstan": kazakhstan}
    return frozenset({DOMESTIC} | {c for c, permission in PERMISSIONS.items() if granted[permission]})


def did_plan(route: DidRoute) -> DidPlan:
    return DidPlan(route.number, route.company_id, route.district_id, route.district_active,
                   quoted(route.district_name), route.hunt, route.mask_numbers,
                   district_label(route.company_name, route.district_name), route.sticky_days)


@functools.lru_cache(maxsize=65536)
def district_label(company: str, district: str) -> str:
    """A district as a metrics label value names it ("Kuban Realty/Sochi"), safe in
    kamailio.cfg's plan field ('|') and in the Prometheus exposition (quotes, backslashes,
    newlines). One string per district, shared by its SIMs and DIDs."""
    text = f"{company}/{district}"
    for bad in '|"\\\n':
        text = text.replace(bad, " ")
    return text


@functools.lru_cache(maxsize=65536)
def quoted(display: str) -> str:
    """A display name as a SIP quoted-string (RFC 3261 25.1), safe in kamailio.cfg's plan
    field: '|' separates the fields there (adapter.PLAN_AVP), and is replaced. One string
    per district, shared by its SIMs and DIDs."""
    text = display.replace("\\", "\\\\").replace('"', '\\"').replace("|", "/")
    return f'"{text}"'
