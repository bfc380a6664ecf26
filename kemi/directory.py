"""Routing data for one worker: database lookups behind bounded caches that follow live changes."""

from __future__ import annotations

import dataclasses
import ipaddress
import time
from typing import Callable

from cachetools import LRUCache

from .db import EVERYTHING, Database, DatabaseError
from .model import DidRoute, Sim, Trunk

SIM_FIELDS = tuple(f.name for f in dataclasses.fields(Sim))
# Tables only the trunk snapshot reads (sql/queries/trunks.sql).
TRUNK_TABLES = frozenset({"trunk"})
# Tables the SIM snapshot does not read (sql/queries/sims.sql): a change to them alone
# keeps it. A caller ID's owner trunk comes from did, through the caller-ID snapshot.
NOT_SIM_TABLES = frozenset({"trunk", "did"})


class _Entry:
    __slots__ = ("value", "generation", "expires")

    def __init__(self, value, generation: int, expires: float):
        self.value, self.generation, self.expires = value, generation, expires


class Directory:
    """Implements model.RoutingData over the database.

    Each cache is bounded in entries (LRU). An entry is fresh while it belongs to the
    current generation and its TTL has not run out; the generation moves when the
    database notifies a change (checked once per request, see refresh_if_changed). A
    stale entry is re-read, and kept serving if the database cannot answer
    (stale-if-error). Lookups that found nothing are cached too (None), so a flood of
    random numbers is not a flood of queries.
    """

    def __init__(self, db: Database, ttl: float, size: int,
                 clock: Callable[[], float] = time.monotonic,
                 log: Callable[[str], None] = lambda text: None):
        self.db = db
        self.ttl = ttl
        self.generation = 0
        self._clock = clock
        self._log = log
        self._size = size
        self._dids = LRUCache(maxsize=size)
        # Source address -> trunk, derived from the trunk snapshot and emptied with it: a
        # plain dict, since it is read twice per request (a cachetools lookup cost ~10 us
        # in a worker). Bounded by emptying, as addresses come from the network.
        self._source_trunk: dict[str, Trunk | None] = {}
        # Small tables are whole snapshots, one query each: every SIM with its HA1 (so a
        # known SIM keeps authenticating while the database is down), the owner trunk of
        # every caller ID, every trunk.
        self._snapshots = LRUCache(maxsize=3)
        self.hits = self.misses = self.stale_serves = 0
        self._networks_published = False  # trunk_networks_if_changed
        self._serving_stale = False
        self._next_check = 0.0

    CHECK_EVERY_S = 0.1  # reading the socket costs ~15 us in a worker: 10 times a second

    def refresh_if_changed(self) -> None:
        """Per request, at most every CHECK_EVERY_S: a notified change (or a new connection)
        marks every cached entry for re-reading. The snapshots are reloaded here rather
        than on first use (after a change, or past their TTL): a worker that has served a
        request holds every SIM's credentials should the database go away."""
        now = self._clock()
        if now < self._next_check:
            return
        self._next_check = now + self.CHECK_EVERY_S
        changed = self.db.changed()
        if changed and changed <= TRUNK_TABLES:
            # Only trunk data: DID routes and the SIM snapshot do not hold any, and
            # reloading 100,000 SIMs costs a worker most of a second.
            self._expire(self._snapshots, "trunks")
        elif changed:
            self.generation += 1
            sims = self._snapshots.get("sims")
            if changed <= NOT_SIM_TABLES and sims is not None:
                sims.generation = self.generation  # carried over: nothing it holds changed
        try:
            self._all_sims()
            self._caller_id_owners()
            self._all_trunks()
        except DatabaseError:
            pass  # the lookups themselves will answer, from the old snapshot if any

    def trunk_networks_if_changed(self) -> list[str] | None:
        """The carriers' source networks when they may have changed since the last call
        (a notified trunk change, a new connection, the first call), else None. For the
        change watcher (kamailio.cfg rtimer): it reads the trunk snapshot only."""
        changed = self.db.changed()
        if self._networks_published and not changed & (TRUNK_TABLES | EVERYTHING):
            return None
        self._expire(self._snapshots, "trunks")
        try:
            trunks = self._all_trunks()
        except DatabaseError:
            self._networks_published = False  # try again on the next tick
            return None
        self._networks_published = True
        return sorted({str(net) for _, networks in trunks for net in networks})

    def did_route(self, number: str, unknown_if_unavailable: bool = False) -> DidRoute | None:
        """The DID's route; with unknown_if_unavailable, None when the database cannot
        answer rather than an error (for checks that have a safe default)."""
        try:
            return self._get(self._dids, number, self._fetch_did)
        except DatabaseError:
            if unknown_if_unavailable:
                return None
            raise

    def sim(self, username: str) -> Sim | None:
        sim = self._all_sims().get(username)
        if sim is None:
            return None
        owner = self._caller_id_owners().get(sim.caller_id, sim.caller_id_trunk_id)
        if owner != sim.caller_id_trunk_id:  # the DID moved to another trunk since the load
            sim = dataclasses.replace(sim, caller_id_trunk_id=owner)
        return sim

    def _all_sims(self) -> dict[str, Sim]:
        return self._get(self._snapshots, "sims", self._fetch_sims)

    def _caller_id_owners(self) -> dict[str, int]:
        return self._get(self._snapshots, "caller_id_owners",
                         lambda _key: dict(self.db.query_tuples("caller_id_owners")[1]))

    def trunk_for_source(self, ip: str) -> Trunk | None:
        try:
            return self._source_trunk[ip]
        except KeyError:
            pass
        trunk = match_source(self._all_trunks(), ip)
        if len(self._source_trunk) >= self._size:
            self._source_trunk.clear()
        self._source_trunk[ip] = trunk
        return trunk

    def trunks(self) -> tuple[Trunk, ...]:
        return tuple(trunk for trunk, _ in self._all_trunks())

    def _all_trunks(self):
        return self._get(self._snapshots, "trunks", self._fetch_trunks)

    @staticmethod
    def _expire(cache, key) -> None:
        entry = cache.get(key)
        if entry is not None:
            entry.expires = float("-inf")  # re-read at next use, kept if that fails

    def _get(self, cache, key, fetch):
        entry = cache.get(key)
        now = self._clock()
        if entry is not None and entry.generation == self.generation and now < entry.expires:
            self.hits += 1
            return entry.value
        self.misses += 1
        try:
            value = fetch(key)
        except DatabaseError as exc:
            if entry is None:
                raise
            self.stale_serves += 1
            if not self._serving_stale:
                self._serving_stale = True
                self._log(f"database unavailable, routing from cached data: {exc}")
            return entry.value
        if self._serving_stale:
            self._serving_stale = False
            self._log("database reachable again, cached data refreshed")
        cache[key] = _Entry(value, self.generation, now + self.ttl)
        return value

    def _fetch_did(self, number: str) -> DidRoute | None:
        rows = self.db.query("did_route", number=number)
        return DidRoute(**{**rows[0], "hunt": tuple(rows[0]["hunt"])}) if rows else None

    SNAPSHOT_TIMEOUT_MS = 5000  # 100,000 SIMs load in about 0.7 s (make bench)

    def _fetch_sims(self, _key) -> dict[str, Sim]:
        # Tuples into Sim's fields by position (sql/queries/sims.sql selects them in
        # order; checked): a dict per row and keyword construction cost 40 % of the load.
        columns, rows = self.db.query_tuples("sims", timeout_ms=self.SNAPSHOT_TIMEOUT_MS)
        if tuple(columns) != SIM_FIELDS:
            raise TypeError(f"sims.sql selects {columns}, Sim has {SIM_FIELDS}")
        return {row[0]: Sim(*row) for row in rows}

    def _fetch_trunks(self, _key):
        trunks = tuple(
            (Trunk(**{**row, "sources": tuple(row["sources"])}),
             tuple(ipaddress.ip_network(s, strict=False) for s in row["sources"]))
            for row in self.db.query("trunks"))
        self._source_trunk = {}  # derived from the new snapshot from now on
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
