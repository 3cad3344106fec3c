"""Database connections: the embedded PostgreSQL when no DATABASE_URL is set, pools, migrations."""

from __future__ import annotations

import hashlib
import logging
from importlib import resources
from pathlib import Path

import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from shopagent.config import Settings

log = logging.getLogger(__name__)

# Serialises concurrent migration runs (two `make run`s, tests in parallel).
_MIGRATION_LOCK_ID = 726_001


class DatabaseUnavailableError(RuntimeError):
    """The catalog database cannot be reached."""


def conninfo(settings: Settings) -> str:
    """The connection string: DATABASE_URL, or the embedded server started on demand."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return start_embedded_server(settings.pg_data_dir)


def start_embedded_server(data_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL 18 + pgvector in `data_dir`; return its URI."""
    import pgserver  # local import: only the embedded path needs it

    data_dir.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this process, so restarts and tests reuse it.
    server = pgserver.get_server(data_dir, cleanup_mode=None)
    return server.get_uri()


def redact(dsn: str) -> str:
    """A DSN safe for logs: no password."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparseable dsn>"
    params.pop("password", None)
    return " ".join(f"{k}={v}" for k, v in sorted(params.items()) if v)


def _configure(conn: psycopg.Connection, ef_search: int) -> None:
    """Per-connection setup: vector type adapters and HNSW iterative scans for filtered queries."""
    try:
        register_vector(conn)
    except psycopg.ProgrammingError:
        pass  # before the first migration the vector type doesn't exist yet; migrate() registers it
    conn.execute(sql.SQL("SET hnsw.ef_search = {}").format(sql.Literal(ef_search)))
    # Filtered HNSW scans otherwise stop after ef_search candidates and return fewer than k rows.
    conn.execute("SET hnsw.iterative_scan = relaxed_order")


def connect(settings: Settings, dsn: str | None = None, **kwargs: object) -> psycopg.Connection:
    """One configured autocommit connection (scripts, migrations); write paths use `conn.transaction()`."""
    dsn = dsn or conninfo(settings)
    try:
        conn = psycopg.connect(dsn, row_factory=dict_row, autocommit=True, connect_timeout=5, **kwargs)  # type: ignore[arg-type]
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailableError(f"cannot connect to {redact(dsn)}: {exc}") from exc
    _configure(conn, settings.hnsw_ef_search)
    return conn


def make_pool(settings: Settings, dsn: str | None = None, *, open_wait: bool = True) -> ConnectionPool:
    """A connection pool for the service; connections get vector adapters and search settings."""
    dsn = dsn or conninfo(settings)
    pool = ConnectionPool(
        dsn,
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
        kwargs={"row_factory": dict_row, "autocommit": True, "connect_timeout": 5},
        configure=lambda conn: _configure(conn, settings.hnsw_ef_search),
        open=False,
        timeout=5,
        name="shopagent",
    )
    pool.open(wait=open_wait, timeout=10)
    return pool


def _migration_files() -> list[tuple[str, str]]:
    """(version, sql text) of every migration, in order."""
    folder = resources.files("shopagent") / "migrations"
    files = sorted(p for p in folder.iterdir() if p.name.endswith(".sql"))
    return [(p.name.removesuffix(".sql"), p.read_text(encoding="utf-8")) for p in files]


def migrate(conn: psycopg.Connection, embedding_dim: int) -> list[str]:
    """Apply pending migrations in order, each in its own transaction; return the versions applied."""
    if not isinstance(embedding_dim, int) or embedding_dim <= 0:
        raise ValueError(f"embedding_dim must be a positive int, got {embedding_dim!r}")
    applied: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_ID,))
        conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version text PRIMARY KEY,
                   checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r["version"]: r["checksum"] for r in conn.execute("SELECT * FROM schema_migrations")}
        for version, text in _migration_files():
            checksum = hashlib.sha256(text.encode()).hexdigest()
            if version in done:
                if done[version] != checksum:
                    log.warning("migration %s changed after it was applied; not re-running it", version)
                continue
            # The only substitution: an int validated above, never user text.
            conn.execute(text.replace("{embedding_dim}", str(embedding_dim)))  # type: ignore[arg-type]
            conn.execute("INSERT INTO schema_migrations (version, checksum) VALUES (%s, %s)", (version, checksum))
            applied.append(version)
            log.info("applied migration %s", version)
    register_vector(conn)
    return applied
