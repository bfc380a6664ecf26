"""Routing data as frozen records: what the decision core reads, whatever stores it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Trunk:
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


@dataclass(frozen=True)
class DidRoute:
    number: str
    company_id: int
    district_id: int
    district_name: str
    district_active: bool
    hunt: tuple[str, ...]  # SIM usernames in hunting order


@dataclass(frozen=True)
class Sim:
    username: str
    ha1: str
    sim_active: bool
    manager_active: bool
    manager_id: int
    company_id: int
    district_name: str
    caller_id: str = ""  # the manager's override, else the district's number
    caller_id_trunk_id: int = 0  # the trunk that owns caller_id
    allow_international: bool = False
    allow_premium_rate: bool = False
    allow_kazakhstan: bool = False

    @property
    def active(self) -> bool:
        return self.sim_active and self.manager_active


class RoutingData(Protocol):
    """The lookups a routing decision needs; cached database reads in production."""

    def trunk_for_source(self, ip: str) -> Trunk | None: ...

    def trunks(self) -> tuple[Trunk, ...]: ...

    def did_route(self, number: str, unknown_if_unavailable: bool = False) -> DidRoute | None: ...

    def sim(self, username: str) -> Sim | None: ...
