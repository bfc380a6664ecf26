"""Cost of the pure routing decision per call (make bench): figures, not pass/fail."""

from __future__ import annotations

from kemi.decision import Call, decide
from kemi.phone import to_e164

from tests.fakes import demo_data

DATA = demo_data()
INBOUND = Call("INVITE", "127.0.0.2", "+78622550101", "+79891234567")
NATIONAL = Call("INVITE", "127.0.0.2", "88622550101", "89891234567")


def test_decide_inbound_canonical_numbers(benchmark):
    to_e164("+78622550101"), to_e164("+79891234567")  # memo warm, as in a running worker
    assert benchmark(decide, INBOUND, DATA).display == "Sochi"


def test_decide_inbound_national_format(benchmark):
    assert benchmark(decide, NATIONAL, DATA).caller == "+79891234567"


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
