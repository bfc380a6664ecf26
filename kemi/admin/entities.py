"""The tables pbxctl manages: their fields, natural keys and CSV columns."""

from __future__ import annotations

from dataclasses import dataclass

from .fields import Field


@dataclass(frozen=True)
class Entity:
    name: str
    key: str  # the natural key naming a row on show / update / remove
    key_kind: str  # how the key is typed (a field kind)
    fields: tuple[Field, ...]
    scoped: bool = False  # the key is unique within a company only (--company)
    renamable: bool = False

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    @property
    def exported(self) -> tuple[str, ...]:
        """CSV columns of export (import takes every field): secrets never leave."""
        return tuple(f.name for f in self.fields if f.kind != "secret")


ENTITIES = {e.name: e for e in (
    Entity("company", "name", "text", (
        Field("name", "text", True, "company name"),
        Field("allow_international", "bool", help="may call abroad"),
        Field("allow_premium_rate", "bool", help="may call Russian premium rate (8-809)"),
        Field("allow_kazakhstan", "bool", help="may call Kazakhstan (+7 6xx/7xx)"),
        Field("mask_numbers", "bool", help="managers see clients' numbers as tokens (default no)"),
        Field("sticky", "bool", help="a client calling back rings the manager of their last "
                                     "answered call first (default yes)"),
        Field("sticky_days", "days", help="how long that call counts, 1..365 days (default 30)"),
    ), renamable=True),
    Entity("trunk", "name", "text", (
        Field("name", "text", True, "trunk name"),
        Field("carrier", "text", True, "carrier's name"),
        Field("sources", "networks", True, "addresses trusted as this carrier, comma-separated"),
        Field("egress_host", "address", True, "where calls to this carrier go"),
        Field("egress_port", "port", help="default 5060"),
        Field("transport", "transport", help="udp (default), tcp, tls"),
        Field("number_format", "format", help="e164 (default), plus_less, national, ten_digit"),
        Field("auth_username", "text", help="our username when the carrier challenges"),
        Field("auth_password", "secret", help="read from a prompt or stdin"),
        Field("accepts_foreign_caller_id", "bool", help="may carry caller IDs it does not own"),
        Field("is_default", "bool", help="the trunk of emergency calls"),
    ), renamable=True),
    Entity("district", "name", "text", (
        Field("company", "ref", True, "the company"),
        Field("name", "text", True, "district name, shown to managers"),
        Field("caller_id", "number", True, "the district's published number (a company DID)"),
        Field("active", "bool", help="default yes"),
        Field("mask_numbers", "inherit", help="yes, no, or company: as the company (default)"),
        Field("trunk", "ref", help="add: create the caller-ID DID on this trunk if missing"),
        Field("sticky", "inherit", help="sticky manager: yes, no, or company (default)"),
        Field("sticky_days", "days_inherit", help="1..365 days, or company (default)"),
    ), scoped=True, renamable=True),
    Entity("did", "number", "number", (
        Field("number", "number", True, "the published number"),
        Field("company", "ref", True, "the company that rents it"),
        Field("district", "ref", True, "the district it rings"),
        Field("trunk", "ref", True, "the carrier trunk it arrives on"),
        Field("label", "text", help="e.g. the ad campaign"),
    )),
    Entity("manager", "id", "position", (
        Field("company", "ref", True, "the company"),
        Field("district", "ref", True, "the district the manager covers"),
        Field("name", "text", True, "manager's name"),
        Field("position", "position", help="hunting order in the district, 1 rings first"),
        Field("caller_id", "number", help="overrides the district number (a company DID)"),
        Field("active", "bool", help="default yes"),
    ), scoped=True, renamable=True),  # renamable: update --name (the key is the id)
    Entity("sim", "username", "number", (
        Field("username", "number", True, "the SIM's MSISDN, its SIP username"),
        Field("company", "ref", True, "the company"),
        Field("manager", "ref", True, "the manager (id, or name if unique)"),
        Field("active", "bool", help="default yes"),
        Field("ha1", "secret", help="CSV import: the digest HA1 instead of a password"),
        Field("password", "secret", help="CSV import only; otherwise read from a prompt or stdin"),
    )),
)}
