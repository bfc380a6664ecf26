"""Number normalisation against phonenumbers, over the formats carriers and handsets send."""

from __future__ import annotations

import doctest
import re

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st

from kemi import phone
from kemi.phone import original_called, split_values, to_e164, uri_user

# Real Russian ranges: mobile 9xx, Krasnodar 861, Sochi 862, toll-free 800.
NATIONAL = st.one_of(
    st.from_regex(r"\A9[0-9]{9}\Z"),
    st.from_regex(r"\A86[12][0-9]{7}\Z"),
    st.from_regex(r"\A800[0-9]{7}\Z"),
)
SEPARATED = st.sampled_from(["{}", "{} ", " {}"])


def test_doctests():
    assert doctest.testmod(phone).failed == 0


@settings(max_examples=300, deadline=None)  # phonenumbers loads region metadata lazily
@given(NATIONAL, st.sampled_from(["8{}", "7{}", "+7{}", "{}"]))
def test_every_carrier_format_of_a_russian_number_is_the_same_e164(national, fmt):
    assert to_e164(fmt.format(national)) == "+7" + national


@settings(max_examples=200, deadline=None)  # phonenumbers loads region metadata lazily
@given(NATIONAL)
def test_separators_do_not_matter(national):
    spaced = f"8 ({national[:3]}) {national[3:6]}-{national[6:8]}-{national[8:]}"
    assert to_e164(spaced) == "+7" + national


@settings(max_examples=300, deadline=None)  # phonenumbers loads region metadata lazily
@given(st.text(max_size=30))
def test_garbage_never_raises_and_yields_e164_or_nothing(text):
    result = to_e164(text)
    assert result is None or re.fullmatch(r"\+[1-9][0-9]{6,14}", result)


@settings(max_examples=300, deadline=None)  # phonenumbers loads region metadata lazily
@given(st.from_regex(r"\A\+?[0-9]{3,16}\Z"))
def test_agrees_with_phonenumbers(digits):
    try:
        parsed = phonenumbers.parse(digits, "RU")
        expected = (phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
                    if phonenumbers.is_possible_number(parsed) else None)
    except phonenumbers.NumberParseException:
        expected = None
    assert to_e164(digits) == expected


def _reference(text: str) -> str | None:
    try:
        parsed = phonenumbers.parse(text, "RU")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@settings(max_examples=2000, deadline=None)  # phonenumbers loads region metadata lazily
@given(st.from_regex(r"\A\+7[0-9]{10}\Z"))
def test_the_canonical_fast_path_agrees_with_phonenumbers(number):
    to_e164.cache_clear()
    assert to_e164(number) == _reference(number)


# Each national fast path's domain, and a little around it (other first digits, one
# digit more or less) so that the edges of each pattern are exercised too.
@settings(max_examples=3000, deadline=None)
@given(st.from_regex(r"\A(?:8[0-9]{10}|7[0-9]{10}|9[0-9]{9}|[789][0-9]{8,11})\Z"))
def test_the_national_fast_paths_agree_with_phonenumbers(number):
    to_e164.cache_clear()
    assert to_e164(number) == _reference(number)


def test_foreign_and_special_numbers():
    assert to_e164("810441234567890") == "+441234567890"
    assert to_e164("+77012345678") == "+77012345678"  # Kazakhstan shares +7
    assert to_e164("8 800 555 35 35") == "+78005553535"
    assert to_e164("anonymous") is None
    assert to_e164("112") is None


def test_header_parsing():
    assert split_values("<sip:1@a>, <sip:2@b>;x=\"a,b\"") == ["<sip:1@a>", '<sip:2@b>;x="a,b"']
    assert uri_user("<tel:+78622550101>") == "+78622550101"
    assert uri_user("garbage") is None
    assert original_called("<sip:2@b>, <sip:1@a>", None) == "1"
    assert original_called(None, "<sip:1@a>;index=1, <sip:2@b>;index=1.1") == "1"
    assert original_called(None, None) is None


# -- the destination policy, as the carrier will read the number (issue 12.1) -------------

FORMATS = ("e164", "plus_less", "national", "ten_digit")
INTERNATIONAL_PREFIX = "810"


@settings(max_examples=1500, deadline=None)  # phonenumbers loads region metadata lazily
@given(st.one_of(st.from_regex(r"\A\+?[0-9]{3,16}\Z"),
                 st.from_regex(r"\A(8|7|\+7)?[0-9]{10}\Z")),
       st.sampled_from(FORMATS))
def test_a_domestic_number_is_written_as_a_domestic_number_for_every_trunk(dialled, fmt):
    """For every number a SIM can dial: what the policy calls domestic is, once written for
    the trunk, read back by the carrier as that very number, a valid Russian one, and never
    carries the international prefix."""
    number = to_e164(dialled)
    if number is None or phone.destination_class(number) != phone.DOMESTIC:
        return
    written = phone.for_trunk(number, fmt)
    assert phone.as_carrier_reads(written, fmt) == number
    assert not written.startswith(INTERNATIONAL_PREFIX)
    parsed = phonenumbers.parse(number, None)
    assert phonenumbers.is_valid_number(parsed)
    assert phonenumbers.region_code_for_number(parsed) == "RU"
    if fmt == "national":  # 8 + ten digits is how Russia dials its own numbers
        assert re.fullmatch(r"8[0-9]{10}", written)
        assert to_e164(written) == number


@settings(max_examples=1500, deadline=None)
@given(st.from_regex(r"\A(8|7|\+7)?[0-9]{10}\Z"), st.sampled_from(FORMATS))
def test_a_plus7_number_outside_russian_ranges_is_never_domestic(dialled, fmt):
    number = to_e164(dialled)
    if number is None or not number.startswith("+7"):
        return
    parsed = phonenumbers.parse(number, None)
    russian = phonenumbers.is_valid_number(parsed) and phonenumbers.region_code_for_number(parsed) == "RU"
    if not russian or number[2] in "67":
        assert phone.destination_class(number) != phone.DOMESTIC


def test_kazakhstan_shares_plus7():
    assert phone.destination_class("+76012345678") == phone.KAZAKHSTAN
    assert phone.destination_class("+77012345678") == phone.KAZAKHSTAN


@settings(max_examples=2000, deadline=None)
@given(st.from_regex(r"\A\+79[0-9]{9}\Z"))
def test_the_mobile_fast_path_of_the_destination_policy_agrees_with_phonenumbers(number):
    phone.destination_class.cache_clear()
    parsed = phonenumbers.parse(number, None)
    assert phonenumbers.is_valid_number(parsed)
    assert phonenumbers.region_code_for_number(parsed) == "RU"
    assert phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.MOBILE
    assert phone.destination_class(number) == phone.DOMESTIC
