"""In-memory routing data and a KSR stand-in for the fast tests (no Kamailio, no database).

FakeDb answers what kemi.db.Database answers, from records held here, so the real Directory
and plan building run on it; facts() gathers a request's facts as the adapter does."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from kemi.db import Changes, DatabaseUnavailable
from kemi.decision import (NO_CREDENTIALS, EMERGENCY_NUMBERS, Facts, Request, Verified,
                           numbers_to_look_up, sticky_to_look_up)
from kemi.phone import to_e164
from kemi.directory import Directory
from kemi.model import DidRoute, Sim, Trunk

KUBAN = Trunk(1, "kuban-telecom", "Kuban Telecom", ("127.0.0.2/32",), "e164",
              egress_host="127.0.0.2", is_default=True)
SOUTH = Trunk(2, "south-link", "South Link", ("10.20.0.0/16",), "national",
              egress_host="10.20.0.1", egress_port=5080, auth_username="kuban-realty",
              auth_password="s3cret", accepts_foreign_caller_id=True)
WEST = Trunk(3, "west-line", "West Line", ("10.30.0.0/16",), "plus_less", egress_host="10.30.0.1",
             transport="tcp")

SOCHI_NUMBER = "+78622550101"
DISTRICTS = {"Krasnodar": 1, "Sochi": 2, "Novorossiysk": 3, "Anapa": 4, "Moscow": 9}


COMPANIES = {1: "Kuban Realty", 2: "Moscow Homes"}


def sim(username, district="Sochi", sim_active=True, manager_active=True, manager_id=1,
        company_id=1, caller_id=SOCHI_NUMBER, caller_id_trunk_id=1, **policy) -> Sim:
    return Sim(username, "0" * 32, sim_active, manager_active, manager_id, DISTRICTS[district],
               company_id, district, caller_id, caller_id_trunk_id,
               **{"company_name": COMPANIES[company_id], **policy})


def demo_records():
    dids = {
        "+78622550101": DidRoute("+78622550101", 1, 2, "Sochi", True,
                                 ("+79181110003", "+79181110004")),
        "+78612100101": DidRoute("+78612100101", 1, 1, "Krasnodar", True, ("+79181110001",)),
        "+78613350101": DidRoute("+78613350101", 1, 4, "Anapa", True, ()),
        "+78617300101": DidRoute("+78617300101", 1, 3, "Novorossiysk", False, ("+79181110005",)),
        "+74952000000": DidRoute("+74952000000", 2, 9, "Moscow", True, ("+79161110001",)),
    }
    dids = {number: route._replace(company_name=COMPANIES[route.company_id])
            for number, route in dids.items()}
    sims = [
        sim("+79181110003"),
        sim("+79181110004", manager_id=2),
        sim("+79181110008", "Anapa", sim_active=False, manager_id=3),
        sim("+79181110007", "Anapa", manager_active=False, manager_id=4),
        sim("+79161110001", "Moscow", company_id=2, caller_id="+74952000000", manager_id=9),
    ]
    return (KUBAN, SOUTH, WEST), sims, dids


@dataclass
class FakeDb:
    """kemi.db.Database's record interface over lists; `down` makes every query fail."""

    all_trunks: tuple = ()
    all_sims: list = field(default_factory=list)
    dids: dict = field(default_factory=dict)
    relations: list = field(default_factory=list)  # (client, company, manager, answered)
    window: int = 30  # the longest sticky window, days
    down: bool = False
    pending: list = field(default_factory=list)  # payloads notified since the last look
    asked: list = field(default_factory=list)
    connected: bool = False
    breaker_open = False

    def _ask(self, name):
        self.asked.append(name)
        if self.down:
            raise DatabaseUnavailable("fake database down")

    def changed(self) -> Changes:
        if not self.connected and not self.down:
            self.connected = True
            return Changes(everything=True)
        changes = Changes()
        for payload in self.pending:
            changes.add(payload)
        self.pending = []
        return changes

    def trunks(self):
        self._ask("trunks")
        return self.all_trunks

    def sims(self, sims=(), managers=(), districts=(), companies=(), numbers=(), everything=False):
        self._ask("sims" if everything else "sims_changed")
        if everything:
            return list(self.all_sims)
        return [s for s in self.all_sims
                if s.username in sims or str(s.manager_id) in managers
                or str(s.district_id) in districts or str(s.company_id) in companies
                or s.caller_id in numbers]

    def did_index(self, numbers=None):
        self._ask("did_index" if numbers is None else "did_index_changed")
        return [(n, r.company_id) for n, r in self.dids.items() if numbers is None or n in numbers]

    def did_route(self, number):
        self._ask("did_route")
        return self.dids.get(number)

    def sticky_window(self):
        self._ask("sticky_window")
        return self.window

    def sticky_relations(self, days, clients=None):
        self._ask("sticky_relations" if clients is None else "sticky_relations_changed")
        return [r for r in self.relations if clients is None or r[0] in clients]


def demo_directory(**changes) -> Directory:
    trunks, sims, dids = demo_records()
    db = FakeDb(changes.get("trunks", trunks), changes.get("sims", sims), changes.get("dids", dids),
                changes.get("relations", []))
    directory = Directory(db, ttl=60, size=100, realm="pbx.local")
    directory.refresh()
    return directory


def facts(directory: Directory, req: Request, sim_username: str | None = None,
          masker=None, now: float = 0.0) -> Facts:
    """The facts of a request as the adapter gathers them; sim_username: authenticated."""
    trunk = directory.trunk_for_source(req.source_ip)
    auth = None
    if trunk is None:
        auth = Verified(directory.sim(sim_username)) if sim_username else NO_CREDENTIALS
    plan = auth.plan if isinstance(auth, Verified) else None
    numbers = {n: directory.number(n) for n in numbers_to_look_up(req, trunk, "RU", plan, masker)}
    emergency = (directory.emergency(plan) if plan is not None
                 and req.ruri_user in EMERGENCY_NUMBERS else None)
    client = to_e164(req.from_user, "RU")
    sticky = {c: directory.sticky(c, client) for c in sticky_to_look_up(req, numbers)} \
        if trunk is not None else {}
    return Facts(trunk, auth, numbers, emergency, masker, sticky, now)


def with_trunks(directory: Directory, trunks) -> Directory:
    db = directory.db
    return demo_directory(trunks=tuple(trunks), sims=db.all_sims, dids=db.dids)


# -- a KSR stand-in ------------------------------------------------------------------------

class _Recorder:
    """An attribute namespace whose functions record their calls on the owning FakeKSR."""

    def __init__(self, ksr, module, returns):
        self._ksr, self._module, self._returns = ksr, module, returns

    def __getattr__(self, name):
        def call(*args):
            self._ksr.calls.append((f"{self._module}.{name}", *args))
            result = self._returns.get(name, 1)
            return result(*args) if callable(result) else result
        return call


class FakePV:
    def __init__(self, ksr, values):
        self._ksr, self.values = ksr, values

    def get(self, name):
        self._ksr.calls.append(("pv.get", name))
        value = self.values.get(name)
        if isinstance(value, Exception):
            raise value
        return value

    def sets(self, name, value):
        self._ksr.calls.append(("pv.sets", name, value))
        self.values[name] = value
        return True

    def seti(self, name, value):
        self._ksr.calls.append(("pv.seti", name, value))
        self.values[name] = value
        return True


class FakeKSR:
    """Just enough of app_python3's KSR: records every call, pv values from a dict."""

    def __init__(self, pv=None, registered=(), auth_rc=1):
        self.calls: list[tuple] = []
        self.logs: list[tuple[str, str]] = []
        self.registered = set(registered)
        self.pv = FakePV(self, dict(pv or {}))
        self.registrar = _Recorder(self, "registrar", {
            "lookup_uri": lambda table, uri: 1 if uri.split("@")[0][4:] in self.registered else -1})
        self.auth = _Recorder(self, "auth", {"pv_auth_check": auth_rc})
        for module in ("tm", "sl", "rr", "uac", "hdr", "dialog", "textops", "xhttp_prom", "acc"):
            setattr(self, module, _Recorder(self, module, {}))
        self.shared: dict[str, int] = {}  # the htable, shared by all "workers"
        self.htable = _Recorder(self, "htable", {
            "sht_inc": lambda t, k: self._sht_add(t, k, 1),
            "sht_dec": lambda t, k: self._sht_add(t, k, -1),
            "sht_get": lambda t, k: self.shared.get(f"{t}/{k}"),
            "sht_seti": lambda t, k, v: self.shared.__setitem__(f"{t}/{k}", v)})

    def _sht_add(self, table, key, delta):
        self.shared[f"{table}/{key}"] = self.shared.get(f"{table}/{key}", 0) + delta
        return self.shared[f"{table}/{key}"]

    def seturi(self, uri):
        self.calls.append(("seturi", uri))
        return 1

    def info(self, text):
        self.logs.append(("info", text))

    def notice(self, text):
        self.logs.append(("notice", text))

    def err(self, text):
        self.logs.append(("err", text))

    def called(self, name):
        return [c[1:] for c in self.calls if c[0] == name]


__all__ = ["KUBAN", "SOUTH", "WEST", "FakeDb", "FakeKSR", "demo_directory", "demo_records",
           "facts", "replace", "sim", "with_trunks"]
