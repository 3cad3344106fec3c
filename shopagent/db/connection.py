"""Connections: the embedded PostgreSQL when no DATABASE_URL is set, one configured connection, and the one
pool factory (the catalog pool and the checkpointer's pool both come from `make_pool`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from shopagent.settings import Settings

log = logging.getLogger(__name__)

Connection = psycopg.Connection[DictRow]
Pool = ConnectionPool[Connection]


class DatabaseUnavailableError(RuntimeError):
    """The catalog database cannot be reached."""


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


def configure_search(conn: Connection, ef_search: int) -> None:
    """Per-connection setup: vector type adapters and HNSW iterative scans for filtered queries."""
    try:
        register_vector(conn)
    except psycopg.ProgrammingError:
        pass  # before the first migration the vector type doesn't exist yet; migrate() registers it
    conn.execute(sql.SQL("SET hnsw.ef_search = {}").format(sql.Literal(ef_search)))
    # Filtered HNSW scans otherwise stop after ef_search candidates and return fewer than k rows.
    conn.execute("SET hnsw.iterative_scan = relaxed_order")


def connect(settings: Settings, dsn: str | None = None) -> Connection:
    """One configured autocommit connection (scripts, migrations); write paths use `conn.transaction()`."""
    dsn = dsn or conninfo(settings)
    try:
        conn = psycopg.connect(dsn, row_factory=dict_row, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailableError(f"cannot connect to {redact(dsn)}: {exc}") from exc
    configure_search(conn, settings.hnsw_ef_search)
    return conn


def make_pool(
    settings: Settings,
    dsn: str,
    *,
    name: str = "catalog",
    configure: Callable[[Connection], None] | None = None,
    open_wait: bool = True,
    **connect_kwargs: Any,
) -> Pool:
    """A pool of autocommit dict-row connections. The catalog pool configures vector search on each
    connection; the checkpointer's passes `prepare_threshold=0` as LangGraph's PostgresSaver expects."""
    if configure is None and name == "catalog":

        def configure(conn: Connection) -> None:
            configure_search(conn, settings.hnsw_ef_search)

    pool: Pool = ConnectionPool(
        dsn,
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
        kwargs={"row_factory": dict_row, "autocommit": True, "connect_timeout": 5, **connect_kwargs},
        configure=configure,
        open=False,
        timeout=5,
        name=name,
    )
    pool.open(wait=open_wait, timeout=10)
    return pool
