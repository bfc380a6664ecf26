"""The one module that talks to PostgreSQL: named queries from sql/, records made from their
rows (kemi/model.py), change notifications, migrations, lazy per-process connections."""

from __future__ import annotations

import os
import re
import select
import time
from pathlib import Path

import psycopg2
import psycopg2.extensions
import psycopg2.extras

from .model import DidRoute, Sim, Trunk

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


class DatabaseError(Exception):
    """The database could not answer; the message says which DSN and why."""


class DatabaseUnavailable(DatabaseError):
    """No connection could be made (or the last attempt failed moments ago)."""

# Routing tables NOTIFY this channel on every committed change, naming the table and the
# keys that changed (sql/migrations/004): '<table> <kind>=<key>,<key> ...', or '<table> *'.
CHANGES_CHANNEL = "routing_changed"
ALL = None  # a table's keys: every row may have changed


class Changes:
    """What the notifications since the last look name: per table, the keys per kind
    ({'manager': {'3'}, 'district': {'2', '5'}}), or ALL; `everything` after a new
    connection, since notifications sent while there was none are lost."""

    def __init__(self, everything: bool = False):
        self.everything = everything
        self.tables: dict[str, dict[str, set[str]] | None] = {}

    def __bool__(self) -> bool:
        return self.everything or bool(self.tables)

    def add(self, payload: str) -> None:
        table, _, rest = payload.partition(" ")
        if rest.strip() == "*" or not rest.strip():
            self.tables[table] = ALL
            return
        if table in self.tables and self.tables[table] is ALL:
            return
        kinds = self.tables.setdefault(table, {})
        for part in rest.split():
            kind, _, keys = part.partition("=")
            kinds.setdefault(kind, set()).update(k for k in keys.split(",") if k)

    def keys(self, kind: str) -> set[str]:
        """Every key of one kind, whichever table's notification named it."""
        found: set[str] = set()
        for kinds in self.tables.values():
            if kinds is not ALL:
                found |= kinds.get(kind, set())
        return found

    def __repr__(self) -> str:
        return "Changes(everything)" if self.everything else f"Changes({self.tables})"


NOTHING = Changes()


def _load_queries() -> dict[str, str]:
    return {p.stem: p.read_text() for p in sorted((SQL_DIR / "queries").glob("*.sql"))}


QUERIES = _load_queries()


class Database:
    """The routing connection of one Kamailio process: opened lazily, bounded in time.

    Kamailio forks its workers after loading Python: a connection inherited across fork
    would be shared by several processes and corrupt, so the owner's PID is checked and a
    forked child opens its own. The connection is asynchronous so that every wait, connect
    and query alike, has a deadline of timeout_ms enforced here: a frozen server cannot
    enforce its own statement_timeout. After a failure the next attempt waits (0.25 s,
    doubling up to 1 s), so a database that is down costs a request an exception, not a
    timeout, and a database that is back is used again within a second. An optional gate
    bounds how many processes wait on the database at once (see kemi/handler.py).
    """

    RETRY_MIN_S, RETRY_MAX_S = 0.25, 1.0
    SLOW_S = 0.1  # a routing query slower than this makes the gate's limit hold

    def __init__(self, dsn: str, timeout_ms: int = 500, application: str = "cloud-pbx",
                 listen: bool = False, clock=time.monotonic, gate=None):
        self.dsn = dsn
        self.timeout_ms = timeout_ms
        self.application = application
        self.listen = listen
        self.gate = gate  # enter() -> bool, leave(): at most N processes waiting
        self._clock = clock
        self._conn = None
        self._pid = None
        self._retry_at = 0.0
        self._backoff = self.RETRY_MIN_S
        self._fresh = False  # a new connection: changes made meanwhile were not notified

    @property
    def breaker_open(self) -> bool:
        return self._clock() < self._retry_at

    def _fail(self) -> None:
        self.close()
        self._retry_at = self._clock() + self._backoff
        self._backoff = min(self._backoff * 2, self.RETRY_MAX_S)

    def _wait(self, conn, deadline: float) -> None:
        """Drive an asynchronous operation to its end, or raise at the deadline."""
        while True:
            state = conn.poll()
            if state == psycopg2.extensions.POLL_OK:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DatabaseUnavailable(f"{self.dsn!r} did not answer within {self.timeout_ms} ms")
            if state == psycopg2.extensions.POLL_READ:
                select.select([conn.fileno()], [], [], remaining)
            else:
                select.select([], [conn.fileno()], [], remaining)

    def _connection(self):
        if self._conn is not None and self._pid == os.getpid() and not self._conn.closed:
            return self._conn
        if self.breaker_open:
            raise DatabaseUnavailable(f"{self.dsn!r} unavailable; next attempt in "
                                      f"{self._retry_at - self._clock():.2f} s")
        deadline = time.monotonic() + self.timeout_ms / 1000
        try:
            conn = psycopg2.connect(self.dsn, async_=1, application_name=self.application)
            self._conn, self._pid = conn, os.getpid()
            self._wait(conn, deadline)
            if self.listen:
                with conn.cursor() as cur:
                    cur.execute(f"LISTEN {CHANGES_CHANNEL}")
                    self._wait(conn, deadline)
        except (psycopg2.Error, DatabaseUnavailable) as exc:
            self._fail()
            raise DatabaseUnavailable(f"cannot connect to {self.dsn!r}: {_first_line(exc)}") from exc
        self._backoff = self.RETRY_MIN_S
        self._fresh = True
        return conn

    def _lost(self, conn, exc: Exception | None = None) -> bool:
        """The server closed an established connection (a restart, pg_terminate_backend):
        worth one new connection at once, not a breaker's wait. A timeout is not that.
        An idle connection learns it first as a notice: poll() reads the server's last
        words ("FATAL: terminating connection ...") without raising; only the next read
        fails."""
        if exc is None:
            if not conn.notices:
                return False
            fatal = any(notice.startswith("FATAL") for notice in conn.notices)
            conn.notices.clear()
            if not fatal:
                return False
        elif not (isinstance(exc, psycopg2.OperationalError) and conn.closed):
            return False
        self.close()
        return True

    def changed(self) -> Changes:
        """What changed since the last call, as notified; everything after a new connection
        was opened. A non-blocking read of the socket, no round trip."""
        for attempt in (1, 2):
            try:
                conn = self._connection()
                conn.poll()
                lost = self._lost(conn)
            except DatabaseError:
                return NOTHING
            except psycopg2.Error as exc:
                lost = self._lost(conn, exc)
                if not lost:
                    self._fail()
                    return NOTHING
            if not lost:
                break
            if attempt == 2:  # a new connection, closed again at once
                self._fail()
                return NOTHING
            # reconnect now: the request must not be served from what may have changed
        if self._fresh:
            changed = Changes(everything=True)
        elif conn.notifies:
            changed = Changes()
            for notify in conn.notifies:
                changed.add(notify.payload)
        else:
            return NOTHING
        conn.notifies.clear()
        self._fresh = False
        return changed

    # -- records --------------------------------------------------------------------------

    SNAPSHOT_TIMEOUT_MS = 5000  # 100,000 SIMs load in about 0.7 s, 1,000,000 DIDs in ~1 s

    def trunks(self) -> tuple[Trunk, ...]:
        return tuple(Trunk(**{**row, "sources": tuple(row["sources"])})
                     for row in self.query("trunks"))

    def sims(self, sims=(), managers=(), districts=(), companies=(), numbers=(),
             everything: bool = False) -> list[Sim]:
        """Every SIM (everything), or those the named keys touch (sql/queries/sims_changed)."""
        if everything:
            columns, rows = self.query_tuples("sims", timeout_ms=self.SNAPSHOT_TIMEOUT_MS)
        else:
            columns, rows = self.query_tuples(
                "sims_changed", timeout_ms=self.SNAPSHOT_TIMEOUT_MS, sims=list(sims),
                managers=[int(k) for k in managers], districts=[int(k) for k in districts],
                companies=[int(k) for k in companies], numbers=list(numbers))
        # Tuples into Sim by position (sims.sql selects its fields in order; checked): a
        # dict per row and keyword construction cost 40 % of loading 100,000 SIMs.
        if tuple(columns) != SIM_FIELDS:
            raise TypeError(f"sims.sql selects {columns}, Sim has {SIM_FIELDS}")
        return [Sim._make(row) for row in rows]

    def did_route(self, number: str) -> DidRoute | None:
        rows = self.query("did_route", number=number)
        return DidRoute(**{**rows[0], "hunt": tuple(rows[0]["hunt"])}) if rows else None

    def did_index(self, numbers=None) -> list[tuple[str, int]]:
        """(number, company) of every DID, or of those among `numbers` that exist."""
        if numbers is None:
            return self.query_tuples("did_index", timeout_ms=self.SNAPSHOT_TIMEOUT_MS)[1]
        return self.query_tuples("did_index_changed", numbers=list(numbers))[1]

    def sticky_window(self) -> int:
        """The longest sticky window in use, in days (0: sticky routing off everywhere)."""
        return int(self.query_tuples("sticky_window")[1][0][0])

    def sticky_relations(self, days: int, clients=None) -> list[tuple]:
        """(client, company, manager, answered epoch s) answered within `days`: every
        relation, or those of the named clients."""
        if clients is None:
            return self.query_tuples("sticky_relations", timeout_ms=self.SNAPSHOT_TIMEOUT_MS,
                                     days=days)[1]
        return self.query_tuples("sticky_relations_changed", days=days, clients=list(clients))[1]

    def query(self, name: str, timeout_ms: int | None = None, **params) -> list[dict]:
        """Rows of the named query in sql/queries/, as dicts, within timeout_ms (default
        the connection's). On timeout the connection is dropped, which ends the query."""
        columns, rows = self.query_tuples(name, timeout_ms, **params)
        return [dict(zip(columns, row)) for row in rows]

    def query_tuples(self, name: str, timeout_ms: int | None = None,
                     **params) -> tuple[list[str], list[tuple]]:
        """The column names and rows as tuples: for large results (a dict per row cost a
        quarter of loading 100,000 SIMs)."""
        if self.gate is not None and not self.gate.enter():
            raise DatabaseUnavailable(f"too many processes already waiting on {self.dsn!r}")
        try:
            for attempt in (1, 2):
                reused = self._conn is not None and self._pid == os.getpid() and not self._conn.closed
                conn = self._connection()
                started = time.monotonic()
                deadline = started + (timeout_ms or self.timeout_ms) / 1000
                try:
                    with conn.cursor() as cur:
                        cur.execute(QUERIES[name], params)
                        self._wait(conn, deadline)
                        columns = [c.name for c in cur.description]
                        rows = cur.fetchall()
                    if self.gate is not None and time.monotonic() - started > self.SLOW_S:
                        self.gate.slow()
                    return columns, rows
                except DatabaseUnavailable as exc:
                    self._fail()
                    if self.gate is not None:
                        self.gate.slow()
                    raise DatabaseUnavailable(f"query {name}: {exc}") from None
                except psycopg2.Error as exc:
                    # A connection that served before and was closed by the server: one
                    # new connection and the query again (reads only: nothing is done twice).
                    if attempt == 1 and reused and self._lost(conn, exc):
                        continue
                    if isinstance(exc, psycopg2.OperationalError):
                        self._fail()
                    raise DatabaseError(f"query {name} on {self.dsn!r}: {_first_line(exc)}") from exc
        finally:
            if self.gate is not None:
                self.gate.leave()

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            try:
                self._conn.close()
            except psycopg2.Error:
                pass
        self._conn = None


SIM_FIELDS = Sim._fields


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def migrations() -> list[tuple[int, Path]]:
    found = []
    for path in sorted((SQL_DIR / "migrations").glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise DatabaseError(f"{path}: migration files are named NNN_name.sql")
        found.append((int(match.group(1)), path))
    return found


def migrate(dsn: str, up_to: int | None = None) -> list[str]:
    """Apply each migration not yet recorded in schema_version (up to version up_to),
    each in its own transaction; the names of those applied."""
    applied = []
    try:
        conn = psycopg2.connect(dsn, application_name="cloud-pbx-migrate")
    except psycopg2.Error as exc:
        raise DatabaseError(f"cannot connect to {dsn!r}: {_first_line(exc)}") from exc
    try:
        with conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS schema_version ("
                        " version integer PRIMARY KEY, name text NOT NULL,"
                        " applied_at timestamptz NOT NULL DEFAULT now())")
        for version, path in migrations():
            if up_to is not None and version > up_to:
                break
            with conn, conn.cursor() as cur:
                # One migrator at a time; a second one waits, then sees the version done.
                cur.execute("SELECT pg_advisory_xact_lock(4711)")
                cur.execute("SELECT 1 FROM schema_version WHERE version = %s", (version,))
                if cur.fetchone():
                    continue
                cur.execute(path.read_text())
                cur.execute("INSERT INTO schema_version (version, name) VALUES (%s, %s)",
                            (version, path.name))
                applied.append(path.name)
    except psycopg2.Error as exc:
        raise DatabaseError(f"migration on {dsn!r}: {_first_line(exc)}") from exc
    finally:
        conn.close()
    return applied


def run_script(dsn: str, path: Path, settings: dict[str, str] | None = None) -> None:
    """Run one SQL file in a single transaction (demo and test data).

    settings become transaction-local parameters the script reads with current_setting().
    """
    try:
        conn = psycopg2.connect(dsn, application_name="cloud-pbx-load")
    except psycopg2.Error as exc:
        raise DatabaseError(f"cannot connect to {dsn!r}: {_first_line(exc)}") from exc
    try:
        with conn, conn.cursor() as cur:
            for key, value in (settings or {}).items():
                cur.execute("SELECT set_config(%s, %s, true)", (key, value))
            cur.execute(path.read_text())
    except psycopg2.Error as exc:
        raise DatabaseError(f"{path.name} on {dsn!r}: {_first_line(exc)}") from exc
    finally:
        conn.close()


# -- administration (pbxctl): explicit transactions, constraint errors with their names ----

ADMIN_QUERIES = {p.stem: p.read_text() for p in sorted((SQL_DIR / "admin").glob("*.sql"))}


FOREIGN_KEY_VIOLATION = "23503"  # SQLSTATE: a row still referenced, or a reference to none


class ConstraintViolation(DatabaseError):
    """PostgreSQL refused a change; `constraint` names the rule, `detail` the row or key,
    `pgcode` the SQLSTATE."""

    def __init__(self, message: str, constraint: str | None, detail: str | None,
                 pgcode: str | None = None):
        super().__init__(message)
        self.constraint = constraint
        self.detail = detail
        self.pgcode = pgcode


class Session:
    """One administrator's connection: every command is one transaction, committed or not."""

    def __init__(self, dsn: str, application: str = "pbxctl"):
        self.dsn = dsn
        try:
            self._conn = psycopg2.connect(dsn, application_name=application, connect_timeout=5)
        except psycopg2.Error as exc:
            raise DatabaseUnavailable(f"cannot connect to {dsn!r}: {_first_line(exc)}") from exc

    def run(self, name: str, params: dict | None = None) -> list[dict]:
        """Rows of sql/admin/<name>.sql, inside the current transaction."""
        try:
            with self._conn.cursor() as cur:
                cur.execute(ADMIN_QUERIES[name], params or {})
                if cur.description is None:
                    return []
                columns = [c.name for c in cur.description]
                return [dict(zip(columns, row)) for row in cur.fetchall()]
        except psycopg2.Error as exc:
            raise _violation(exc) from exc

    def run_each(self, name: str, rows: list[dict], on_page=None, page: int = 1000) -> None:
        """sql/admin/<name>.sql once per row, a page of rows per round trip. When a page is
        refused it is replayed row by row to find the row at fault:
        ConstraintViolation.row is its index in rows."""
        sql = ADMIN_QUERIES[name]
        with self._conn.cursor() as cur:
            for start in range(0, len(rows), page):
                chunk = rows[start:start + page]
                cur.execute("SAVEPOINT page")
                try:
                    statement, template = _multi_row(sql)
                    psycopg2.extras.execute_values(cur, statement, chunk, template, page_size=page)
                except psycopg2.Error:
                    cur.execute("ROLLBACK TO SAVEPOINT page")
                    self._find_refused_row(cur, sql, chunk, start)
                    raise  # the page failed but no single row did: deferred or concurrent
                cur.execute("RELEASE SAVEPOINT page")
                if on_page:
                    on_page(start + len(chunk))

    @staticmethod
    def _find_refused_row(cur, sql: str, chunk: list[dict], start: int) -> None:
        for offset, row in enumerate(chunk):
            cur.execute("SAVEPOINT row")
            try:
                cur.execute(sql, row)
            except psycopg2.Error as exc:
                cur.execute("ROLLBACK TO SAVEPOINT row")
                violation = _violation(exc)
                violation.row = start + offset
                raise violation from exc
            cur.execute("RELEASE SAVEPOINT row")

    def check_deferred(self) -> None:
        """Check deferred constraints now, so a refusal comes before commit."""
        try:
            with self._conn.cursor() as cur:
                cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        except psycopg2.Error as exc:
            raise _violation(exc) from exc

    def commit(self) -> None:
        try:
            self._conn.commit()
        except psycopg2.Error as exc:
            raise _violation(exc) from exc

    def rollback(self) -> None:
        self._conn.rollback()

    def close(self) -> None:
        self._conn.close()


def _multi_row(sql: str) -> tuple[str, str]:
    """INSERT ... VALUES (row) [RETURNING ...] as a statement taking many rows, and the
    row template (psycopg2.extras.execute_values): one statement per page of rows."""
    head, _, rest = sql.partition("VALUES")
    template = rest.split("RETURNING")[0].strip()
    return f"{head} VALUES %s", template


def _violation(exc: psycopg2.Error) -> DatabaseError:
    if isinstance(exc, psycopg2.OperationalError) and exc.pgcode is None:
        return DatabaseUnavailable(_first_line(exc))
    diag = getattr(exc, "diag", None)
    return ConstraintViolation(_first_line(exc), getattr(diag, "constraint_name", None),
                               getattr(diag, "message_detail", None), exc.pgcode)


# libpq's environment variables for the DSN's keywords: Kamailio's db_postgres takes a URL
# that cannot name a Unix socket folder, but an empty host lets libpq read PGHOST.
_LIBPQ_ENV = {"host": "PGHOST", "hostaddr": "PGHOSTADDR", "port": "PGPORT", "user": "PGUSER",
              "password": "PGPASSWORD", "sslmode": "PGSSLMODE", "connect_timeout": "PGCONNECT_TIMEOUT",
              "passfile": "PGPASSFILE", "sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT",
              "sslkey": "PGSSLKEY"}


def kamailio_url(dsn: str) -> tuple[str, dict[str, str]]:
    """The db_url Kamailio's modules get for this libpq DSN, and the environment that
    completes it (host, port, password... never on Kamailio's command line).

    >>> kamailio_url("host=/run/pbx-db port=5432 dbname=pbx user=postgres")
    ('postgres://postgres@/pbx', {'PGHOST': '/run/pbx-db', 'PGPORT': '5432', 'PGUSER': 'postgres'})
    """
    try:
        params = psycopg2.extensions.parse_dsn(dsn)
    except psycopg2.ProgrammingError as exc:
        raise DatabaseError(f"PBX_DSN={dsn!r}: {_first_line(exc)}") from None
    unknown = set(params) - set(_LIBPQ_ENV) - {"dbname", "application_name"}
    if unknown:
        raise DatabaseError(f"PBX_DSN={dsn!r}: Kamailio's registrations cannot use "
                            f"{', '.join(sorted(unknown))}")
    env = {var: params[key] for key, var in _LIBPQ_ENV.items() if key in params}
    user = params.get("user") or "postgres"
    return f"postgres://{user}@/{params.get('dbname', user)}", env
