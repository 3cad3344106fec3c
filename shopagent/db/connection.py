"""Connections: the embedded PostgreSQL when no DATABASE_URL is set, one configured connection, the one pool
factory (the catalog, checkpointer and sessions pools all come from `make_pool`), and `Availability`: whether the
database answers, shared by every pool of a process.

An outage is detected once and then costs nothing: a pooled connection that fails its check at checkout (or comes
back broken) makes `Availability` probe with a fresh connection; when the probe fails the database is marked down
and every checkout from then on raises `DatabaseUnavailableError` at once (search falls back to Chroma, turns run
without memory) instead of each caller waiting for a pool timeout. While down, a checkout probes again at most every
DB_PROBE_INTERVAL_S; when a probe succeeds every pool is drained (`ConnectionPool.drain`): the connections that died
with the old server are replaced, so the first turn after a restart already runs on fresh ones."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from shopagent.settings import Settings

log = logging.getLogger(__name__)

Connection = psycopg.Connection[DictRow]

# A probe result this young is reused by callers that fail together (one probe, not one per thread).
_PROBE_REUSE_S = 0.2


class DatabaseUnavailableError(psycopg.OperationalError):
    """The catalog database cannot be reached (an OperationalError, so every `except psycopg.Error` handles it)."""


class Availability:
    """Whether the database answers: one probe decides for every pool of the process (see the module docstring)."""

    def __init__(self, dsn: str, probe_interval_s: float, connect_timeout_s: int = 2):
        """`dsn` is probed with fresh connections, at most every `probe_interval_s` while the database is down."""
        self._dsn = dsn
        self.probe_interval_s = probe_interval_s
        self._connect_timeout_s = connect_timeout_s
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._probed_at = float("-inf")
        self._drained_at = float("-inf")
        self._pools: list[Pool] = []

    @property
    def is_down(self) -> bool:
        """True while the last probe failed."""
        return self._down_since is not None

    def register(self, pool: Pool) -> None:
        """Drain `pool` too when the database comes back."""
        self._pools.append(pool)

    def ensure_up(self) -> None:
        """Return if the database answers; raise `DatabaseUnavailableError` at once while it is known to be down.
        Once DB_PROBE_INTERVAL_S has passed since the last probe, the caller probes first (one caller at a time;
        the others do not wait for it)."""
        if self._down_since is None:
            return
        if time.monotonic() - self._probed_at >= self.probe_interval_s and self._lock.acquire(blocking=False):
            try:
                self._probe_and_update()
            finally:
                self._lock.release()
        if self._down_since is not None:
            raise DatabaseUnavailableError(f"database unavailable (down for {self.down_for_s():.1f} s)")

    def down_for_s(self) -> float:
        """Seconds since the database was marked down (0 when it is up)."""
        down_since = self._down_since
        return 0.0 if down_since is None else time.monotonic() - down_since

    def verify(self) -> bool:
        """Probe now (waiting for a probe in flight; a result younger than 0.2 s is reused): True if the database
        answers. Marks it down when the probe fails; drains every pool when it answers after being down."""
        with self._lock:
            if time.monotonic() - self._probed_at < _PROBE_REUSE_S:
                return self._down_since is None
            return self._probe_and_update()

    def _probe_and_update(self) -> bool:
        """Probe and record the result (caller holds the lock)."""
        up = self._probe()
        self._probed_at = time.monotonic()
        if not up and self._down_since is None:
            self._down_since = self._probed_at
            log.error("database unavailable: degrading (search from Chroma, turns without memory)")
        elif up and self._down_since is not None:
            log.warning("database available again after %.1f s: draining stale connections", self.down_for_s())
            self._down_since = None
            self._drain_pools()
        return up

    def restarted(self) -> None:
        """A connection died but the database answers: it was restarted, so replace every pooled connection
        (once: callers that find their stale connections together drain once)."""
        with self._lock:
            if time.monotonic() - self._drained_at >= self.probe_interval_s:
                log.warning("database restarted: draining stale connections")
                self._drain_pools()

    def _drain_pools(self) -> None:
        """Replace every pooled connection, idle or in use (caller holds the lock)."""
        self._drained_at = time.monotonic()
        for pool in self._pools:
            if not pool.closed:
                pool.drain()

    def _probe(self) -> bool:
        """A fresh connection answers a query."""
        try:
            with psycopg.connect(self._dsn, connect_timeout=self._connect_timeout_s, autocommit=True) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error as exc:
            log.info("database probe failed: %s", type(exc).__name__)
            return False


class Pool(ConnectionPool[Connection]):
    """A connection pool that fails fast while its database is down and notices restarts: each checkout checks its
    connection (one empty round trip); a dead one means the server went away or was restarted, which `Availability`
    then decides with a probe."""

    availability: Availability | None = None

    def getconn(self, timeout: float | None = None) -> Connection:
        """A working connection; `DatabaseUnavailableError` at once while the database is down."""
        if self.availability is None:
            return super().getconn(timeout)
        self.availability.ensure_up()
        try:
            conn = super().getconn(timeout)
        except PoolTimeout:
            if not self.availability.verify():
                raise DatabaseUnavailableError("database unavailable") from None
            raise  # the database answers: the pool is just busy
        try:
            self.check_connection(conn)
        except psycopg.Error:
            self.putconn(conn)  # broken: discarded, and a replacement is requested
            if not self.availability.verify():
                raise DatabaseUnavailableError("database unavailable") from None
            self.availability.restarted()
            conn = super().getconn(timeout)
        return conn

    def putconn(self, conn: Connection) -> None:
        """Return a connection; one that broke in use makes the availability check the database now."""
        broken = conn.broken
        super().putconn(conn)
        if broken and self.availability is not None:
            self.availability.verify()


def conninfo(settings: Settings) -> str:
    """The connection string: DATABASE_URL, or the embedded server started on demand."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return start_embedded_server(settings.pg_data_dir)


def start_embedded_server(data_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL 18 + pgvector in `data_dir`; return its URI."""
    from pgserver import get_server  # type: ignore[attr-defined]  # local: only the embedded path needs it

    data_dir.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this process, so restarts and tests reuse it.
    server = get_server(data_dir, cleanup_mode=None)
    return str(server.get_uri())


def redact(dsn: str) -> str:
    """A DSN safe for logs: no password."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparseable dsn>"
    params.pop("password", None)
    return " ".join(f"{k}={v}" for k, v in sorted(params.items()) if v)


def configure_search(conn: Connection, settings: Settings) -> None:
    """Per-connection setup: vector type adapters and the HNSW query knobs (ef_search, iterative scans and their
    bound, see Settings)."""
    try:
        register_vector(conn)
    except psycopg.ProgrammingError:
        pass  # before the first migration the vector type doesn't exist yet; migrate() registers it
    # Filtered HNSW scans stop after ef_search candidates and return fewer than k rows unless iterative scans
    # go on looking (up to max_scan_tuples visited tuples).
    for name, value in (
        ("hnsw.ef_search", settings.hnsw_ef_search),
        ("hnsw.iterative_scan", settings.hnsw_iterative_scan),
        ("hnsw.max_scan_tuples", settings.hnsw_max_scan_tuples),
    ):
        conn.execute(sql.SQL("SET {} = {}").format(sql.Identifier(*name.split(".")), sql.Literal(value)))


def connect(settings: Settings, dsn: str | None = None) -> Connection:
    """One configured autocommit connection (scripts, migrations); write paths use `conn.transaction()`."""
    dsn = dsn or conninfo(settings)
    try:
        conn = psycopg.connect(dsn, row_factory=dict_row, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailableError(f"cannot connect to {redact(dsn)}: {exc}") from exc
    configure_search(conn, settings)
    return conn


def make_pool(
    settings: Settings,
    dsn: str,
    *,
    name: str = "catalog",
    availability: Availability | None = None,
    max_size: int | None = None,
    timeout: float = 5.0,
    configure: Callable[[Connection], None] | None = None,
    open_wait: bool = True,
    **connect_kwargs: Any,
) -> Pool:
    """A pool of autocommit dict-row connections, gated by `availability` when given. The catalog pool configures
    vector search on each connection; the checkpointer's passes `prepare_threshold=0` as LangGraph's PostgresSaver
    expects. Lost connections are retried for a few seconds only (not psycopg_pool's five minutes of growing
    back-off): after an outage the pool refills at once from `Availability`'s drain or from the next checkout."""
    if configure is None and name == "catalog":

        def configure(conn: Connection) -> None:
            configure_search(conn, settings)

    pool = Pool(
        dsn,
        min_size=settings.db_pool_min_size,
        max_size=max_size or settings.db_pool_max_size,
        kwargs={"row_factory": dict_row, "autocommit": True, "connect_timeout": 5, **connect_kwargs},
        configure=configure,
        open=False,
        timeout=timeout,
        reconnect_timeout=max(2 * settings.db_probe_interval_s, 2.0),
        name=name,
    )
    pool.availability = availability
    if availability is not None:
        availability.register(pool)
    pool.open(wait=open_wait, timeout=10)
    return pool
