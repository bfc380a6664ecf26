"""Cost of one call's Python path (make bench): the pure decision over plans, and the whole
route_initial of the adapter (facts, decision, plan for kamailio.cfg) with a KSR fake.
Figures, not pass/fail."""

from __future__ import annotations

from kemi.adapter import NULL, REQUEST_FIELDS, SEPARATOR, Router
from kemi.config import Config
from kemi.decision import Request, decide
from kemi.phone import to_e164

from harness.fakes import FakeKSR, demo_directory, facts

DIRECTORY = demo_directory()
INBOUND = Request("INVITE", "127.0.0.2", "+78622550101", "+79891234567")
NATIONAL = Request("INVITE", "127.0.0.2", "88622550101", "89891234567")
OUTBOUND = Request("INVITE", "127.0.0.1", "89891234567", "+79181110003")


def fields(values: dict) -> str:
    return SEPARATOR.join(str(values.get(name, NULL)) for name in REQUEST_FIELDS)


def test_decide_inbound_over_plans(benchmark):
    to_e164("+78622550101"), to_e164("+79891234567")  # memo warm, as in a running worker
    known = facts(DIRECTORY, INBOUND)
    assert benchmark(decide, INBOUND, known).display == '"Sochi"'


def test_decide_outbound_over_plans(benchmark):
    known = facts(DIRECTORY, OUTBOUND, "+79181110003")
    assert benchmark(decide, OUTBOUND, known).caller == "+78622550101"


def _inbound_router():
    ksr = FakeKSR(registered={"+79181110003"})
    router = Router(ksr, Config(log_level=1), DIRECTORY, clock=lambda: 0.0)
    router._stats_due = float("inf")
    line = fields({"$rm": "INVITE", "$si": "127.0.0.2", "$rU": "88622550101", "$fU": "89891234567"})
    return ksr, router, line


def test_whole_inbound_call_in_python(benchmark):
    """route_initial for a carrier's call to a DID: facts, decision, aim, plan (the
    decision not remembered from an earlier call with the same fields)."""
    ksr, router, line = _inbound_router()

    def call():
        ksr.calls.clear()
        router._decided.clear()
        return router.route_initial(None, line)
    assert benchmark(call) == 3


def test_whole_inbound_call_in_python_decision_remembered(benchmark):
    ksr, router, line = _inbound_router()

    def call():
        ksr.calls.clear()
        return router.route_initial(None, line)
    assert benchmark(call) == 3


def test_whole_outbound_call_in_python(benchmark):
    """route_initial for an authenticated SIM calling a client: facts (the digest verified
    by kamailio.cfg), decision, plan."""
    ksr = FakeKSR()
    router = Router(ksr, Config(log_level=1), DIRECTORY, clock=lambda: 0.0)
    router._stats_due = float("inf")
    line = fields({"$rm": "INVITE", "$si": "127.0.0.1", "$rU": "89891234567",
                   "$fU": "+79181110003", "$au": "+79181110003", "$var(authenticated)": "1"})

    def call():
        ksr.calls.clear()
        router._decided.clear()
        return router.route_initial(None, line)
    assert benchmark(call) == 2


def test_normalise_uncached(benchmark):
    """Separators: the parser."""
    def cold():
        to_e164.cache_clear()
        return to_e164("8 (989) 123-45-67")
    assert benchmark(cold) == "+79891234567"


def test_normalise_canonical_uncached(benchmark):
    def cold():
        to_e164.cache_clear()
        return to_e164("+79891234567")
    assert benchmark(cold) == "+79891234567"


def test_normalise_national_uncached(benchmark):
    """A caller never seen before, in the form trunks send (8 + ten digits)."""
    def cold():
        to_e164.cache_clear()
        return to_e164("89891234567")
    assert benchmark(cold) == "+79891234567"
