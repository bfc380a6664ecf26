"""Routing data for one worker: database lookups behind bounded TTL caches, unknown numbers cached too."""

from __future__ import annotations

import ipaddress
import time
from typing import Callable

from cachetools import TTLCache

from .db import Database
from .model import DidRoute, Sim, Trunk

_MISSING = object()


class Directory:
    """Implements model.RoutingData over the database.

    Every cache is bounded in entries and time; a lookup that found nothing is cached
    as None (negative caching), so a flood of random numbers is not a flood of queries.
    """

    def __init__(self, db: Database, ttl: float, size: int,
                 clock: Callable[[], float] = time.monotonic):
        self.db = db
        self._dids = TTLCache(maxsize=size, ttl=ttl, timer=clock)
        self._sims = TTLCache(maxsize=size, ttl=ttl, timer=clock)
        self._sources = TTLCache(maxsize=size, ttl=ttl, timer=clock)
        self._trunks = TTLCache(maxsize=1, ttl=ttl, timer=clock)

    def did_route(self, number: str) -> DidRoute | None:
        route = self._dids.get(number, _MISSING)
        if route is _MISSING:
            rows = self.db.query("did_route", number=number)
            route = DidRoute(**{**rows[0], "hunt": tuple(rows[0]["hunt"])}) if rows else None
            self._dids[number] = route
        return route

    def sim(self, username: str) -> Sim | None:
        sim = self._sims.get(username, _MISSING)
        if sim is _MISSING:
            rows = self.db.query("sim", username=username)
            sim = Sim(**rows[0]) if rows else None
            self._sims[username] = sim
        return sim

    def trunk_for_source(self, ip: str) -> Trunk | None:
        trunk = self._sources.get(ip, _MISSING)
        if trunk is _MISSING:
            trunk = match_source(self._all_trunks(), ip)
            self._sources[ip] = trunk
        return trunk

    def trunks(self) -> tuple[Trunk, ...]:
        return tuple(trunk for trunk, _ in self._all_trunks())

    def _all_trunks(self) -> tuple[tuple[Trunk, tuple], ...]:
        trunks = self._trunks.get("all")
        if trunks is None:
            trunks = tuple(
                (Trunk(**{**row, "sources": tuple(row["sources"])}),
                 tuple(ipaddress.ip_network(s, strict=False) for s in row["sources"]))
                for row in self.db.query("trunks"))
            self._trunks["all"] = trunks
        return trunks


def match_source(trunks, ip: str) -> Trunk | None:
    """The trunk whose source networks contain ip; the most specific network wins."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    best, best_len = None, -1
    for trunk, networks in trunks:
        for net in networks:
            if address in net and net.prefixlen > best_len:
                best, best_len = trunk, net.prefixlen
    return best
