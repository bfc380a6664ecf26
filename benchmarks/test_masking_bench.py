"""Cost of masked numbers on the call path (make bench): a token made (an inbound call to a
masked district) and one decoded (a SIM redialling it), three ways: cached (a repeat caller,
the worker's bounded cache), new (the company's cipher built, the number not seen yet) and
cold (a worker's first call for the company: the cipher's AES key schedule built too).
Figures, not pass/fail."""

from __future__ import annotations

import itertools

from kemi.masking import Keys, Masker

KEYS = Keys.parse("1 EF4359D8D580AA4F7F036D6F04FC6A94 active\n")
CLIENT = "+79891234567"
COMPANY = 1
TOKEN = Masker(KEYS).mask(CLIENT, COMPANY)


def test_mask_cached_a_repeat_caller(benchmark):
    masker = Masker(KEYS)
    masker.mask(CLIENT, COMPANY)
    assert benchmark(masker.mask, CLIENT, COMPANY) == TOKEN


def test_mask_a_new_caller(benchmark):
    masker = Masker(KEYS, cache=10 ** 7)
    masker.mask(CLIENT, COMPANY)  # the company's cipher built, as after the first call
    numbers = (f"+7918{n:07d}" for n in itertools.count())
    assert benchmark(lambda: masker.mask(next(numbers), COMPANY)).startswith("+281")


def test_mask_cold_a_workers_first_call(benchmark):
    assert benchmark(lambda: Masker(KEYS).mask(CLIENT, COMPANY)) == TOKEN


def test_unmask_cached_a_redial(benchmark):
    masker = Masker(KEYS)
    masker.unmask(TOKEN, COMPANY)
    assert benchmark(masker.unmask, TOKEN, COMPANY) == CLIENT


def test_unmask_a_new_token(benchmark):
    source = Masker(KEYS, cache=10 ** 7)
    tokens = iter([source.mask(f"+7918{n:07d}", COMPANY) for n in range(3000)])
    masker = Masker(KEYS, cache=10 ** 7)
    masker.unmask(TOKEN, COMPANY)
    result = benchmark.pedantic(lambda: masker.unmask(next(tokens), COMPANY), rounds=3000)
    assert result.startswith("+7918")


def test_unmask_cold_a_workers_first_redial(benchmark):
    assert benchmark(lambda: Masker(KEYS).unmask(TOKEN, COMPANY)) == CLIENT
