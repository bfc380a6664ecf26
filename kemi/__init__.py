"""Cloud PBX routing: the Python that Kamailio's app_python3 loads (kemi/handler.py)."""

import os as _os
import sys as _sys

# What only PyPI has (ff3 and pycryptodome for masked numbers), installed by
# scripts/install-deps.sh beside the code for the Python Kamailio embeds.
_PYDEPS = _os.path.join(_os.path.dirname(_os.path.dirname(_os.path.abspath(__file__))), ".pydeps")
if _os.path.isdir(_PYDEPS) and _PYDEPS not in _sys.path:
    _sys.path.append(_PYDEPS)
