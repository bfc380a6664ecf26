"""What app_python3 loads for the full-KEMI wiring (PBX_WIRING=kemi, kamailio.cfg -A FULL_KEMI),
kept to measure it against the proxy's own wiring: every message enters Python."""

import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(__file__)]
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from kemi import handler  # noqa: E402  (sets up KSR's import path like the proxy's handler)

from benchmarks.kemi_wiring import KemiRouter  # noqa: E402


def mod_init():
    return handler.build(KemiRouter)
