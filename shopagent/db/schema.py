"""Schema: ordered, idempotent `.sql` migrations (applied once, under an advisory lock) and the DDL that
maintains the vector index around bulk loads."""

from __future__ import annotations

import hashlib
import logging
from importlib import resources
from typing import Any

from pgvector.psycopg import register_vector
from psycopg import sql

from shopagent.db.connection import Connection

log = logging.getLogger(__name__)

# Serialises concurrent migration runs (two `make run`s, tests in parallel).
_MIGRATION_LOCK_ID = 726_001

# Same definition as migration 0004 (migrations stay static SQL); used to rebuild the index.
_HNSW_INDEX_DDL = (
    "CREATE INDEX IF NOT EXISTS products_embedding_hnsw ON products USING hnsw (embedding vector_cosine_ops)"
    " WITH (m = 16, ef_construction = 64)"
)


def first_value(row: Any) -> Any:
    """First value of a dict or tuple row."""
    return next(iter(row.values())) if isinstance(row, dict) else row[0]


def migration_files() -> list[tuple[str, str]]:
    """(version, sql text) of every migration, in order."""
    folder = resources.files("shopagent.db") / "migrations"
    files = sorted((p for p in folder.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name)
    return [(p.name.removesuffix(".sql"), p.read_text(encoding="utf-8")) for p in files]


def migrate(conn: Connection, embedding_dim: int) -> list[str]:
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
        for version, text in migration_files():
            checksum = hashlib.sha256(text.encode()).hexdigest()
            if version in done:
                if done[version] != checksum:
                    log.warning("migration %s changed after it was applied; not re-running it", version)
                continue
            # The only substitution: an int validated above, never user text.
            conn.execute(text.replace("{embedding_dim}", str(embedding_dim)).encode())
            conn.execute("INSERT INTO schema_migrations (version, checksum) VALUES (%s, %s)", (version, checksum))
            applied.append(version)
            log.info("applied migration %s", version)
    register_vector(conn)
    return applied


def embedding_column_dimension(conn: Connection) -> int | None:
    """The dimension of products.embedding, or None before migrations."""
    row = conn.execute(
        """SELECT atttypmod FROM pg_attribute
           WHERE attrelid = to_regclass('products') AND attname = 'embedding' AND NOT attisdropped"""
    ).fetchone()
    return int(first_value(row)) if row and first_value(row) > 0 else None


def extension_status(conn: Connection, name: str) -> tuple[str | None, bool]:
    """(installed version or None, whether the server can install it) of a PostgreSQL extension."""
    row = conn.execute(
        "SELECT installed_version, true AS available FROM pg_available_extensions WHERE name = %s", (name,)
    ).fetchone()
    return (row["installed_version"], True) if row else (None, False)


def drop_vector_index(conn: Connection) -> None:
    """Drop the HNSW index (before an initial bulk load: building it once afterwards took 1 s for the
    sample, against ~4 s of per-row index maintenance during the load)."""
    conn.execute("DROP INDEX IF EXISTS products_embedding_hnsw")


def ensure_vector_index(conn: Connection) -> None:
    """(Re)build the HNSW index if it is missing (after a bulk load, or a load killed before its end)."""
    conn.execute(_HNSW_INDEX_DDL)


def reset_embedding_column(conn: Connection, dim: int) -> None:
    """Re-create products.embedding as vector(dim): drops stored vectors and the HNSW index, rebuilds it."""
    with conn.transaction():
        drop_vector_index(conn)
        conn.execute(
            sql.SQL("ALTER TABLE products ALTER COLUMN embedding TYPE vector({}) USING NULL").format(
                sql.Literal(int(dim))
            )
        )
        conn.execute("UPDATE products SET content_hash = '', embedding_model = NULL")
        ensure_vector_index(conn)
