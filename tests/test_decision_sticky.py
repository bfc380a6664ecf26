"""Sticky manager (README, Sticky manager) on the pure core: which SIMs ring first for a client
who had an answered call with a manager, and every case where the normal order stands. Also
the worker's relations kept by client from notifications, and remembered decisions."""

from __future__ import annotations

import pytest

from kemi.adapter import RELAY_TO_SIM, Router
from kemi.config import Config
from kemi.decision import DAY_S, STICKY_APPLIES, Request, Ring, Sticky, decide, sticky_first
from kemi.relations import Relations

from harness.fakes import FakeKSR, demo_directory, demo_records, facts, sim

IVAN, BORIS = "+79181110003", "+79181110004"  # Sochi: Ivan (manager 1) first, Boris (2) second
BORIS_2 = "+79181110014"  # a second SIM of Boris's
SOCHI_DID, MOSCOW_DID = "+78622550101", "+74952000000"
CLIENT, OTHER_CLIENT = "+79891234567", "+79891230000"
NOW = 1_800_000_000.0
KUBAN, MOSCOW = 1, 2


def directory(days=30, relations=((CLIENT, KUBAN, 2, NOW - 3600),), sims=None):
    _, demo_sims, dids = demo_records()
    return demo_directory(dids={n: r._replace(sticky_days=days) for n, r in dids.items()},
                          sims=demo_sims if sims is None else sims,
                          relations=[(c, co, m, int(a)) for c, co, m, a in relations])


def inbound(caller=CLIENT, called=SOCHI_DID):
    return Request("INVITE", "127.0.0.2", called, caller)


def decided(d, req=None, now=NOW):
    req = req or inbound()
    return decide(req, facts(d, req, now=now))


def test_a_client_who_spoke_with_boris_rings_boris_first_then_the_district_without_him():
    ring = decided(directory())
    assert ring.targets == (BORIS, IVAN) and ring.sticky == (BORIS,)
    assert ring.client == CLIENT and ring.display == '"Sochi"'


def test_every_active_sim_of_the_manager_rings_first_in_order_never_twice():
    _, sims, _ = demo_records()
    sims += [sim(BORIS_2, manager_id=2), sim("+79181110015", manager_id=2, sim_active=False)]
    ring = decided(directory(sims=sims))
    assert ring.targets == (BORIS, BORIS_2, IVAN) and ring.sticky == (BORIS, BORIS_2)


@pytest.mark.parametrize("days, relations, sims, why", [
    (0, None, None, "sticky routing is off for this district"),
    (30, (), None, "no answered call of this client with a manager of the company on record"),
    (30, ((CLIENT, KUBAN, 2, NOW - 30 * DAY_S - 1),), None,
     "the last answered call is older than the 30-day window"),
    (30, None, [sim(IVAN), sim(BORIS, manager_id=2, manager_active=False)],
     "the manager of the last answered call is inactive"),
    (30, None, [sim(IVAN), sim(BORIS, "Moscow", manager_id=2, company_id=2)],
     "the manager of the last answered call is no longer in a district of the company"),
    (30, None, [sim(IVAN), sim(BORIS, manager_id=2, sim_active=False)],
     "the manager of the last answered call has no active SIM"),
    (30, None, [sim(IVAN)], "the manager of the last answered call has no active SIM"),  # removed
    (30, ((CLIENT, KUBAN, 1, NOW - 60),), None,
     "the manager of the last answered call rings first anyway"),
    (30, ((CLIENT, MOSCOW, 2, NOW - 60),), None,  # a relation with another company only
     "no answered call of this client with a manager of the company on record"),
])
def test_the_normal_order_stands(days, relations, sims, why):
    d = directory(days, relations if relations is not None else ((CLIENT, KUBAN, 2, NOW - 60),),
                  sims)
    req = inbound()
    f = facts(d, req, now=NOW)
    did = f.numbers[SOCHI_DID].did
    assert sticky_first(did, f.sticky.get(KUBAN), NOW) == ((), why)
    ring = decide(req, f)
    assert ring.sticky == () and ring.targets == did.targets


def test_the_window_includes_its_last_second():
    d = directory(relations=((CLIENT, KUBAN, 2, NOW - 30 * DAY_S),))
    assert decided(d).sticky == (BORIS,)
    assert decided(d, now=NOW + 1).sticky == ()


def test_a_shorter_district_window_ends_a_relation_a_company_window_keeps():
    assert decided(directory(7, ((CLIENT, KUBAN, 2, NOW - 8 * DAY_S),))).sticky == ()
    assert decided(directory(9, ((CLIENT, KUBAN, 2, NOW - 8 * DAY_S),))).sticky == (BORIS,)


@pytest.mark.parametrize("caller", ["anonymous", None, "Restricted"])
def test_a_caller_that_is_no_number_is_not_looked_up(caller):
    req = inbound(caller)
    f = facts(directory(), req, now=NOW)
    assert f.sticky == {}
    assert decide(req, f).targets == (IVAN, BORIS)


def test_the_caller_in_any_carrier_format_is_the_same_client():
    assert decided(directory(), inbound("89891234567")).sticky == (BORIS,)


def test_a_manager_calling_the_district_is_not_a_client():
    """A SIM dialling its own company's DID rings the district in order (internal)."""
    d = directory(relations=((IVAN, KUBAN, 2, NOW - 60),))
    req = Request("INVITE", "127.0.0.1", SOCHI_DID, IVAN)
    ring = decide(req, facts(d, req, IVAN, now=NOW))
    assert ring.targets == (IVAN, BORIS) and ring.sticky == ()


def test_a_masked_district_rings_the_sticky_manager_showing_a_token():
    from kemi.masking import Keys, Masker
    _, sims, dids = demo_records()
    d = demo_directory(dids={n: r._replace(sticky_days=30, mask_numbers=True)
                             for n, r in dids.items()},
                       sims=sims, relations=[(CLIENT, KUBAN, 2, int(NOW - 60))])
    masker = Masker(Keys.parse("1 EF4359D8D580AA4F7F036D6F04FC6A94 active"))
    req = inbound()
    ring = decide(req, facts(d, req, masker=masker, now=NOW))
    assert ring.masked and ring.caller.startswith("+28") and ring.client == CLIENT
    assert ring.targets == (BORIS, IVAN) and ring.sticky == (BORIS,)


# -- the worker's relations ---------------------------------------------------------------

def test_relations_are_found_by_company_and_client_and_replaced_by_client():
    rel = Relations([(CLIENT, 1, 2, 100), (CLIENT, 2, 9, 50), (OTHER_CLIENT, 1, 1, 70),
                     ("anonymous", 1, 1, 1)])
    assert len(rel) == 3 and rel.nbytes == 3 * 24
    assert rel.get(1, CLIENT) == (2, 100) and rel.get(2, CLIENT) == (9, 50)
    assert rel.get(3, CLIENT) is None and rel.get(1, "+79890000000") is None
    assert rel.get(1, "anonymous") is None
    rel.replace([CLIENT], [(CLIENT, 1, 1, 200)])  # company 2's relation left the window
    assert rel.get(1, CLIENT) == (1, 200) and rel.get(2, CLIENT) is None
    assert rel.get(1, OTHER_CLIENT) == (1, 70)
    rel.replace([], [("+79890000001", 1, 2, 300)])  # a new client
    assert rel.get(1, "+79890000001") == (2, 300) and len(rel) == 3


def test_a_notified_client_is_reloaded_alone_and_remembered_decisions_stay():
    d = directory(relations=())
    db = d.db
    plans_before = d.plans_changed
    db.asked.clear()
    db.relations.append((CLIENT, KUBAN, 2, int(NOW - 5)))
    db.pending.append(f"sticky_relation client={CLIENT}")
    d._next_check = 0
    d.refresh()
    assert db.asked == ["sticky_relations_changed"]  # no SIM, DID or window query
    assert d.relations.get(KUBAN, CLIENT) == (2, int(NOW - 5))
    assert d.plans_changed == plans_before  # remembered decisions of others still hold


def test_a_longer_window_reloads_every_relation_a_shorter_one_does_not():
    d = directory()
    db = d.db
    db.asked.clear()
    db.window = 60
    db.pending.append("district district=2")
    d._next_check = 0
    d.refresh()
    assert "sticky_window" in db.asked and "sticky_relations" in db.asked and d.sticky_days == 60
    db.asked.clear()
    db.window = 7
    db.pending.append("company company=1")
    d._next_check = 0
    d.refresh()
    assert "sticky_relations" not in db.asked  # decide checks each district's own window


# -- the adapter: a remembered decision never hides a new relation -------------------------

def _router(d, clock):
    return Router(FakeKSR(registered={IVAN, BORIS}), Config(), d, clock=clock)


def _fields(caller=CLIENT):
    return f"INVITE|127.0.0.2|{SOCHI_DID}|{caller}|<null>|<null>|<null>|<null>|<null>|<null>"


def test_a_decision_remembered_without_a_relation_is_made_again_once_one_arrives():
    d = directory(relations=())
    router = _router(d, lambda: NOW)
    assert router.route_initial(None, _fields()) == RELAY_TO_SIM
    assert router.ksr.pv.values["$avp(plan)"].split("|")[-1] == IVAN
    assert router.route_initial(None, _fields()) == RELAY_TO_SIM  # remembered
    d.db.relations.append((CLIENT, KUBAN, 2, int(NOW - 5)))
    d.db.pending.append(f"sticky_relation client={CLIENT}")
    d._next_check = 0
    assert router.route_initial(None, _fields()) == RELAY_TO_SIM
    plan = router.ksr.pv.values["$avp(plan)"].split("|")
    assert plan[-1] == BORIS and plan[3] == IVAN  # Boris first, Ivan next
    assert plan[7].endswith(f"{BORIS}\t1")  # the record says: sticky


def test_a_sticky_decision_is_not_remembered_past_its_window():
    clock = [NOW]
    d = directory(relations=((CLIENT, KUBAN, 2, NOW - 30 * DAY_S),))
    router = _router(d, lambda: clock[0])
    router.route_initial(None, _fields())
    assert router.ksr.pv.values["$avp(plan)"].split("|")[-1] == BORIS
    clock[0] += 1
    router.route_initial(None, _fields())
    assert router.ksr.pv.values["$avp(plan)"].split("|")[-1] == IVAN


def test_sticky_applies_explains_itself():
    assert STICKY_APPLIES == "the client's last answered call was with this manager"
    assert isinstance(decided(directory()), Ring)
    assert Sticky(2, NOW, (BORIS,)).company_id is None
