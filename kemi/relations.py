"""A worker's sticky relations (README, Sticky manager): per company and client number, the
manager of the client's last answered call and when it was answered. Pure, no I/O.

Four parallel arrays sorted by (client, company), 24 bytes a relation, so that a worker
holds a year of clients without a dictionary's ~100 bytes each; a lookup is one bisection,
an update by client moves the arrays' tails in place.
"""

from __future__ import annotations

import bisect
from array import array
from typing import Iterable

Row = tuple[str, int, int, int]  # client E.164, company id, manager id, answered (epoch s)


def _key(client: str) -> int | None:
    digits = client[1:]
    return int(digits) if client[:1] == "+" and digits.isdigit() else None


class Relations:
    def __init__(self, rows: Iterable[Row] = ()):
        entries = sorted((k, company, manager, answered) for client, company, manager, answered
                         in rows if (k := _key(client)) is not None)
        self._clients = array("q", (e[0] for e in entries))
        self._companies = array("i", (e[1] for e in entries))
        self._managers = array("i", (e[2] for e in entries))
        self._answered = array("q", (e[3] for e in entries))

    def __len__(self) -> int:
        return len(self._clients)

    def get(self, company: int, client: str) -> tuple[int, int] | None:
        """(manager id, answered epoch seconds) of the client's relation with the company."""
        key = _key(client)
        if key is None:
            return None
        clients = self._clients
        i = bisect.bisect_left(clients, key)
        while i < len(clients) and clients[i] == key:
            if self._companies[i] == company:
                return self._managers[i], self._answered[i]
            i += 1
        return None

    def replace(self, clients: Iterable[str], rows: Iterable[Row]) -> None:
        """The named clients' relations become rows (theirs, every company): those not in
        rows are gone (deleted, or out of the window)."""
        fresh: dict[int, list[tuple[int, int, int]]] = {}
        for client, company, manager, answered in rows:
            key = _key(client)
            if key is not None:
                fresh.setdefault(key, []).append((company, manager, answered))
        for key in {k for c in clients if (k := _key(c)) is not None} | set(fresh):
            lo = bisect.bisect_left(self._clients, key)
            hi = bisect.bisect_right(self._clients, key, lo)
            entries = sorted(fresh.get(key, ()))
            for column, values in ((self._clients, [key] * len(entries)),
                                   (self._companies, [e[0] for e in entries]),
                                   (self._managers, [e[1] for e in entries]),
                                   (self._answered, [e[2] for e in entries])):
                column[lo:hi] = array(column.typecode, values)

    @property
    def nbytes(self) -> int:
        return sum(a.buffer_info()[1] * a.itemsize
                   for a in (self._clients, self._companies, self._managers, self._answered))
