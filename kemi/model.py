"""Routing data as immutable records (kemi/db.py makes them from rows), and the plans a call
applies (kemi/plans.py makes them from records, ahead of any call).

Named tuples rather than frozen dataclasses: made by the hundred thousand at a load, and a
frozen dataclass's __init__ sets each field through object.__setattr__ (three times the
cost of a tuple, measured)."""

from __future__ import annotations

from typing import NamedTuple

# -- records: what the database holds -------------------------------------------------------


class Trunk(NamedTuple):
    id: int
    name: str
    carrier: str
    sources: tuple[str, ...]  # CIDR strings
    number_format: str  # e164 | plus_less | national | ten_digit
    egress_host: str = "127.0.0.1"
    egress_port: int = 5060
    transport: str = "udp"
    auth_username: str | None = None
    auth_password: str | None = None
    accepts_foreign_caller_id: bool = False
    is_default: bool = False


class Sim(NamedTuple):
    """A corporate SIM with what authentication and outbound routing need (sql/queries/sims.sql)."""

    username: str
    ha1: str
    sim_active: bool
    manager_active: bool
    manager_id: int
    district_id: int
    company_id: int
    district_name: str
    caller_id: str = ""  # the manager's override, else the district's number
    caller_id_trunk_id: int = 0  # the trunk that owns caller_id
    allow_international: bool = False
    allow_premium_rate: bool = False
    allow_kazakhstan: bool = False
    mask_numbers: bool = False  # its district shows clients' numbers as tokens
    company_name: str = ""

    @property
    def active(self) -> bool:
        return self.sim_active and self.manager_active


class DidRoute(NamedTuple):
    """One DID's district and who rings, in hunting order (sql/queries/did_route.sql)."""

    number: str
    company_id: int
    district_id: int
    district_name: str
    district_active: bool
    hunt: tuple[str, ...]  # SIM usernames in hunting order
    mask_numbers: bool = False  # the SIMs see a client's number as a token
    company_name: str = ""
    sticky_days: int = 0  # the sticky window (0: sticky routing off here)


# -- plans: what a call applies, prepared when the data arrives --------------------------------


class Hop(NamedTuple):
    """One carrier an outbound call may try, its Request-URI ready but for the number."""

    trunk: str
    number_format: str
    uri_suffix: str  # "@host:port" and the transport parameter
    auth_username: str | None = None
    auth_password: str | None = None


class Egress(NamedTuple):
    """The carriers a caller ID may leave through, in order, and the caller ID as the first
    of them writes it (From and P-Asserted-Identity)."""

    hops: tuple[Hop, ...]
    caller: str  # caller ID in hops[0]'s number format


class SimPlan(NamedTuple):
    """Everything a call from, or to, one SIM needs."""

    sim: Sim
    refusal: object | None  # decision.Reply when the SIM may not call (inactive), else None
    allowed: frozenset[str]  # destination classes its company may call (phone.DOMESTIC, ...)
    egress: Egress | None  # None: no trunk can carry its caller ID
    display: str  # its district's name, quoted: shown when a carrier calls this SIM's number
    where: str = ""  # its district as the metrics name it ("company/district")

    @property
    def username(self) -> str:
        return self.sim.username


class DidPlan(NamedTuple):
    """An inbound call to one DID: the district shown and the SIMs to ring, in order."""

    number: str
    company_id: int
    district_id: int
    active: bool
    display: str  # the district's name, quoted for a From display name
    targets: tuple[str, ...]
    masked: bool = False  # the SIMs see the caller as a token of the company's
    where: str = ""  # the district as the metrics name it ("company/district")
    sticky_days: int = 0  # the sticky window (0: sticky routing off here)
