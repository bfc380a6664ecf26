"""Start and stop the project's own processes: a private PostgreSQL cluster and Kamailio.

`python3 -m kemi.stack run` is `make run`: database, schema, demo data, then the proxy in
the foreground until Ctrl-C. Tests use the same classes, so what CI runs is what users run.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from . import db, rtpengine
from .config import MASK_KEYS_VAR, ROOT, Config, ConfigError

PG_BIN = Path("/usr/lib/postgresql/15/bin")
KAMAILIO = shutil.which("kamailio", path="/usr/sbin:/usr/bin:/sbin:/bin") or "/usr/sbin/kamailio"
RTPENGINE = shutil.which("rtpengine", path="/usr/bin:/usr/sbin:/bin:/sbin") or "/usr/bin/rtpengine"
# rtpengine's logical interfaces, named in kamailio.cfg's offers (direction=sim direction=carrier).
SIM_SIDE, CARRIER_SIDE = "sim", "carrier"
KAMCMD = shutil.which("kamcmd", path="/usr/sbin:/usr/bin:/sbin:/bin") or "/usr/sbin/kamcmd"
DEMO_SQL = ROOT / "sql" / "demo.sql"


class StackError(RuntimeError):
    """A process of the stack could not start; the message says which and why."""


def _run(cmd: list[str], what: str, user: str | None = None, timeout: float | None = None) -> str:
    if user:
        cmd = ["runuser", "-u", user, "--"] + cmd
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StackError(f"{what} failed: {exc}") from None
    if done.returncode != 0:
        raise StackError(f"{what} failed ({' '.join(cmd)}):\n{done.stdout}{done.stderr}")
    return done.stdout


def kamcmd(ctl: str | Path, *args: str, timeout: float | None = None) -> str:
    """An RPC to a running Kamailio over its ctl socket; StackError when it fails."""
    output = _run([KAMCMD, "-s", f"unix:{ctl}", *args], f"kamcmd {' '.join(args)}",
                  timeout=timeout)
    if output.startswith("error:"):  # kamcmd exits 0 on RPC errors
        raise StackError(f"kamcmd {' '.join(args)}: {output.strip()}")
    return output


class PostgresCluster:
    """A PostgreSQL 15 cluster private to the project, run as the postgres user."""

    def __init__(self, state_dir: str | Path, port: int, durable: bool = True,
                 max_connections: int | None = None):
        self.max_connections = max_connections
        self.state_dir = Path(state_dir)
        self.data = self.state_dir / "pgdata"
        self.socket_dir = self.state_dir / "run"
        self.log = self.state_dir / "postgres.log"
        self.port = port
        self.durable = durable

    @property
    def dsn(self) -> str:
        return f"host={self.socket_dir} port={self.port} dbname=pbx user=postgres"

    @property
    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _prepare_dirs(self) -> None:
        # The postgres user must traverse every parent of the data and socket folders.
        for parent in self.state_dir.resolve().parents:
            if parent.exists() and not os.stat(parent).st_mode & 0o001:
                raise StackError(f"{parent} is not traversable by the postgres user (mode "
                                 f"{oct(os.stat(parent).st_mode & 0o777)}); choose another "
                                 f"PBX_STATE_DIR")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o755)
        owner = pwd.getpwnam("postgres")
        for folder in (self.data, self.socket_dir):
            folder.mkdir(exist_ok=True)
            os.chown(folder, owner.pw_uid, owner.pw_gid)
        os.chmod(self.data, 0o700)
        self.log.touch()
        os.chown(self.log, owner.pw_uid, owner.pw_gid)

    def start(self) -> None:
        self._prepare_dirs()
        if not (self.data / "PG_VERSION").exists():
            _run([str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "-E", "UTF8", "--no-locale"], "initdb", user="postgres")
        options = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1"
        if not self.durable:  # throwaway test clusters: no fsync
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        if self.max_connections:
            options += f" -c max_connections={self.max_connections}"
        _run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
              "-w", "-t", "60", "start"], f"PostgreSQL start (log {self.log})", user="postgres")
        exists = _run(["psql", "-h", str(self.socket_dir), "-p", str(self.port), "-U", "postgres",
                       "-Atc", "SELECT 1 FROM pg_database WHERE datname = 'pbx'"], "psql")
        if exists.strip() != "1":
            _run(["createdb", "-h", str(self.socket_dir), "-p", str(self.port), "-U", "postgres",
                  "pbx"], "createdb")

    def stop(self) -> None:
        if self.pid is not None:
            _run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
                 "PostgreSQL stop", user="postgres")

    def signal_all(self, sig: int) -> None:
        """Signal the postmaster and every backend (SIGSTOP freezes the server, SIGCONT thaws)."""
        for pid in with_children(self.pid):
            os.kill(pid, sig)


def free_port() -> int:
    """A TCP port free on loopback right now (for a private cluster)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_children(pid: int) -> list[int]:
    """pid and its direct children, from /proc (Kamailio's workers, PostgreSQL's backends)."""
    found = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    return found


def terminate(process: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """Stop a process this stack started (SIGTERM, then SIGKILL after timeout)."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def prepare_database(dsn: str, realm: str, demo: bool = True) -> None:
    """Apply migrations; load the demo data into an empty database."""
    db.migrate(dsn)
    if demo and not db.Database(dsn).query("company_count")[0]["n"]:
        db.run_script(dsn, DEMO_SQL, {"pbx.realm": realm})


def sip_ping(host: str, port: int, timeout: float = 0.5, source: str = "127.0.0.1") -> int | None:
    """Status code of an OPTIONS sent to the proxy itself, None when nothing answered."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(timeout)
        lport = sock.getsockname()[1]
        tag = uuid.uuid4().hex[:12]
        msg = (f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP {source}:{lport};branch=z9hG4bK{tag};rport\r\n"
               f"Max-Forwards: 70\r\nFrom: <sip:ping@{source}>;tag={tag}\r\n"
               f"To: <sip:{host}:{port}>\r\nCall-ID: ping-{tag}\r\nCSeq: 1 OPTIONS\r\n"
               f"Content-Length: 0\r\n\r\n")
        sock.sendto(msg.encode(), (host, port))
        try:
            data, _ = sock.recvfrom(65535)
        except OSError:
            return None
    parts = data.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def self_signed_certificate(cert: str, key: str, name: str) -> None:
    """A self-signed certificate for `name`, made once (tests and demos: SIMs that verify
    the proxy need a real certificate, PBX_TLS_CERT and PBX_TLS_KEY)."""
    if Path(cert).is_file() and Path(key).is_file():
        return
    Path(cert).parent.mkdir(parents=True, exist_ok=True)
    _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "825",
          "-subj", f"/CN={name}", "-keyout", key, "-out", cert], "openssl (TLS certificate)")
    os.chmod(key, 0o600)


def topology_key(config: Config) -> str:
    """PBX_TOPOLOGY_KEY, or the key made for this state_dir at its first start (kept, so
    that calls survive a restart)."""
    if config.topology_key:
        return config.topology_key
    path = Path(config.state_dir) / "topology.key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = uuid.uuid4().hex + uuid.uuid4().hex
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
        return key


def uac_key(config: Config) -> str:
    """uac's key for the From/To it keeps in Record-Route, derived from the topology key (one
    secret to share between proxies, never one key for two primitives)."""
    return hashlib.sha256(b"cloud-pbx uac\0" + topology_key(config).encode()).hexdigest()[:32]


def cluster_defines(config: Config) -> list[str]:
    """kamailio.cfg's -A defines of a cluster node (README, A cluster of proxies): its dmq
    socket and address, each peer's, the peers' networks (the only sources of dmq traffic)
    and its server_id. None for a single proxy."""
    if not config.peers:
        return []
    own = f"{config.sip_addr}:{config.cluster_port}"
    defines = ["-A", "WITH_CLUSTER", "-A", f"DMQ_LISTEN=udp:{own}", "-A", f'DMQ_SOCKET="udp:{own}"',
               "-A", f'DMQ_ADDRESS="sip:{own}"', "-A", f"CLUSTER_PORT={config.cluster_port}",
               "-A", f'CLUSTER_NETS="{",".join(p + "/32" for p in config.peers)}"',
               "-A", f"SERVER_ID={config.server_id}"]
    for i, peer in enumerate(config.peers, 1):
        defines += ["-A", f'DMQ_PEER_{i}="sip:{peer}:{config.cluster_port}"']
    return defines


class Kamailio:
    """Kamailio in the foreground (-DD -E) with every runtime path under run_dir."""

    def __init__(self, config: Config, run_dir: str | Path, log_path: str | Path | None = None,
                 cfg: Path = ROOT / "kamailio.cfg", defines: dict[str, str] | None = None):
        self.config = config
        self.run_dir = Path(run_dir)
        self.log_path = Path(log_path) if log_path else None
        self.cfg = cfg
        self.defines = dict(defines or {})  # more -A NAME[=VALUE]
        # The proxy's one way in; the full-KEMI wiring (measured, not the product) has its own.
        self.handler = ROOT / "kemi" / "handler.py"
        if config.wiring == "kemi":
            self.defines.setdefault("FULL_KEMI", None)
            self.handler = ROOT / "benchmarks" / "kemi_handler.py"
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        c = self.config
        # -x tlsf: Kamailio's default allocator (qm) searches its free lists linearly and
        # was a quarter of all CPU under load (perf); TLSF is constant time. Measured by
        # make bench-sip, which starts every configuration with this same command.
        # --atexit=no: with OpenSSL 3 the atexit handlers crash at shutdown (tls README).
        tls = []
        if c.tls_port:
            cert, key = c.tls_files
            tls = ["-A", "WITH_TLS", "-A", f"LISTEN_TLS=tls:{c.sip_addr}:{c.tls_port}",
                   "-A", f'TLS_CERT="{cert}"', "-A", f'TLS_KEY="{key}"']
        carrier = []
        if c.carrier_sip_addr != c.sip_addr:
            carrier = ["-A", f"CARRIER_LISTEN=udp:{c.carrier_sip_addr}:{c.sip_port}",
                       "-A", f"CARRIER_LISTEN_TCP=tcp:{c.carrier_sip_addr}:{c.sip_port}",
                       "-A", f'CARRIER_SOCKET="udp:{c.carrier_sip_addr}:{c.sip_port}"']
        media = []
        if c.media == "on":
            media = ["-A", "WITH_MEDIA", "-A", f'RTPENGINE_SOCK="udp:127.0.0.1:{c.media_ng_port}"',
                     "-A", f"RPC_LISTEN=tcp:127.0.0.1:{c.rpc_port}", "-A", f"RPC_PORT={c.rpc_port}"]
            if c.media_down == "refuse":
                media += ["-A", "MEDIA_REFUSE"]
        metrics = []
        if c.metrics_port and c.wiring == "native":  # the full-KEMI wiring counts nothing
            metrics = ["-A", "WITH_METRICS", "-A", f"METRICS_LISTEN=tcp:{c.metrics_addr}:{c.metrics_port}",
                       "-A", f"METRICS_PORT={c.metrics_port}"]
        records = []
        if c.records == "on" and c.wiring == "native":  # as metrics: not in full KEMI
            records = ["-A", "WITH_RECORDS", "-A", f'RECORDS_URL="flatstore:{c.records_dir}"']
        outcomes = ["-A", "WITH_OUTCOMES"] if metrics or records else []
        registrations = []
        if c.registrations == "db":  # usrloc's db_url; libpq's environment in start()
            registrations = ["-A", "WITH_DB_REGISTRATIONS",
                             "-A", f'REGISTRATIONS_URL="{db.kamailio_url(c.database_dsn)[0]}"']
        # the core's JSON engine, message stripped of its trailing line break (M)
        log = ["--log-engine=json:M", "-A", "WITH_JSON_LOG"] if c.log_format == "json" else []
        return [KAMAILIO, "-f", str(self.cfg), "-DD", "-E", "-Y", str(self.run_dir),
                "-x", "tlsf", "-m", "1024", "-M", "32", "--atexit=no",
                "-A", f"LISTEN=udp:{c.sip_addr}:{c.sip_port}",
                "-A", f"LISTEN_TCP=tcp:{c.sip_addr}:{c.sip_port}", *tls,
                "-A", f"CHILDREN={c.children}",
                "-A", f"LOGLEVEL={c.log_level}",
                "-A", f'REALM="{c.realm}"',
                "-A", f"FLOOD_REQS={c.flood_reqs}" if c.flood_reqs else "FLOOD_OFF",
                "-A", f"BAN_S={c.ban_s}", "-A", f"AUTH_FAILURES={c.auth_failures}",
                "-A", f"USER_FAILURES={c.user_failures}",
                "-A", f"RING_MS={c.ring_ms}", "-A", f"NO_ANSWER_MS={c.no_answer_ms}",
                "-A", f"NATPING_S={c.natping_s}", "-A", f"KEEPALIVE_S={c.keepalive_timeout_s}",
                "-A", f'TOPOLOGY_KEY="{topology_key(c)}"', "-A", f'UAC_KEY="{uac_key(c)}"',
                *carrier, *media, *metrics, *records, *outcomes, *log, *registrations,
                *cluster_defines(c),
                "-A", f'HANDLER="{self.handler}"',
                *[arg for name, value in self.defines.items()
                  for arg in ("-A", name if value is None else f"{name}={value}")]]

    def start(self, timeout: float = 30.0) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.config.records == "on":  # the spool survives restarts: records wait there
            Path(self.config.records_dir).mkdir(parents=True, exist_ok=True)
        if self.config.tls_port and not self.config.tls_cert:
            self_signed_certificate(*self.config.tls_files, self.config.realm)
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
               "PYTHONPATH": str(ROOT), "LANG": "C.UTF-8", **self.config.environ()}
        if self.config.registrations == "db":
            env.update(db.kamailio_url(self.config.database_dsn)[1])
        if MASK_KEYS_VAR in os.environ:  # the keys themselves: not a Config field
            env[MASK_KEYS_VAR] = os.environ[MASK_KEYS_VAR]
        stderr = open(self.log_path, "ab") if self.log_path else None
        self.process = subprocess.Popen(self.command(), env=env, stdin=subprocess.DEVNULL,
                                        stdout=stderr, stderr=stderr)
        if stderr:
            stderr.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StackError(f"Kamailio exited with {self.process.returncode} at start"
                                 + (f"; see {self.log_path}" if self.log_path else ""))
            if (sip_ping(self.config.sip_addr, self.config.sip_port, timeout=0.2) == 200
                    and (self.run_dir / "kamailio_ctl").exists()):  # SIP and RPC both ready
                return
        self.stop()
        raise StackError(f"Kamailio did not answer OPTIONS on {self.config.sip_addr}:"
                         f"{self.config.sip_port} within {timeout:.0f} s")

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def rpc(self, *args: str) -> str:
        return kamcmd(self.run_dir / "kamailio_ctl", *args)

    def stop(self, timeout: float = 10.0) -> None:
        terminate(self.process, timeout)

    def wait(self) -> int:
        return self.process.wait() if self.process else 0


class Rtpengine:
    """The daemon in the foreground (userspace forwarding: no kernel module), its control
    socket on loopback, started and stopped by PID."""

    def __init__(self, interfaces: tuple[str, str], ng_port: int, ports: str, run_dir: str | Path,
                 timeout_s: int = 60, b2b_url: str | None = None,
                 log_path: str | Path | None = None, threads: int = 2):
        self.interfaces, self.ng_port, self.ports = interfaces, ng_port, ports
        self.run_dir = Path(run_dir)
        self.timeout_s, self.b2b_url, self.threads = timeout_s, b2b_url, threads
        self.log_path = Path(log_path) if log_path else self.run_dir / "rtpengine.log"
        self.process: subprocess.Popen | None = None

    @classmethod
    def for_config(cls, config: Config, run_dir: str | Path,
                   log_path: str | Path | None = None) -> "Rtpengine | None":
        """The relay a configuration runs with (None: PBX_MEDIA=off)."""
        if config.media != "on":
            return None
        return cls(config.media_interfaces, config.media_ng_port, config.media_ports, run_dir,
                   timeout_s=config.media_timeout_s, log_path=log_path,
                   b2b_url=f"http://127.0.0.1:{config.rpc_port}/RPC2")

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.ng_port)

    def command(self) -> list[str]:
        low, _, high = self.ports.partition("-")
        sim, carrier = self.interfaces
        cmd = [RTPENGINE, "--config-file=none", "--table=-1", "--foreground", "--log-stderr",
               f"--pidfile={self.run_dir / 'rtpengine.pid'}",
               f"--interface={SIM_SIDE}/{sim}", f"--interface={CARRIER_SIDE}/{carrier}",
               f"--listen-ng=127.0.0.1:{self.ng_port}", f"--port-min={low}", f"--port-max={high}",
               f"--num-threads={self.threads}",
               # a deleted call is gone at once (the default keeps it 30 s for late packets)
               "--delete-delay=0",
               # no media in either direction for timeout_s: the call is over (the SIM is gone)
               f"--timeout={self.timeout_s}", "--silent-timeout=3600",
               "--log-level=5"]
        if self.b2b_url:
            # ... and Kamailio is told to end it on both sides (dlg.terminate_dlg)
            cmd += [f"--b2b-url={self.b2b_url}", "--xmlrpc-format=2"]
        return cmd

    def start(self, timeout: float = 10.0) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=log, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StackError(f"rtpengine exited with {self.process.returncode} at start; "
                                 f"see {self.log_path}")
            try:
                if rtpengine.ng(self.address, {"command": "ping"}, timeout=0.2).get("result") == "pong":
                    return
            except rtpengine.NgError:
                pass
        self.stop()
        raise StackError(f"rtpengine did not answer ping on 127.0.0.1:{self.ng_port} within "
                         f"{timeout:.0f} s; see {self.log_path}")

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        terminate(self.process, timeout)


def _interrupt(*_args) -> None:
    raise KeyboardInterrupt


def run(config: Config, demo: bool = True) -> int:
    """`make run`: the proxy (with demo data in an empty database, unless demo is False)
    until Ctrl-C; stops exactly what it started."""
    # PBX_DSN names a database elsewhere (a cluster's second node, say): no private one then
    cluster = None if config.dsn else PostgresCluster(config.state_dir, config.pg_port)
    proxy = Kamailio(config, Path(config.state_dir) / "kamailio")
    media = Rtpengine.for_config(config, Path(config.state_dir) / "rtpengine")
    signal.signal(signal.SIGTERM, _interrupt)  # stop as on Ctrl-C: the finally below runs
    try:
        if cluster:
            print(f"cloud-pbx: PostgreSQL on {cluster.socket_dir} port {cluster.port}", flush=True)
            cluster.start()
        prepare_database(config.database_dsn, config.realm, demo=demo)
        companies = db.Database(config.database_dsn).query("company_count")[0]["n"]
        print(f"cloud-pbx: database {config.database_dsn!r}: {companies} company(ies)"
              + ("" if demo or not companies else
                 " (not empty: for an empty one, choose another PBX_STATE_DIR)"), flush=True)
        if media:
            print(f"cloud-pbx: rtpengine on {','.join(media.interfaces)} ports {media.ports} "
                  f"(log {media.log_path})", flush=True)
            media.start()
        print(f"cloud-pbx: Kamailio on udp:{config.sip_addr}:{config.sip_port} "
              f"(Ctrl-C stops)", flush=True)
        proxy.start()
        return proxy.wait()
    except KeyboardInterrupt:
        return 0
    except (StackError, db.DatabaseError, ConfigError) as exc:
        print(f"cloud-pbx: {exc}", file=sys.stderr)
        return 1
    finally:
        proxy.stop()
        if media:
            media.stop()
        if cluster:
            cluster.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m kemi.stack", description=__doc__)
    parser.add_argument("command", choices=["run"])
    parser.add_argument("--no-demo", action="store_true",
                        help="leave an empty database empty (make run DEMO=0)")
    args = parser.parse_args(argv)
    try:
        config = Config.from_env()
    except ConfigError as exc:
        print(f"cloud-pbx: {exc}", file=sys.stderr)
        return 2
    return run(config, demo=not args.no_demo)


if __name__ == "__main__":
    sys.exit(main())
