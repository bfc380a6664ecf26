"""Masked client numbers in the routing policy (README, Masked client numbers), on the pure
core: what a masked district's SIMs see, and what a SIM dialling a token reaches."""

from __future__ import annotations

from dataclasses import replace

import pytest

from kemi.decision import NUMBER_DIALED_INCORRECTLY, CallOut, Request, Ring, decide
from kemi.masking import Keys, Masker

from harness.fakes import demo_records, demo_directory, facts, sim

TRUNK_IP, STRANGER_IP = "127.0.0.2", "127.0.0.3"
IVAN, MOSCOW_SIM = "+79181110003", "+79161110001"
CLIENT = "+79891234567"
MASKER = Masker(Keys.parse("1 EF4359D8D580AA4F7F036D6F04FC6A94 active"))


def masked_directory(company_masks=True):
    """Company 1's Sochi district masks (its DID plan and its SIMs); Moscow (company 2) not."""
    trunks, sims, dids = demo_records()
    dids = dict(dids)
    dids["+78622550101"] = dids["+78622550101"]._replace(mask_numbers=company_masks)
    sims = [s._replace(mask_numbers=company_masks and s.company_id == 1) for s in sims]
    return demo_directory(trunks=trunks, sims=sims, dids=dids)


def decided(req, sim_username=None, directory=None, masker=MASKER):
    directory = directory or masked_directory()
    return decide(req, facts(directory, req, sim_username, masker))


def inbound(from_user=CLIENT, **kw):
    return Request("INVITE", TRUNK_IP, "+78622550101", from_user, **kw)


def dial(ruri_user, source="127.0.0.1"):
    return Request("INVITE", source, ruri_user, IVAN)


def test_a_masked_district_shows_the_caller_as_the_companys_token():
    ring = decided(inbound("89891234567", pai_user="89891234567"))
    token = MASKER.mask(CLIENT, 1)
    assert ring == Ring(("+79181110003", "+79181110004"), token, '"Sochi"', token,
                        "kuban-telecom", masked=True, where="Kuban Realty/Sochi",
                        did="+78622550101", client=CLIENT)  # the record keeps the real number


def test_an_unmasked_district_shows_the_number_as_before():
    ring = decided(inbound(), directory=masked_directory(company_masks=False))
    assert ring.caller == CLIENT and not ring.masked


@pytest.mark.parametrize("from_user, privacy", [
    ("anonymous", None), ("Restricted", None), (None, None), ("hello", None),
    (CLIENT, "id"), (CLIENT, "user;header"),
])
def test_a_masked_caller_that_is_not_a_number_or_withheld_is_anonymous(from_user, privacy):
    ring = decided(inbound(from_user, pai_user="89891234567", privacy=privacy))
    assert (ring.caller, ring.pai, ring.masked) == ("anonymous", None, True)


def test_without_keys_a_masked_district_still_rings_and_shows_nobody():
    ring = decided(inbound(pai_user=CLIENT), masker=None)
    assert (ring.caller, ring.pai, ring.masked) == ("anonymous", None, True)


def test_a_masked_sims_own_number_called_from_a_trunk_shows_the_token_too():
    ring = decided(Request("INVITE", TRUNK_IP, IVAN, CLIENT))
    assert ring.targets == (IVAN,) and ring.caller == MASKER.mask(CLIENT, 1) and ring.masked


@pytest.mark.parametrize("dialled", ["{t}", "{t_plus_less}", "00{t_plus_less}", "810{t_plus_less}"])
def test_a_sim_dialling_its_companys_token_calls_the_number(dialled):
    token = MASKER.mask(CLIENT, 1)
    out = decided(dial(dialled.format(t=token, t_plus_less=token[1:])), IVAN)
    assert isinstance(out, CallOut) and out.called == CLIENT and out.masked
    assert out.caller == "+78622550101"  # the district number, as for the real number


def test_a_token_of_a_company_that_stopped_masking_still_dials():
    token = MASKER.mask(CLIENT, 1)
    out = decided(dial(token), IVAN, directory=masked_directory(company_masks=False))
    assert isinstance(out, CallOut) and out.called == CLIENT


def test_the_destination_policy_applies_to_the_number_behind_the_token():
    token = MASKER.mask("+441234567890", 1)  # company 1 may not call abroad
    assert decided(dial(token), IVAN).code == 403


@pytest.mark.parametrize("case", ["other company", "corrupt", "retired", "no keys"])
def test_a_token_that_does_not_decode_for_the_sim_is_not_a_number(case):
    token = MASKER.mask(CLIENT, 2 if case == "other company" else 1)
    if case == "corrupt":
        token = token[:-1] + str((int(token[-1]) + 1) % 10)
    masker = {"retired": Masker(Keys.parse("2 2DE79D232DF5585D68CE47882AE256D6 active")),
              "no keys": None}.get(case, MASKER)
    assert decided(dial(token), IVAN, masker=masker) == NUMBER_DIALED_INCORRECTLY


def test_a_token_from_a_trunk_is_not_a_number():
    token = MASKER.mask(CLIENT, 1)
    assert decided(Request("INVITE", TRUNK_IP, token, CLIENT)) == NUMBER_DIALED_INCORRECTLY
    assert decided(Request("INVITE", TRUNK_IP, token[1:], CLIENT)) == NUMBER_DIALED_INCORRECTLY


def test_a_token_from_a_stranger_is_challenged_like_any_request():
    from kemi.decision import CHALLENGE
    assert decided(dial(MASKER.mask(CLIENT, 1), source=STRANGER_IP)) is CHALLENGE


def test_a_token_of_another_sims_company_decodes_for_that_company_only():
    token = MASKER.mask(CLIENT, 2)
    out = decided(dial(token), MOSCOW_SIM)
    assert isinstance(out, CallOut) and out.called == CLIENT
