#!/usr/bin/python3
"""The proxy container's entrypoint, on kemi.stack's own classes (what `make run` starts).

    run      migrations (idempotent), rtpengine when PBX_MEDIA=on, Kamailio in the
             foreground; SIGTERM (docker stop) stops both
    demo     load sql/demo.sql into an empty database (demo passwords: demo only)
    health   exit 0 when the proxy answers an OPTIONS with 200 (the compose healthcheck)

Configured only through PBX_* variables (README, Configuration): PBX_DSN names the
database (compose.yml: the db service's socket), PBX_STATE_DIR a volume that keeps the
topology key and the generated TLS pair across restarts.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kemi import db  # noqa: E402
from kemi.config import Config, ConfigError  # noqa: E402
from kemi.stack import Kamailio, Rtpengine, StackError, prepare_database, sip_ping  # noqa: E402


def say(msg: str) -> None:
    print(f"cloud-pbx: {msg}", file=sys.stderr, flush=True)


def migrate(config: Config, timeout: float = 60.0) -> None:
    """Migrations applied (each once: safe on every start), waiting for a database that is
    still coming up (a restarted db container)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            prepare_database(config.database_dsn, config.realm, demo=False)
            return
        except db.DatabaseError as exc:
            if time.monotonic() > deadline:
                raise
            say(f"database not ready ({exc}); retrying")
            time.sleep(1)


def _stop(*_args) -> None:
    raise KeyboardInterrupt


def serve(config: Config) -> int:
    state = Path(config.state_dir)
    proxy = Kamailio(config, state / "kamailio")
    media = Rtpengine.for_config(config, state / "rtpengine", log_path="/dev/stderr")
    signal.signal(signal.SIGTERM, _stop)
    try:
        migrate(config)
        companies = db.Database(config.database_dsn).query("company_count")[0]["n"]
        say(f"database {config.database_dsn!r}: {companies} company(ies)")
        if media:
            say(f"rtpengine on {','.join(media.interfaces)} ports {media.ports}")
            media.start()
        proxy.start()
        say(f"Kamailio answering on udp:{config.sip_addr}:{config.sip_port}")
        while True:  # the proxy, and the relay it anchors media through, both alive
            code = proxy.process.poll()
            if code is not None:
                say(f"Kamailio exited with {code}")
                return code or 1
            if media and not media.running():
                say("rtpengine exited; stopping (the container restarts both)")
                return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0
    except (StackError, db.DatabaseError, ConfigError) as exc:
        say(str(exc))
        return 1
    finally:
        proxy.stop()
        if media:
            media.stop()


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "run"
    try:
        config = Config.from_env()
    except ConfigError as exc:
        say(str(exc))
        return 2
    if command == "run":
        return serve(config)
    if command == "demo":
        try:
            migrate(config)
            before = db.Database(config.database_dsn).query("company_count")[0]["n"]
            prepare_database(config.database_dsn, config.realm, demo=True)
        except db.DatabaseError as exc:
            say(str(exc))
            return 1
        say("demo data loaded (demo passwords: demo only)" if not before
            else "database not empty: demo data not loaded")
        return 0
    if command == "health":
        return 0 if sip_ping(config.sip_addr, config.sip_port, timeout=1.0) == 200 else 1
    say(f"unknown command {command!r}: run, demo or health")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
