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
from kemi.config import Config  # noqa: E402
from kemi.db import Database  # noqa: E402
from kemi.directory import Directory  # noqa: E402


def build(router_class):
    """The Router of this process and what it stands on."""
    # Runs in the main process before the workers fork: no connection is opened here
    # (kemi.db opens one lazily in each process that queries).
    config = Config.from_env()
    # listen: each worker learns of committed changes on its own connection (db.changed).
    db = Database(config.database_dsn, config.db_timeout_ms, listen=True,
                  gate=SharedGate(KSR, config.db_max_waiting))
    directory = Directory(db, config.cache_ttl_s, config.cache_size, realm=config.realm,
                          log=lambda text: KSR.notice(text + "\n"))
    return router_class(KSR, config, directory)


def mod_init():
    return build(Router)
