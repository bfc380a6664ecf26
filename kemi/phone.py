"""Phone numbers as carriers and handsets write them, to E.164, with phonenumbers."""

from __future__ import annotations

import functools
import re

import phonenumbers

# Characters people and carriers put between digits; never part of the number.
_SEPARATORS = re.compile(r"[\s\-().]")
_DIALABLE = re.compile(r"^\+?[0-9]{3,20}$")
# The forms most numbers arrive in, and the E.164 they always mean, without the parser
# (~18 us a number; a memo does not help with callers never seen before). Each agrees
# with phonenumbers over its whole domain (tests/test_phone.py, Hypothesis): +7 and ten
# digits; in region RU also 8 + ten digits not starting with 0 or 1 ("810" is the old
# international prefix), 7 + a mobile number, and a bare mobile number.
_CANONICAL_PLUS7 = re.compile(r"^\+7([1-9][0-9]{9})$")
_RUSSIAN_FORMS = re.compile(r"^(?:\+7([1-9][0-9]{9})|8([2-9][0-9]{9})|7(9[0-9]{9})|(9[0-9]{9}))$")
_RUSSIAN_MOBILE = re.compile(r"^\+79[0-9]{9}$")
# The user part of a sip:/sips:/tel: URI, inside <> or bare.
_URI_USER = re.compile(r"(?:sips?:|tel:)([^@;>?]+)", re.IGNORECASE)


@functools.lru_cache(maxsize=65536)
def to_e164(raw: str | None, region: str = "RU") -> str | None:
    """E.164 form of a dialled or presented number, None when it is not a phone number.

    >>> to_e164("8 (862) 555-12-34")
    '+78625551234'
    >>> to_e164("anonymous") is None
    True
    """
    if not raw:
        return None
    fast = (_RUSSIAN_FORMS if region == "RU" else _CANONICAL_PLUS7).match(raw)
    if fast:  # the common cases skip the parser
        return "+7" + fast.group(fast.lastindex)
    digits = _SEPARATORS.sub("", raw)
    if not _DIALABLE.match(digits):
        return None
    try:
        number = phonenumbers.parse(digits, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def split_values(header: str | None) -> list[str]:
    """Comma-separated header values, commas inside quotes or <> kept.

    >>> split_values('"A, B" <sip:1@h>;reason=x, <tel:+2>')
    ['"A, B" <sip:1@h>;reason=x', '<tel:+2>']
    """
    if not header:
        return []
    values, start, depth, quoted = [], 0, 0, False
    for i, ch in enumerate(header):
        if ch == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            values.append(header[start:i].strip())
            start = i + 1
    values.append(header[start:].strip())
    return [v for v in values if v]


def uri_user(value: str) -> str | None:
    """The user part of the first sip:/tel: URI in a header value.

    >>> uri_user('<sip:+79181234567@carrier.example;user=phone>;reason=unconditional')
    '+79181234567'
    """
    match = _URI_USER.search(value)
    return match.group(1) if match else None


def original_called(diversion: str | None, history_info: str | None) -> str | None:
    """The number the client first dialled when a carrier forwarded the call.

    History-Info lists targets oldest first (RFC 7044), Diversion newest first
    (RFC 5806): the original is the first History-Info entry, else the last Diversion.
    """
    entries = split_values(history_info)
    if entries:
        return uri_user(entries[0])
    entries = split_values(diversion)
    if entries:
        return uri_user(entries[-1])
    return None


# Destination classes of the outbound policy (decision.destination_refusal). UNASSIGNED: a
# +7 number in no assigned Russian range (+7 1xx, +7 2xx, +7 5xx...): not domestic, so a
# company that may not call abroad may not call it either (phonenumbers' metadata can lag
# a newly assigned range; a company allowed international calls still reaches it).
DOMESTIC, INTERNATIONAL, PREMIUM_RATE, KAZAKHSTAN = "domestic", "international", "premium", "kz"
UNASSIGNED = "unassigned"


@functools.lru_cache(maxsize=65536)
def destination_class(number: str) -> str:
    """Which policy class an E.164 number falls in, seen from Russia.

    >>> [destination_class(n) for n in ("+79891234567", "+78091234567", "+77012345678",
    ...                                 "+76012345678", "+71050012345", "+441234567890")]
    ['domestic', 'premium', 'kz', 'kz', 'unassigned', 'international']
    """
    if not number.startswith("+7"):
        return INTERNATIONAL
    # +7 is shared: Kazakhstan's +7 6xx and +7 7xx dial like domestic numbers but are
    # foreign (phonenumbers knows +7 7xx as KZ, and +7 6xx as nobody's).
    if number[2:3] in ("6", "7"):
        return KAZAKHSTAN
    if _RUSSIAN_MOBILE.match(number):  # every +7 9XX XXX XX XX is a Russian mobile (tested)
        return DOMESTIC
    parsed = phonenumbers.parse(number, None)
    if not phonenumbers.is_valid_number(parsed) or phonenumbers.region_code_for_number(parsed) != "RU":
        return UNASSIGNED
    if (number.startswith("+7809")
            or phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.PREMIUM_RATE):
        return PREMIUM_RATE
    return DOMESTIC


def for_trunk(number: str, number_format: str) -> str:
    """A number written the way a carrier expects it (trunk.number_format).

    Short codes (emergency) go as dialled; from Russia, abroad is 810 in national formats.
    >>> [for_trunk("+79891234567", f) for f in ("e164", "plus_less", "national", "ten_digit")]
    ['+79891234567', '79891234567', '89891234567', '9891234567']
    >>> for_trunk("+441234567890", "national"), for_trunk("112", "national")
    ('810441234567890', '112')
    """
    if not number.startswith("+") or number_format == "e164":
        return number
    if number_format == "plus_less":
        return number[1:]
    if number.startswith("+7"):
        return ("8" if number_format == "national" else "") + number[2:]
    return "810" + number[1:]


def as_carrier_reads(written: str, number_format: str) -> str:
    """The number a carrier dials when it receives `written` in its number_format: the
    inverse of for_trunk where the two agree. A call goes out only where they agree, so
    that what the destination policy judged is what the carrier dials.

    >>> as_carrier_reads("89891234567", "national"), as_carrier_reads("81050012345", "national")
    ('+79891234567', '+50012345')
    """
    if number_format == "e164" or not written.isdigit() or len(written) < 7:
        return written  # E.164 as sent, or a short code (emergency), which is never E.164
    if number_format == "plus_less":
        return "+" + written
    if written.startswith("810"):  # the international prefix, in both national formats
        return "+" + written[3:]
    if number_format == "national" and len(written) == 11 and written.startswith("8"):
        return "+7" + written[1:]
    if number_format == "ten_digit" and len(written) == 10:
        return "+7" + written
    return written
