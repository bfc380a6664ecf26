"""Cloud PBX routing: the Python that Kamailio's app_python3 loads (kemi/handler.py)."""
