"""What an administrator may type for each column, and how it is checked: pure, no database."""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass

import phonenumbers


class InputError(ValueError):
    """A value refused before it reaches the database; names the field, the value and why."""

    def __init__(self, field: str, value: object, why: str):
        super().__init__(f"{field}: {value!r} {why}")
        self.field, self.value, self.why = field, value, why


_POSSIBLE = phonenumbers.ValidationResult
_WHY = {_POSSIBLE.INVALID_COUNTRY_CODE: "has an unknown country code",
        _POSSIBLE.TOO_SHORT: "is too short", _POSSIBLE.TOO_LONG: "is too long",
        _POSSIBLE.INVALID_LENGTH: "has the wrong length for its range"}


def phone_number(field: str, value: str, region: str) -> str:
    """E.164 of a number typed as people type it; refused unless it is a real, valid number.

    >>> phone_number("caller_id", "8 (862) 255-01-01", "RU")
    '+78622550101'
    """
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise InputError(field, value, f"is not a phone number ({exc._msg})") from None
    if not phonenumbers.is_valid_number(number):
        reason = phonenumbers.is_possible_number_with_reason(number)
        raise InputError(field, value, _WHY.get(reason, "is not a number of any assigned range"))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_TRUE, _FALSE = {"true", "yes", "y", "1", "on"}, {"false", "no", "n", "0", "off"}


def boolean(field: str, value: str) -> bool:
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InputError(field, value, "is not yes/no (true, false, 1, 0)")


def inherited(field: str, value: str) -> bool | str:
    """yes/no, or `company`: as the company (stored NULL; the SQL turns 'company' into it)."""
    if str(value).strip().lower() == "company":
        return "company"
    try:
        return boolean(field, value)
    except InputError:
        raise InputError(field, value, "is not yes, no or company (as the company)") from None


def days_or_company(field: str, value: str) -> int | str:
    """A number of days, or `company`: as the company (stored NULL)."""
    if str(value).strip().lower() == "company":
        return "company"
    try:
        return integer(field, value, *STICKY_DAYS)
    except InputError as exc:
        raise InputError(field, value, f"{exc.why}, nor company (as the company)") from None


def integer(field: str, value: str, low: int, high: int) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise InputError(field, value, "is not a whole number") from None
    if not low <= number <= high:
        raise InputError(field, value, f"is not within {low}..{high}")
    return number


def text(field: str, value: str) -> str:
    if not str(value).strip():
        raise InputError(field, value, "is empty")
    return str(value).strip()


def networks(field: str, value: str) -> list[str]:
    """Comma-separated addresses or networks: '127.0.0.2, 10.0.0.0/24'."""
    items = [v.strip() for v in str(value).split(",") if v.strip()]
    if not items:
        raise InputError(field, value, "names no address")
    try:
        return [str(ipaddress.ip_network(v, strict=True)) for v in items]
    except ValueError as exc:
        raise InputError(field, value, f"is not a list of addresses or networks ({exc})") from None


def address(field: str, value: str) -> str:
    try:
        return str(ipaddress.ip_address(str(value).strip()))
    except ValueError:
        raise InputError(field, value, "is not an IP address") from None


def choice(field: str, value: str, options: tuple[str, ...]) -> str:
    if value not in options:
        raise InputError(field, value, f"is not one of {', '.join(options)}")
    return value


_HA1 = re.compile(r"^[0-9a-f]{32}$")


def ha1(username: str, realm: str, password: str) -> str:
    """Digest HA1: the only form in which a SIM's password is stored."""
    if len(password) < 8:
        raise InputError("password", "(hidden)", "is shorter than 8 characters")
    return hashlib.md5(f"{username}:{realm}:{password}".encode()).hexdigest()


def ha1_hex(field: str, value: str) -> str:
    if not _HA1.match(str(value)):
        raise InputError(field, "(hidden)", "is not an MD5 HA1 (32 lowercase hex digits)")
    return str(value)


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # text number bool inherit port position days days_inherit networks address
    # transport format ref secret
    required: bool = False  # on add
    help: str = ""


TRANSPORTS = ("udp", "tcp", "tls")
STICKY_DAYS = (1, 365)  # migration 007: company_sticky_days_range, district_sticky_days_range
NUMBER_FORMATS = ("e164", "plus_less", "national", "ten_digit")


def parse(field: Field, value: str, region: str):
    """The stored form of one typed value, or InputError."""
    kind = field.kind
    if kind == "number":
        return phone_number(field.name, value, region)
    if kind == "bool":
        return boolean(field.name, value)
    if kind == "inherit":
        return inherited(field.name, value)
    if kind == "port":
        return integer(field.name, value, 1, 65535)
    if kind == "position":
        return integer(field.name, value, 1, 10000)
    if kind == "days":
        return integer(field.name, value, *STICKY_DAYS)
    if kind == "days_inherit":
        return days_or_company(field.name, value)
    if kind == "networks":
        return networks(field.name, value)
    if kind == "address":
        return address(field.name, value)
    if kind == "transport":
        return choice(field.name, value, TRANSPORTS)
    if kind == "format":
        return choice(field.name, value, NUMBER_FORMATS)
    return text(field.name, value)
