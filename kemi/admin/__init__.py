"""pbxctl: the administrators' tool for the routing tables (python -m kemi.admin)."""
