"""Masked client numbers: the token a manager's SIM sees instead of a client's number, which
only this proxy turns back into the number (README, Masked client numbers).

A token is `+28` K C, digits after the plus:
- `+28`: the country codes 280-289 are spare in ITU-T E.164 (assigned to no country), so no
  carrier anywhere routes `+28...`; and no country's international prefix begins with
  them, so no region reads the digits as a call abroad either (a `+0` prefix would: Cape
  Verde's and Samoa's international prefix is 0, North America's 011). phonenumbers
  refuses every token in every region it knows (property-tested). Without its `+` a token
  is just digits, which some national plan may use: dialers keep the `+` of an entry in
  the call history, and what matters is that our proxy is the only one that decodes it.
- K: the key's id, one digit, so that keys can be rotated: a token made with a key that
  is still listed decodes; one made with a retired key does not.
- C: FF3-1 (NIST SP 800-38G Rev.1, the `ff3` library over AES) of the number's digits and
  4 check digits (an HMAC of company and number under the key), radix 10, with the
  company as the tweak: the same client always gets the same token from one company. FF3
  is a permutation, so any digits decrypt to some digits: the check digits are what refuse
  another company's token or a mistyped one. One in 10,000 of those passes the check and
  decodes to a random number of the same length (never the other company's client: that
  would take the permutation to map the token back onto the very same digits); a SIM could
  have dialed that random number anyway. E.164 numbers have 7 to 15 digits, so C has 11
  to 19; FF3-1 in radix 10 takes 6 (10^6 >= 1,000,000) to 56: every number fits as it is,
  without padding.

Pure: no KSR, no database; the keys come in as values (kemi.config reads them).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from cachetools import LRUCache
from ff3 import FF3Cipher

PREFIX = "+28"
CHECK_DIGITS = 4
_TOKEN = re.compile(r"\+?28(\d)(\d{11,19})")
# How dialers redial an entry of the call history: as shown (+28...), without the plus,
# or with an international prefix for it (00, or Russia's old 810). 14 digits or more after
# it: longer than any national number, so no national plan's number is taken for a token.
_DIALED = re.compile(r"(?:\+|00|810)?(28\d{12,20})")
_NUMBER = re.compile(r"\+(\d{7,15})")
_KEY = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{48}|[0-9a-fA-F]{64}")
TWEAK_BYTES = 7  # FF3-1's 56-bit tweak


class MaskError(ValueError):
    """A key or a key list that cannot be used; the message names what is wrong."""


@dataclass(frozen=True)
class Keys:
    """The keys by id; `active` encodes, every listed key decodes."""

    by_id: dict[str, str]
    active: str

    @classmethod
    def parse(cls, text: str, source: str = "keys") -> "Keys":
        """Lines `ID HEXKEY` (ID one digit, the key AES-128/192/256 in hex); the line marked
        `active` as a third word encodes. Blank lines and # comments are ignored."""
        by_id, active = {}, None
        for number, line in enumerate(text.splitlines(), 1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            if len(words) not in (2, 3) or (len(words) == 3 and words[2] != "active"):
                raise MaskError(f"{source} line {number}: expected 'ID HEXKEY [active]'")
            kid, key = words[0], words[1]
            if not re.fullmatch(r"\d", kid):
                raise MaskError(f"{source} line {number}: key id {kid!r} must be one digit")
            if not _KEY.fullmatch(key):
                raise MaskError(f"{source} line {number}: key {kid} must be 32, 48 or 64 hex digits")
            if kid in by_id:
                raise MaskError(f"{source} line {number}: key id {kid} listed twice")
            by_id[kid] = key.lower()
            if len(words) == 3:
                if active is not None:
                    raise MaskError(f"{source} line {number}: a second active key ({kid})")
                active = kid
        if active is None:
            raise MaskError(f"{source}: no key is marked active")
        return cls(by_id, active)


class Masker:
    """Tokens for one set of keys; ciphers are built once per (key, company), and the last
    `cache` tokens and numbers are remembered (one FF3-1 costs ~100 us, a hit ~1 us:
    make bench). A new key list means a new Masker: nothing decoded under a retired key
    survives in a cache."""

    def __init__(self, keys: Keys, cache: int = 10000):
        self.keys = keys
        self._ciphers: dict[tuple[str, int], FF3Cipher] = {}
        self._tokens: LRUCache = LRUCache(maxsize=cache)
        self._numbers: LRUCache = LRUCache(maxsize=cache)

    def _cipher(self, kid: str, company_id: int) -> FF3Cipher:
        cipher = self._ciphers.get((kid, company_id))
        if cipher is None:
            tweak = company_id.to_bytes(TWEAK_BYTES, "big").hex()
            cipher = self._ciphers[(kid, company_id)] = FF3Cipher(self.keys.by_id[kid], tweak)
        return cipher

    def mask(self, number: str, company_id: int) -> str:
        """The token of an E.164 number (`+` and 7 to 15 digits) for a company."""
        try:
            return self._tokens[(number, company_id)]
        except KeyError:
            token = self._tokens[(number, company_id)] = self._mask(number, company_id)
            return token

    def unmask(self, token: str, company_id: int) -> str | None:
        """The number a token of this company stands for; None when it is not a token, its
        key is not listed (retired), or it does not decode to a number."""
        try:
            return self._numbers[(token, company_id)]
        except KeyError:
            number = self._numbers[(token, company_id)] = self._unmask(token, company_id)
            return number

    def _mask(self, number: str, company_id: int) -> str:
        found = _NUMBER.fullmatch(number)
        if not found:
            raise ValueError(f"not an E.164 number: {number!r}")
        kid, digits = self.keys.active, found.group(1)
        plain = digits + self._check(kid, company_id, digits)
        return PREFIX + kid + self._cipher(kid, company_id).encrypt(plain)

    def _unmask(self, token: str, company_id: int) -> str | None:
        found = _TOKEN.fullmatch(token)
        if not found or found.group(1) not in self.keys.by_id:
            return None
        kid = found.group(1)
        plain = self._cipher(kid, company_id).decrypt(found.group(2))
        digits, check = plain[:-CHECK_DIGITS], plain[-CHECK_DIGITS:]
        if digits[0] == "0" or not hmac.compare_digest(check, self._check(kid, company_id, digits)):
            return None
        return "+" + digits

    def _check(self, kid: str, company_id: int, digits: str) -> str:
        # its own key, derived: one key is never used by two primitives
        mac_key = hashlib.sha256(b"cloud-pbx mask check\0" + bytes.fromhex(self.keys.by_id[kid]))
        mac = hmac.new(mac_key.digest(), f"{company_id}:{digits}".encode(), hashlib.sha256).digest()
        return f"{int.from_bytes(mac[:8], 'big') % 10 ** CHECK_DIGITS:0{CHECK_DIGITS}d}"


def is_token(text: str) -> bool:
    """Whether a string has the token's shape (it may still fail to decode)."""
    return _TOKEN.fullmatch(text) is not None


def dialed_token(dialed: str | None) -> str | None:
    """The token a SIM dialed (+28..., 28..., 0028..., 81028...), in its shown form; None
    when what it dialed is not shaped like one."""
    found = _DIALED.fullmatch(dialed or "")
    return "+" + found.group(1) if found else None
