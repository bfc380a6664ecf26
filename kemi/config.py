"""The one configuration: built once from PBX_* environment variables, defaults documented here."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """A configuration value is unusable; the message names the key and the value."""


@dataclass(frozen=True)
class Config:
    # SIP: where the proxy listens and the digest realm the SIMs authenticate in.
    sip_addr: str = "127.0.0.1"
    sip_port: int = 5060  # UDP and TCP
    # TLS for SIMs, 0 turns it off; a certificate and key in PEM (empty: a self-signed pair
    # made in state_dir/tls at start, good for tests and demos only).
    tls_port: int = 5061
    tls_cert: str = ""
    tls_key: str = ""
    realm: str = "pbx.local"
    children: int = 4  # SIP worker processes (UDP)
    log_level: int = 2  # Kamailio debug level: 1 notice, 2 info, 3 debug
    # Where the private PostgreSQL cluster and Kamailio's runtime files live.
    state_dir: str = "/var/tmp/cloud-pbx"
    pg_port: int = 55432
    # libpq DSN; empty means the private cluster above (Unix socket in state_dir/run).
    dsn: str = ""
    db_timeout_ms: int = 500  # deadline of each routing query and connection attempt
    db_max_waiting: int = 2  # worker processes that may wait on the database at once
    # Routing data caches (per worker): how long an entry is trusted, how many entries.
    cache_ttl_s: float = 300.0  # a backstop: changes arrive by NOTIFY (see README)
    cache_size: int = 10000
    # Hunting: a SIM that sends nothing for no_answer_ms, or rings past ring_ms, is
    # skipped for the next manager (tm fr_timer / fr_inv_timer per branch).
    no_answer_ms: int = 3000
    ring_ms: int = 20000
    # Abuse limits, applied by kamailio.cfg itself to sources that are not trunks: more than
    # flood_reqs requests in 2 s (pike; 0 turns it off), or auth_failures wrong digests in a
    # row, ban the source for ban_s seconds; user_failures wrong digests for one SIM, from
    # any sources, lock it for ban_s against sources it never authenticated from.
    flood_reqs: int = 200
    ban_s: int = 300
    auth_failures: int = 5
    user_failures: int = 20
    # Numbers without a country code are read in this region (phonenumbers).
    region: str = "RU"
    # How Kamailio enters Python: "native" (kamailio.cfg does SIP mechanics, Python decides
    # once per initial request) or "kemi" (every request in Python; kamailio.cfg -A FULL_KEMI).
    wiring: str = "native"

    @property
    def tls_files(self) -> tuple[str, str]:
        """The certificate and key Kamailio is given (the generated pair unless set)."""
        tls_dir = Path(self.state_dir) / "tls"
        return (self.tls_cert or str(tls_dir / "cert.pem"), self.tls_key or str(tls_dir / "key.pem"))

    @property
    def pg_socket_dir(self) -> str:
        return str(Path(self.state_dir) / "run")

    @property
    def database_dsn(self) -> str:
        if self.dsn:
            return self.dsn
        return f"host={self.pg_socket_dir} port={self.pg_port} dbname=pbx user=postgres"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Config":
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            key = "PBX_" + f.name.upper()
            raw = environ.get(key)
            if raw is None:
                continue
            kind = type(f.default)
            try:
                values[f.name] = kind(raw)
            except ValueError:
                raise ConfigError(f"{key}={raw!r}: expected {kind.__name__}") from None
        config = cls(**values)
        config.validate()
        return config

    def validate(self) -> None:
        for key, low, high in (("sip_port", 1, 65535), ("pg_port", 1, 65535), ("tls_port", 0, 65535),
                               ("children", 1, 64), ("cache_size", 1, 10**8),
                               ("no_answer_ms", 100, 600000), ("ring_ms", 100, 3600000),
                               ("db_timeout_ms", 10, 60000), ("db_max_waiting", 1, 64),
                               ("flood_reqs", 0, 10**6), ("ban_s", 1, 86400),
                               ("auth_failures", 1, 1000), ("user_failures", 1, 10**5)):
            value = getattr(self, key)
            if not low <= value <= high:
                raise ConfigError(f"PBX_{key.upper()}={value!r}: must be within {low}..{high}")
        if self.wiring not in ("native", "kemi"):
            raise ConfigError(f"PBX_WIRING={self.wiring!r}: must be native or kemi")
        if self.cache_ttl_s <= 0:
            raise ConfigError(f"PBX_CACHE_TTL_S={self.cache_ttl_s!r}: must be positive")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError(f"PBX_TLS_CERT={self.tls_cert!r}, PBX_TLS_KEY={self.tls_key!r}: "
                              f"give both or neither")
        for key in ("tls_cert", "tls_key"):
            if getattr(self, key) and not Path(getattr(self, key)).is_file():
                raise ConfigError(f"PBX_{key.upper()}={getattr(self, key)!r}: no such file")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]*", self.realm):
            # kamailio.cfg gets it as a define too (-A REALM=...): a host name, nothing else.
            raise ConfigError(f"PBX_REALM={self.realm!r}: must be a host name (letters, digits, . and -)")

    def environ(self) -> dict[str, str]:
        """The PBX_* variables that reproduce this config in a child process."""
        return {"PBX_" + f.name.upper(): str(getattr(self, f.name)) for f in fields(self)}
