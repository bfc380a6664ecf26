"""In-memory routing data and a KSR stand-in for the fast tests (no Kamailio, no database)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from kemi.directory import match_source
from kemi.model import DidRoute, Sim, Trunk

KUBAN = Trunk(1, "kuban-telecom", "Kuban Telecom", ("127.0.0.2/32",), "e164",
              egress_host="127.0.0.2", is_default=True)
SOUTH = Trunk(2, "south-link", "South Link", ("10.20.0.0/16",), "national",
              egress_host="10.20.0.1", egress_port=5080, auth_username="kuban-realty",
              auth_password="s3cret", accepts_foreign_caller_id=True)
WEST = Trunk(3, "west-line", "West Line", ("10.30.0.0/16",), "plus_less", egress_host="10.30.0.1",
             transport="tcp")

SOCHI_NUMBER = "+78622550101"


def sim(username, district="Sochi", sim_active=True, manager_active=True, manager_id=1,
        company_id=1, caller_id=SOCHI_NUMBER, caller_id_trunk_id=1, **policy):
    return Sim(username, "0" * 32, sim_active, manager_active, manager_id, company_id, district,
               caller_id, caller_id_trunk_id, **policy)


@dataclass
class FakeRoutingData:
    """model.RoutingData over dicts; counts lookups so tests can see what was asked."""

    all_trunks: tuple = (KUBAN, SOUTH, WEST)
    dids: dict = field(default_factory=dict)
    sims: dict = field(default_factory=dict)
    lookups: list = field(default_factory=list)

    def __post_init__(self):
        self._networks = tuple((t, tuple(ipaddress.ip_network(s) for s in t.sources))
                               for t in self.all_trunks)

    def trunks(self):
        return self.all_trunks

    hits = misses = stale_serves = generation = 0
    networks_changed = True  # trunk_networks_if_changed answers once, then after a change

    def refresh_if_changed(self):
        self.lookups.append(("refresh",))

    def trunk_networks_if_changed(self):
        if not self.networks_changed:
            return None
        self.networks_changed = False
        return sorted({s for t in self.all_trunks for s in t.sources})

    def trunk_for_source(self, ip):
        return match_source(self._networks, ip)

    def did_route(self, number, unknown_if_unavailable=False):
        self.lookups.append(("did", number))
        return self.dids.get(number)

    def sim(self, username):
        self.lookups.append(("sim", username))
        return self.sims.get(username)


def demo_data() -> FakeRoutingData:
    return FakeRoutingData(
        dids={
            "+78622550101": DidRoute("+78622550101", 1, 2, "Sochi", True,
                                     ("+79181110003", "+79181110004")),
            "+78612100101": DidRoute("+78612100101", 1, 1, "Krasnodar", True, ("+79181110001",)),
            "+78613350101": DidRoute("+78613350101", 1, 4, "Anapa", True, ()),
            "+78617300101": DidRoute("+78617300101", 1, 3, "Novorossiysk", False, ("+79181110005",)),
            "+74952000000": DidRoute("+74952000000", 2, 9, "Moscow", True, ("+79161110001",)),
        },
        sims={
            "+79181110003": sim("+79181110003"),
            "+79181110004": sim("+79181110004", manager_id=2),
            "+79181110008": sim("+79181110008", "Anapa", sim_active=False),
            "+79181110007": sim("+79181110007", "Anapa", manager_active=False),
            "+79161110001": sim("+79161110001", "Moscow", company_id=2, caller_id="+74952000000"),
        },
    )


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
        for module in ("tm", "sl", "rr", "uac", "hdr", "dialog", "textops"):
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
