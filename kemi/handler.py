"""Entry point loaded by app_python3: builds one Router per Kamailio process (the proxy's one
way in; the full-KEMI wiring kept for measurement loads benchmarks/kemi_handler.py)."""

import os
import sys

# app_python3 puts this file's folder on sys.path, where kemi's modules would shadow
# the standard library's; the package is imported from the project root instead.
_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import KSR  # noqa: E402  (provided by app_python3)

from kemi.adapter import Router, SharedGate  # noqa: E402
from kemi.config import Config, ConfigError  # noqa: E402
from kemi.db import Database, DatabaseError  # noqa: E402
from kemi.directory import Directory  # noqa: E402


def build(router_class):
    """The Router of this process and what it stands on."""
    # Runs in the main process before the workers fork: no connection is opened here
    # (kemi.db opens one lazily in each process that queries).
    config = Config.from_env()
    check_masking_keys(config)
    # listen: each worker learns of committed changes on its own connection (db.changed).
    db = Database(config.database_dsn, config.db_timeout_ms, listen=True,
                  gate=SharedGate(KSR, config.db_max_waiting))
    directory = Directory(db, config.cache_ttl_s, config.cache_size, realm=config.realm,
                          log=lambda text: KSR.notice(text + "\n"))
    return router_class(KSR, config, directory)


def check_masking_keys(config: Config) -> None:
    """The proxy does not start with a key list it cannot use, nor without keys while a
    company masks (its managers would see nobody), nor in a wiring that does not mask;
    ConfigError names the setting. A database that does not answer now is not a reason to
    refuse: routing starts from what it can, and the keys were checked at the last start."""
    keys = config.mask_keys()
    if keys is not None and config.wiring == "native":
        return
    probe = Database(config.database_dsn, config.db_timeout_ms, application="cloud-pbx-start")
    try:
        masking = [row["name"] for row in probe.query("masking_on")]
    except DatabaseError:
        return
    finally:
        probe.close()
    if masking and config.wiring != "native":
        # the full-KEMI wiring is kept for measurement, and filters no header toward a SIM
        raise ConfigError(f"masking is on for {', '.join(masking)}: PBX_WIRING={config.wiring!r} "
                          f"does not mask; use PBX_WIRING=native")
    if masking and keys is None:
        raise ConfigError(f"masking is on for {', '.join(masking)}, and no keys are configured: "
                          f"set PBX_MASK_KEYS_FILE (or PBX_MASK_KEYS)")


def mod_init():
    return build(Router)
