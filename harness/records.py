"""Call records shipped as the proxy's loader ships them: the statement of
sql/queries/call_record_insert.sql, a batch of rows per round trip (tests, benchmarks)."""

from __future__ import annotations

import re

import psycopg2.extras

from kemi.db import QUERIES

BATCH = 500  # rows per INSERT, as the loader sends them
_SQL = QUERIES["call_record_insert"]
COLUMNS = tuple(re.findall(r"%\((\w+)\)s", _SQL))
_HEAD, _, _REST = _SQL.partition("VALUES")
_ROW, _, _CONFLICT = _REST.partition("ON CONFLICT")
STATEMENT = f"{_HEAD}VALUES %s ON CONFLICT{_CONFLICT}"
TEMPLATE = _ROW.strip()

DEFAULTS = {c: None for c in COLUMNS} | {"duration_s": 0, "sip_reason": "", "rang_before": 0,
                                              "sticky": False}


def record(**fields) -> dict:
    """One record's parameters: the columns not given take the table's defaults."""
    unknown = set(fields) - set(COLUMNS)
    if unknown:
        raise TypeError(f"not call_record columns: {sorted(unknown)}")
    return DEFAULTS | fields


def ship(cur, rows: list[dict], batch: int = BATCH) -> None:
    """INSERT ... ON CONFLICT (call_key, started_at) DO NOTHING, `batch` rows a statement."""
    psycopg2.extras.execute_values(cur, STATEMENT, rows, TEMPLATE, page_size=batch)
