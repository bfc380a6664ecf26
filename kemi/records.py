"""Call records (README, Call records): from the spool Kamailio's acc module writes, to the
call_record table.

Kamailio writes a record in the SIP worker that ends the call, into a local file (acc's
dialog CDRs and acc_db_request rows, through db_flatstore: one file per table and process,
an append and a flush, no network). A process of its own (rtimer, route SHIP) ships them
here once a second: complete lines past the offset shipped, one INSERT per batch, commit,
then the new offsets. A database that is down or frozen holds up this process only: the
records wait in the spool, calls never wait for them. Shipped twice (a crash between the
commit and the offsets): the primary key skips them, so every call has exactly one record.

Line formats (kamailio.cfg's acc parameters; '|' separated, a '|' inside a value written
as %7C by db_flatstore):
  cdr_*.log      start_time|end_time|duration|key|t0|ta|te|dir|outcome|status|reason|rec|sim|rang|trunk
  attempt_*.log  method|from_tag|to_tag|callid|sip_code|sip_reason|time|rec
`rec` is what the routing decision knew, tab-separated and percent-quoted: for a call,
did, client, trunk, first SIM, and "1" when that SIM rang first because the client was
sticky to its manager (plans, kemi/adapter.py); for an attempt refused before anything
rang, t0, outcome, direction, then did, client, trunk, SIM.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote, unquote

from .config import ROOT

INSERT = (ROOT / "sql" / "queries" / "call_record_ship.sql").read_text()
FIELD_SAFE = "+:@/-._ "  # kept as written in a rec field; the rest percent-quoted
BATCH = 500
ROTATE_BYTES = 16 * 1024 * 1024  # a live file this big is renamed and flatstore reopens it
IDLE_S = 5.0  # a renamed file no process wrote to for this long, shipped whole, is removed

# kamailio.cfg's outcomes (shared with the metrics) as a record states them.
OUTCOMES = {"answered": "answered", "busy": "busy", "declined": "busy", "no_answer": "no_answer",
            "cancelled": "cancelled", "nobody_reachable": "nobody_reachable",
            "refused": "refused", "server_failure": "carrier_failure",
            "failed": "carrier_failure"}


def rec_field(*values) -> str:
    """What the routing decision puts in a plan for the record: tab-separated, quoted (no
    '|', which separates plan fields and flatstore columns, no tab, no line break)."""
    return "\t".join(quote(str(v or ""), safe=FIELD_SAFE) for v in values)


def _unrec(text: str, count: int) -> list[str | None]:
    parts = [unquote(p) or None for p in text.split("\t")] if text else []
    return (parts + [None] * count)[:count]


class Record(NamedTuple):
    call_key: str
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime
    duration_s: float
    direction: str
    outcome: str
    sip_status: int
    sip_reason: str
    did: str | None
    sim: str | None
    first_sim: str | None
    client: str | None
    trunk: str | None
    rang_before: int
    sticky: bool = False  # the first SIM rang through the client's sticky manager


def _when(seconds: str | float) -> datetime:
    return datetime.fromtimestamp(float(seconds), tz=timezone.utc)


def _column(value: str) -> str:
    return value.replace("%7C", "|")


def parse_cdr(line: str) -> Record:
    """A dialog's CDR (acc cdr_enable, cdr_on_failed, cdr_start_on_confirmed=1: its duration
    is the talk time of an answered call)."""
    (_start, _end, duration, key, t0, ta, te, direction, outcome, status, reason, rec, sim,
     rang, trunk) = [_column(v) for v in line.split("|")]
    did, client, first_trunk, first_sim, sticky = _unrec(rec, 5)
    started = float(t0)
    answered = float(ta) if ta else None
    outcome = "answered" if answered is not None else OUTCOMES.get(outcome, "carrier_failure")
    talk = max(0.0, float(duration or 0)) if answered is not None else 0.0
    ended = answered + talk if answered is not None else max(started, float(te or t0))
    inbound = direction in ("inbound", "internal")
    return Record(
        call_key=key, started_at=_when(started),
        answered_at=_when(answered) if answered is not None else None, ended_at=_when(ended),
        duration_s=round(talk, 3), direction=direction, outcome=outcome,
        sip_status=200 if answered is not None else int(status or 500),
        sip_reason="OK" if answered is not None else reason,
        did=did, sim=(sim or first_sim) if answered is not None or not inbound else None,
        first_sim=first_sim, client=client, trunk=trunk or first_trunk,
        rang_before=int(rang or 0), sticky=sticky == "1" and direction == "inbound")


def parse_attempt(line: str) -> Record:
    """An attempt refused before anything rang (acc_db_request from kemi/adapter.py)."""
    (_method, from_tag, _to_tag, call_id, code, reason, _time,
     rec) = [_column(v) for v in line.split("|")]
    t0, outcome, direction, did, client, trunk, sim = _unrec(rec, 7)
    when = _when(t0)
    return Record(call_key=f"{call_id};{from_tag}", started_at=when, answered_at=None,
                  ended_at=when, duration_s=0.0, direction=direction, outcome=outcome,
                  sip_status=int(code), sip_reason=reason, did=did,
                  sim=sim if direction in ("outbound", "emergency") else None,
                  first_sim=sim, client=client, trunk=trunk, rang_before=0)


PARSERS = {"cdr": parse_cdr, "attempt": parse_attempt}


class Spool:
    """The spool folder: which lines of which file are shipped (offsets by inode, so that
    a renamed file keeps its place), kept in offsets.json, replaced atomically."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.state = folder / "offsets.json"
        try:
            self.offsets: dict[str, int] = json.loads(self.state.read_text())
        except (OSError, ValueError):
            self.offsets = {}

    def files(self) -> list[tuple[Path, str, os.stat_result]]:
        """(path, table, stat) of every spool file, oldest first."""
        found = []
        for path in self.folder.iterdir():
            table = path.name.split("_", 1)[0]
            if table in PARSERS and ".log" in path.name:
                try:
                    found.append((path, table, path.stat()))
                except FileNotFoundError:
                    continue
        return sorted(found, key=lambda f: f[2].st_mtime)

    def pending(self, limit: int = BATCH) -> tuple[list[Record], dict[str, int], list[str]]:
        """Up to about limit records not shipped yet; the offsets they would advance to;
        lines that could not be read (logged by the caller, skipped: one bad line must not
        hold up every record behind it)."""
        records, advanced, bad = [], {}, []
        for path, table, st in self.files():
            inode = str(st.st_ino)
            start = self.offsets.get(inode, 0)
            if st.st_size <= start:
                continue
            with open(path, "rb") as f:
                f.seek(start)
                chunk = f.read(st.st_size - start)
            end = chunk.rfind(b"\n") + 1  # complete lines only: a writer may be mid-line
            for raw in chunk[:end].splitlines():
                line = raw.decode("utf-8", "replace")
                try:
                    records.append(PARSERS[table](line))
                except (ValueError, TypeError) as exc:
                    bad.append(f"{path.name}: {exc}: {line[:200]}")
            advanced[inode] = start + end
            if len(records) >= limit:
                break
        return records, advanced, bad

    def commit(self, advanced: dict[str, int]) -> None:
        self.offsets.update(advanced)
        temporary = self.state.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.offsets))
        os.replace(temporary, self.state)

    def tidy(self, rotate, log=print) -> None:
        """Rename a live file grown past ROTATE_BYTES, then rotate() makes Kamailio reopen
        its files (each process at its next write); if it could not, the file gets its name
        back, for a renamed file that Kamailio still wrote to would later be removed with
        the records it took meanwhile. Remove renamed files that are shipped whole and idle."""
        now = time.time()
        for path, _table, st in self.files():
            inode = str(st.st_ino)
            shipped = self.offsets.get(inode, 0) >= st.st_size
            if path.name.endswith(".log"):
                if st.st_size >= ROTATE_BYTES and shipped:
                    renamed = path.with_name(f"{path.name}.{int(now)}")
                    path.rename(renamed)
                    if not rotate():
                        renamed.rename(path)  # nothing new was opened under the name: kept
                        log(f"call record spool not rotated (flatstore.rotate failed): "
                            f"{path.name} keeps growing")
            elif shipped and now - st.st_mtime > IDLE_S:
                path.unlink()
                self.offsets.pop(inode, None)
        present = {str(st.st_ino) for _, _, st in self.files()}
        for inode in [i for i in self.offsets if i not in present]:
            del self.offsets[inode]


def control_socket(cmdline: bytes | None = None) -> Path:
    """Kamailio's RPC socket (the ctl module's default, kamailio_ctl in the runtime folder
    given by -Y), read from the command line of the Kamailio process this runs in."""
    if cmdline is None:
        cmdline = Path("/proc/self/cmdline").read_bytes()
    args = cmdline.split(b"\0")
    run_dir = "/run/kamailio"  # Kamailio's default runtime folder
    for flag, value in zip(args, args[1:]):
        if flag == b"-Y":
            run_dir = value.decode()
    return Path(run_dir) / "kamailio_ctl"


class Shipper:
    """Ships the spool to PostgreSQL, in its own process (never in a SIP worker)."""

    def __init__(self, folder: Path, dsn: str, ctl: Path | None = None, log=print):
        self.spool = Spool(folder)
        self.dsn, self.ctl, self.log = dsn, ctl, log
        self._conn = None
        self._months: set[tuple[int, int]] = set()
        self._retry_at = 0.0
        self.shipped = 0
        self.waiting = False

    def _connection(self):
        import psycopg2  # here: only this process ships
        if self._conn is None or self._conn.closed:
            self._conn = psycopg2.connect(self.dsn, application_name="cloud-pbx-records",
                                          connect_timeout=2)
        return self._conn

    def ship(self) -> int:
        """Ship what is pending; records shipped (0 while the database is away)."""
        if time.monotonic() < self._retry_at:
            return 0
        import psycopg2
        from psycopg2.extras import execute_values
        total = 0
        try:
            while True:
                records, advanced, bad = self.spool.pending()
                for line in bad:
                    self.log(f"call record unreadable, skipped: {line}")
                if not advanced:
                    break
                conn = self._connection()
                with conn, conn.cursor() as cur:
                    for month in {(r.started_at.year, r.started_at.month) for r in records} - self._months:
                        cur.execute("SELECT call_record_partition(%s)",
                                    (f"{month[0]:04d}-{month[1]:02d}-01",))
                        self._months.add(month)
                    if records:
                        execute_values(cur, INSERT, records, page_size=BATCH)
                self.spool.commit(advanced)
                total += len(records)
            self.spool.tidy(self._rotate, self.log)
        except psycopg2.Error as exc:
            self._retry_at = time.monotonic() + 1.0
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            self._months.clear()
            if not self.waiting:  # said once per outage
                self.log(f"call records wait in the spool, database unavailable: "
                         f"{' '.join(str(exc).split())}")
            self.waiting = True
            return 0
        if self.waiting:
            self.log("call records shipped again")
            self.waiting = False
        self.shipped += total
        return total

    def _rotate(self) -> bool:
        """flatstore.rotate over Kamailio's RPC socket: whether Kamailio took it."""
        if self.ctl is None:
            return False
        try:
            done = subprocess.run(["kamcmd", "-s", f"unix:{self.ctl}", "flatstore.rotate"],
                                  capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0
