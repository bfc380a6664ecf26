"""Cost of masked numbers on the call path (make bench): one token made (inbound, a masked
district) and one decoded (a SIM redialling it), with the per-(key, company) cipher built
already, as in a running worker, and cold (the cipher's AES key schedule built for the
call). Figures, not pass/fail."""

from __future__ import annotations

from kemi.masking import Keys, Masker

KEYS = Keys.parse("1 EF4359D8D580AA4F7F036D6F04FC6A94 active\n")
CLIENT = "+79891234567"
COMPANY = 1
TOKEN = Masker(KEYS).mask(CLIENT, COMPANY)


def test_mask_a_client_number(benchmark):
    masker = Masker(KEYS)
    masker.mask(CLIENT, COMPANY)  # the company's cipher built, as after the first call
    assert benchmark(masker.mask, CLIENT, COMPANY) == TOKEN


def test_unmask_a_token(benchmark):
    masker = Masker(KEYS)
    masker.unmask(TOKEN, COMPANY)
    assert benchmark(masker.unmask, TOKEN, COMPANY) == CLIENT


def test_mask_cold_a_new_company(benchmark):
    assert benchmark(lambda: Masker(KEYS).mask(CLIENT, COMPANY)) == TOKEN
