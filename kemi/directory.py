"""The routing data of one worker, as plans: loaded once, then kept current key by key from
the database's change notifications. The only module that turns database trouble into the
core's explicit UNAVAILABLE fact.

- trunks: a snapshot (a handful of rows), and a dictionary from source address to trunk;
- SIMs: every SIM's plan (kemi/plans.py), in a dictionary, with indexes by manager,
  district, company and caller ID so that a notification reloads only the SIMs it touches;
- DIDs: which numbers are ours and whose (two sorted arrays, 12 bytes a DID, so that no
  call to a number not ours asks the database), and the inbound plans of the DIDs called,
  in a bounded LRU cache (cachetools), read on first use;
- sticky relations (kemi/relations.py): every client's last answered manager per company,
  answered within the longest window in use, loaded whole once and then by client.
"""

from __future__ import annotations

import bisect
import ipaddress
import time
from array import array
from typing import Callable

from cachetools import LRUCache

from .db import Changes, Database, DatabaseError
from .decision import NOT_OURS, UNAVAILABLE, Number, Sticky, check_sim
from .model import DidPlan, Egress, SimPlan, Trunk
from .plans import EgressCache, did_plan, emergency_egress, sim_plan
from .relations import Relations

SIM_KINDS = {"sim": "sims", "manager": "managers", "district": "districts",
             "company": "companies", "did": "numbers"}
SIM_TABLES = frozenset({"sim", "manager", "district", "company", "did"})
RELATIONS_TABLE = "sticky_relation"  # its notifications name clients (migration 007)


class _Entry:
    __slots__ = ("value", "fresh", "expires")

    def __init__(self, value, expires: float):
        self.value, self.fresh, self.expires = value, True, expires


class Directory:
    CHECK_EVERY_S = 0.1  # reading the socket costs ~15 us in a worker: 10 times a second

    def __init__(self, db: Database, ttl: float, size: int, realm: str = "pbx.local",
                 clock: Callable[[], float] = time.monotonic,
                 log: Callable[[str], None] = lambda text: None):
        self.db, self.ttl, self.realm = db, ttl, realm
        self._clock, self._log, self._size = clock, log, size
        self.trunks: tuple[Trunk, ...] = ()
        self._networks: tuple = ()
        self._source_trunk: dict[str, Trunk | None] = {}
        self._egress = EgressCache()
        self._emergency: dict[str, Egress | None] = {}
        self.sims: dict[str, SimPlan] = {}
        self._by: dict[str, dict] = {k: {} for k in ("manager", "district", "company", "caller_id")}
        self._did_numbers, self._did_companies = array("q"), array("i")
        self._dids = LRUCache(maxsize=size)
        self.relations = Relations()
        self.sticky_days = 0  # the window the relations were loaded for
        self.loaded = False  # every snapshot loaded once
        self._pending = Changes(everything=True)  # what is still to be applied
        self._next_check = 0.0
        self._serving_stale = False
        self.hits = self.misses = self.stale_serves = 0
        self.changes_applied = 0
        self.plans_changed = 0  # changes other than sticky relations (remembered decisions)
        self.full_loads = 0  # every snapshot reloaded whole
        # What changed since the change watcher last published (take_changes): tracked only
        # in the watcher's process, where `watching` is set.
        self.watching = False
        self._sims_changed: set[str] | None = None  # None: every SIM
        self._trunks_changed = True

    # -- keeping current ------------------------------------------------------------------

    def refresh(self) -> None:
        """Per request, at most every CHECK_EVERY_S: read pending notifications (no round
        trip) and apply them. A new connection reloads everything (notifications sent while
        there was none are lost). On a database error the changes stay pending and the old
        plans keep serving."""
        now = self._clock()
        if now < self._next_check:
            return
        self._next_check = now + self.CHECK_EVERY_S
        changed = self.db.changed()
        if changed.everything:
            self._pending = Changes(everything=True)
        elif changed:
            for table, kinds in changed.tables.items():
                self._merge(table, kinds)
        if self._pending:
            try:
                relations_only = set(self._pending.tables) == {RELATIONS_TABLE}
                self._apply(self._pending)
                self._pending = Changes()
                self.changes_applied += 1
                if not relations_only:
                    self.plans_changed += 1
                self._database_back()
            except DatabaseError as exc:
                self._database_gone(exc)

    def _merge(self, table: str, kinds) -> None:
        if self._pending.everything:
            return
        if kinds is None:
            self._pending.tables[table] = None
        elif self._pending.tables.get(table, {}) is not None:
            mine = self._pending.tables.setdefault(table, {})
            for kind, keys in kinds.items():
                mine.setdefault(kind, set()).update(keys)

    def _apply(self, changes: Changes) -> None:
        if changes.everything:
            trunks, sims = self.db.trunks(), self.db.sims(everything=True)
            index = self.db.did_index()
            self._set_trunks(trunks)
            self._set_all_sims(sims)
            self._set_did_index(index)
            self._dids.clear()
            self._load_relations()
            self.loaded = True
            self.full_loads += 1
            return
        tables = changes.tables
        if RELATIONS_TABLE in tables or "company" in tables or "district" in tables:
            self._update_relations(tables, changes.keys("client"))
        if "trunk" in tables:
            self._set_trunks(self.db.trunks())
            self._rebuild_sim_plans()  # every egress may have changed
        if any(t in tables and tables[t] is None for t in SIM_TABLES):
            self._set_all_sims(self.db.sims(everything=True))
            if tables.get("did", {}) is None:
                self._set_did_index(self.db.did_index())
            self._mark_dids(lambda plan: True)
            return
        keys = {SIM_KINDS[kind]: changes.keys(kind) for kind in SIM_KINDS}
        if any(keys.values()):
            self._update_sims(keys)
        numbers = keys["numbers"]
        if numbers:
            self._update_did_index(numbers, self.db.did_index(numbers))
        districts = {int(d) for d in keys["districts"]}
        companies = {int(c) for c in keys["companies"]}  # masking is a company's setting
        if numbers or districts or companies:
            self._mark_dids(lambda plan: plan is None or plan.number in numbers
                            or plan.district_id in districts or plan.company_id in companies)

    # -- trunks -------------------------------------------------------------------------------

    def _set_trunks(self, trunks: tuple[Trunk, ...]) -> None:
        self.trunks = trunks
        self._trunks_changed = True
        self._networks = tuple((t, tuple(ipaddress.ip_network(s, strict=False) for s in t.sources))
                               for t in trunks)
        self._source_trunk = {}
        self._egress = EgressCache(trunks)
        self._emergency = {}

    def trunk_for_source(self, ip: str) -> Trunk | None:
        try:
            return self._source_trunk[ip]
        except KeyError:
            pass
        trunk = match_source(self._networks, ip)
        if len(self._source_trunk) >= self._size:  # addresses come from the network
            self._source_trunk.clear()
        self._source_trunk[ip] = trunk
        return trunk

    def trunk_named(self, name: str | None) -> Trunk | None:
        return next((t for t in self.trunks if t.name == name), None)

    def take_changes(self) -> tuple[list[str] | None, set[str] | None | bool]:
        """For the change watcher: the trunks' source networks when they changed since the
        last call (else None), and the SIM usernames whose plans changed (None: all of them,
        False: none)."""
        networks = None
        if self._trunks_changed and self.loaded:
            self._trunks_changed = False
            networks = sorted({str(net) for _, nets in self._networks for net in nets})
        sims, self._sims_changed = self._sims_changed, set()
        return networks, (False if sims == set() or not self.loaded else sims)

    # -- SIMs ---------------------------------------------------------------------------------

    def _plan(self, sim) -> SimPlan:
        return sim_plan(sim, self._egress, check_sim)

    def _set_all_sims(self, sims) -> None:
        self.sims = {}
        self._by = {k: {} for k in self._by}
        for sim in sims:
            self._add(self._plan(sim))
        self._sims_changed = None

    def _rebuild_sim_plans(self) -> None:
        """After a trunk change: the same SIMs, new egress (their credentials unchanged)."""
        changed = self._sims_changed
        self._set_all_sims([plan.sim for plan in self.sims.values()])
        self._sims_changed = changed

    def _add(self, plan: SimPlan) -> None:
        sim = plan.sim
        self.sims[sim.username] = plan
        for kind, key in (("manager", sim.manager_id), ("district", sim.district_id),
                          ("company", sim.company_id), ("caller_id", sim.caller_id)):
            self._by[kind].setdefault(key, set()).add(sim.username)

    def _remove(self, username: str) -> None:
        plan = self.sims.pop(username, None)
        if plan is None:
            return
        sim = plan.sim
        for kind, key in (("manager", sim.manager_id), ("district", sim.district_id),
                          ("company", sim.company_id), ("caller_id", sim.caller_id)):
            members = self._by[kind].get(key)
            if members is not None:
                members.discard(username)
                if not members:
                    del self._by[kind][key]

    def _update_sims(self, keys: dict[str, set[str]]) -> None:
        """Reload the SIMs the keys touch: those cached under them go, those the database
        returns come (back); a district a SIM left or joined rings differently."""
        rows = self.db.sims(**keys)
        touched = set(keys["sims"])
        for kind, param, convert in (("manager", "managers", int), ("district", "districts", int),
                                     ("company", "companies", int), ("caller_id", "numbers", str)):
            for key in keys[param]:
                touched |= self._by[kind].get(convert(key), set())
        districts = {self.sims[u].sim.district_id for u in touched if u in self.sims}
        for username in touched:
            self._remove(username)
        for sim in rows:
            self._remove(sim.username)
            self._add(self._plan(sim))
            districts.add(sim.district_id)
            touched.add(sim.username)
        if self.watching and self._sims_changed is not None:
            self._sims_changed |= touched
        self._mark_dids(lambda plan: plan is not None and plan.district_id in districts)

    def sim(self, username: str | None) -> SimPlan | None:
        return self.sims.get(username) if username else None

    def emergency(self, plan: SimPlan) -> Egress | None:
        """A SIM's emergency egress, made on first use (the SIM's own number as caller ID)."""
        try:
            return self._emergency[plan.username]
        except KeyError:
            egress = self._emergency[plan.username] = emergency_egress(plan.username, self.trunks)
            return egress

    # -- DIDs ---------------------------------------------------------------------------------

    def _set_did_index(self, rows) -> None:
        pairs = sorted((int(number[1:]), company) for number, company in rows)
        self._did_numbers = array("q", (n for n, _ in pairs))
        self._did_companies = array("i", (c for _, c in pairs))

    def _update_did_index(self, numbers: set[str], rows) -> None:
        present = {int(number[1:]): company for number, company in rows}
        for number in numbers:
            key = int(number[1:]) if number[1:].isdigit() else None
            if key is None:
                continue
            i = bisect.bisect_left(self._did_numbers, key)
            found = i < len(self._did_numbers) and self._did_numbers[i] == key
            if key in present:
                if found:
                    self._did_companies[i] = present[key]
                else:
                    self._did_numbers.insert(i, key)
                    self._did_companies.insert(i, present[key])
            elif found:
                del self._did_numbers[i]
                del self._did_companies[i]

    def did_company(self, number: str) -> int | None:
        """The company renting this DID, None when it is not one of ours."""
        try:
            key = int(number[1:])
        except ValueError:
            return None
        i = bisect.bisect_left(self._did_numbers, key)
        if i < len(self._did_numbers) and self._did_numbers[i] == key:
            return self._did_companies[i]
        return None

    def _mark_dids(self, touched) -> None:
        """Cached DID plans the change touched are re-read on their next use (and kept
        serving should the database not answer then)."""
        for entry in self._dids.values():
            if entry.fresh and touched(entry.value):
                entry.fresh = False

    def did(self, number: str) -> DidPlan | None:
        """The DID's inbound plan; DatabaseError when it was never cached and cannot be read."""
        entry = self._dids.get(number)
        if entry is not None and entry.fresh and self._clock() < entry.expires:
            self.hits += 1
            return entry.value
        self.misses += 1
        try:
            route = self.db.did_route(number)
        except DatabaseError as exc:
            if entry is None:
                raise
            self.stale_serves += 1
            self._database_gone(exc)
            return entry.value
        self._database_back()
        plan = did_plan(route) if route is not None else None
        self._dids[number] = _Entry(plan, self._clock() + self.ttl)
        return plan

    def number(self, number: str) -> Number:
        """What the routing data says about one E.164 number (decision.Number)."""
        company = self.did_company(number)
        sim = self.sims.get(number)
        if company is None:
            return Number(sim=sim) if sim is not None else NOT_OURS
        try:
            did = self.did(number)
        except DatabaseError:
            did = UNAVAILABLE
        return Number(did_company=company, did=did, sim=sim)

    # -- sticky relations ---------------------------------------------------------------------

    def _load_relations(self) -> None:
        days = self.db.sticky_window()
        self.relations = Relations(self.db.sticky_relations(days) if days else ())
        self.sticky_days = days

    def _update_relations(self, tables, clients: set[str]) -> None:
        """A longer window (a setting changed) or a bulk change: reload whole; else only
        the clients notified."""
        window = self.db.sticky_window() if "company" in tables or "district" in tables \
            else self.sticky_days
        if window > self.sticky_days or tables.get(RELATIONS_TABLE, {}) is None:
            self._load_relations()
        elif clients and self.sticky_days:
            self.relations.replace(clients, self.db.sticky_relations(self.sticky_days, clients))

    def sticky(self, company_id: int, client: str) -> Sticky | None:
        """The client's relation with the company, and its manager as the plans say now."""
        found = self.relations.get(company_id, client)
        if found is None:
            return None
        manager_id, answered = found
        plans = [self.sims[u] for u in sorted(self._by["manager"].get(manager_id, ()))]
        if not plans:
            return Sticky(manager_id, answered, ())
        first = plans[0].sim
        return Sticky(manager_id, answered, tuple(p.username for p in plans if p.sim.sim_active),
                      first.manager_active, first.company_id)

    # -- the database's state, said once ------------------------------------------------------

    def _database_gone(self, exc: Exception) -> None:
        if not self._serving_stale:
            self._serving_stale = True
            self._log(f"database unavailable, routing from cached data: {exc}")

    def _database_back(self) -> None:
        if self._serving_stale:
            self._serving_stale = False
            self._log("database reachable again, cached data refreshed")


def match_source(networks, ip: str) -> Trunk | None:
    """The trunk whose source networks contain ip; the most specific network wins."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    best, best_len = None, -1
    for trunk, nets in networks:
        for net in nets:
            if address in net and net.prefixlen > best_len:
                best, best_len = trunk, net.prefixlen
    return best
