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
    number_format: str


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

    @property
    def active(self) -> bool:
        return self.sim_active and self.manager_active


class RoutingData(Protocol):
    """The lookups a routing decision needs; cached database reads in production."""

    def trunk_for_source(self, ip: str) -> Trunk | None: ...

    def did_route(self, number: str) -> DidRoute | None: ...

    def sim(self, username: str) -> Sim | None: ...
