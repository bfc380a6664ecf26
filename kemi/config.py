"""The one configuration: built once from PBX_* environment variables, defaults documented here."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


MASK_KEYS_VAR = "PBX_MASK_KEYS"  # the keys themselves: never a Config field, never printed


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
    # The proxy's address toward carriers, when they are on another network than the SIMs
    # (an interconnect): Kamailio listens there too and sends to trunks from it, rtpengine
    # relays their media there. Empty: sip_addr, one network for both.
    carrier_addr: str = ""
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
    # SIMs on mobile data are behind NATs: an OPTIONS keepalive to every registered SIM each
    # natping_s seconds keeps its binding open (0: none); a SIM that has answered none for
    # keepalive_timeout_s is unregistered, so hunting skips it (0: never).
    natping_s: int = 30
    keepalive_timeout_s: int = 120
    # Media anchored through rtpengine (README, Phones behind NAT and media): "on", or "off"
    # (SDP passes untouched, no rtpengine is started). Its SIM-side and carrier-side
    # addresses ("ADDR" or "ADDR!ADVERTISED" when rtpengine is itself behind a 1:1 NAT;
    # empty: sip_addr and carrier_addr), its UDP port range, its control port on loopback.
    media: str = "on"
    media_addr: str = ""
    carrier_media_addr: str = ""
    media_ports: str = "30000-39999"
    media_ng_port: int = 22222
    # A call whose media stopped in both directions this long (the SIM vanished) is ended
    # with a BYE to both sides; rtpengine asks Kamailio over rpc_port (loopback TCP).
    media_timeout_s: int = 60
    rpc_port: int = 5090
    # When rtpengine does not answer: "connect" the call unanchored (counted, logged), or
    # "refuse" it with 503 Media Relay Unavailable.
    media_down: str = "connect"
    # Prometheus metrics (README, Metrics): served by Kamailio (xhttp_prom) at
    # http://metrics_addr:metrics_port/metrics; loopback by default, 0 turns them off.
    metrics_addr: str = "127.0.0.1"
    metrics_port: int = 9464
    # Call records (README, Call records): "on" (Kamailio's acc writes one line per call
    # attempt into state_dir/records, a process of its own ships them to PostgreSQL) or "off".
    records: str = "on"
    # Kamailio's log: "text" (a line per event, for people) or "json" (an object per line,
    # the message escaped: no caller can write a line of its own; what fail2ban reads).
    log_format: str = "text"
    # The key topoh masks Via, Contact, Record-Route and Call-ID with (both sides see only the
    # proxy); empty: one generated into state_dir at first start and kept. Proxies that share
    # calls must share it.
    topology_key: str = ""
    # Masked client numbers (README): the keys, one "ID HEXKEY [active]" per line, from this
    # file, or else from the environment variable PBX_MASK_KEYS (lines separated by
    # newlines or ';'). Never in the routing tables, never logged.
    mask_keys_file: str = ""
    # Numbers without a country code are read in this region (phonenumbers).
    region: str = "RU"
    # Registrations (usrloc): "db" keeps them in PostgreSQL too (table location, written back
    # each second by a timer process, loaded at start: a restart loses none) or "memory".
    registrations: str = "db"
    # A cluster of proxies on one database (README, A cluster of proxies): the other nodes'
    # addresses, comma-separated (empty: one node). Every node replicates its registrations
    # to the others over Kamailio's dmq bus, on its sip_addr at cluster_port (the same port
    # on every node), and accepts that traffic from these addresses only.
    cluster_peers: str = ""
    cluster_port: int = 5070
    # How Kamailio enters Python: "native" (kamailio.cfg does SIP mechanics, Python decides
    # once per initial request) or "kemi" (every request in Python; kamailio.cfg -A FULL_KEMI).
    wiring: str = "native"

    @property
    def records_dir(self) -> str:
        """Where acc's db_flatstore writes the records and the shipper reads them."""
        return str(Path(self.state_dir) / "records")

    @property
    def tls_files(self) -> tuple[str, str]:
        """The certificate and key Kamailio is given (the generated pair unless set)."""
        tls_dir = Path(self.state_dir) / "tls"
        return (self.tls_cert or str(tls_dir / "cert.pem"), self.tls_key or str(tls_dir / "key.pem"))

    @property
    def carrier_sip_addr(self) -> str:
        return self.carrier_addr or self.sip_addr

    @property
    def media_interfaces(self) -> tuple[str, str]:
        """rtpengine's SIM-side and carrier-side addresses (ADDR or ADDR!ADVERTISED)."""
        sim = self.media_addr or self.sip_addr
        return sim, self.carrier_media_addr or self.carrier_addr or sim

    @property
    def peers(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.cluster_peers.split(",") if p.strip())

    @property
    def server_id(self) -> int:
        """This node's Kamailio server_id, from its address (stored with each registration it
        takes, so that only it sends that SIM keepalives); 0 is a replicated registration."""
        a, b, c, d = (int(o) for o in self.sip_addr.split("."))
        return ((a << 24 | b << 16 | c << 8 | d) % (2**31 - 1)) or 1

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
                               ("auth_failures", 1, 1000), ("user_failures", 1, 10**5),
                               ("natping_s", 0, 3600), ("keepalive_timeout_s", 0, 86400),
                               ("media_ng_port", 1, 65535), ("media_timeout_s", 1, 86400),
                               ("rpc_port", 1, 65535), ("metrics_port", 0, 65535),
                               ("cluster_port", 1, 65535)):
            value = getattr(self, key)
            if not low <= value <= high:
                raise ConfigError(f"PBX_{key.upper()}={value!r}: must be within {low}..{high}")
        # kamailio.cfg routes no SIP arriving at the metrics or the XML-RPC port
        for key in ("metrics_port", "rpc_port"):
            if getattr(self, key) and getattr(self, key) in (self.sip_port, self.tls_port):
                raise ConfigError(f"PBX_{key.upper()}={getattr(self, key)!r}: must differ from "
                                  f"PBX_SIP_PORT and PBX_TLS_PORT")
        if self.wiring not in ("native", "kemi"):
            raise ConfigError(f"PBX_WIRING={self.wiring!r}: must be native or kemi")
        for key, allowed in (("media", ("on", "off")), ("media_down", ("connect", "refuse")),
                             ("records", ("on", "off")), ("log_format", ("text", "json")),
                             ("registrations", ("db", "memory"))):
            if getattr(self, key) not in allowed:
                raise ConfigError(f"PBX_{key.upper()}={getattr(self, key)!r}: must be "
                                  f"{' or '.join(allowed)}")
        low, _, high = self.media_ports.partition("-")
        if not (low.isdigit() and high.isdigit() and 1024 <= int(low) < int(high) <= 65535):
            raise ConfigError(f"PBX_MEDIA_PORTS={self.media_ports!r}: must be LOW-HIGH within "
                              f"1024..65535")
        if self.keepalive_timeout_s and self.keepalive_timeout_s < 2 * self.natping_s:
            raise ConfigError(f"PBX_KEEPALIVE_TIMEOUT_S={self.keepalive_timeout_s!r}: must be 0 "
                              f"or at least twice PBX_NATPING_S={self.natping_s!r}")
        if self.peers:
            self._validate_cluster()
        for key in ("sip_addr", "carrier_addr", "media_addr", "carrier_media_addr", "metrics_addr"):
            for address in filter(None, getattr(self, key).split("!")):
                if not re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", address):
                    raise ConfigError(f"PBX_{key.upper()}={getattr(self, key)!r}: must be an "
                                      f"IPv4 address" + (" (or ADDR!ADVERTISED)" if "media" in key
                                                         else ""))
        if "!" in self.sip_addr or "!" in self.carrier_addr:
            raise ConfigError(f"PBX_SIP_ADDR / PBX_CARRIER_ADDR: one address each")
        if not re.fullmatch(r"[A-Za-z0-9+/=._-]*", self.topology_key):
            raise ConfigError(f"PBX_TOPOLOGY_KEY: letters, digits and +/=._- only")
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

    # kamailio.cfg names each peer in a define of its own (DMQ_PEER_1 ...)
    MAX_PEERS = 8

    def _validate_cluster(self) -> None:
        raw = f"PBX_CLUSTER_PEERS={self.cluster_peers!r}"
        for peer in self.peers:
            if not re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", peer) or any(int(o) > 255 for o in peer.split(".")):
                raise ConfigError(f"{raw}: {peer!r} is not an IPv4 address (the peers' "
                                  f"PBX_SIP_ADDR, comma-separated)")
        if self.sip_addr in self.peers:
            raise ConfigError(f"{raw}: names this node's own PBX_SIP_ADDR={self.sip_addr!r}")
        if len(set(self.peers)) != len(self.peers) or len(self.peers) > self.MAX_PEERS:
            raise ConfigError(f"{raw}: at most {self.MAX_PEERS} distinct addresses")
        if self.cluster_port in (self.sip_port, self.tls_port, self.rpc_port, self.metrics_port):
            raise ConfigError(f"PBX_CLUSTER_PORT={self.cluster_port!r}: must differ from the "
                              f"SIP, TLS, RPC and metrics ports")
        if self.registrations != "db":
            # a node that starts alone (its peers down) would have none to serve from
            raise ConfigError(f"PBX_REGISTRATIONS={self.registrations!r}: a cluster needs db")
        if self.wiring != "native":
            raise ConfigError(f"PBX_WIRING={self.wiring!r}: a cluster needs native")

    def mask_keys(self, environ: dict[str, str] | None = None):
        """The masking keys (kemi.masking.Keys), or None when none are configured; a key
        list that cannot be used is a ConfigError naming where it came from."""
        from .masking import Keys, MaskError
        environ = os.environ if environ is None else environ
        text, source = environ.get(MASK_KEYS_VAR), MASK_KEYS_VAR
        if self.mask_keys_file:
            if text is not None:
                raise ConfigError(f"PBX_MASK_KEYS_FILE and {MASK_KEYS_VAR}: give one, not both")
            source = f"PBX_MASK_KEYS_FILE={self.mask_keys_file!r}"
            try:
                text = Path(self.mask_keys_file).read_text()
            except OSError as exc:
                raise ConfigError(f"{source}: {exc.strerror}") from None
        if text is None:
            return None
        if source == MASK_KEYS_VAR:  # one line in an environment: ';' separates the keys
            text = text.replace(";", "\n")
        try:
            return Keys.parse(text, source)
        except MaskError as exc:
            raise ConfigError(str(exc)) from None

    def environ(self) -> dict[str, str]:
        """The PBX_* variables that reproduce this config in a child process."""
        return {"PBX_" + f.name.upper(): str(getattr(self, f.name)) for f in fields(self)}
