"""Schema: ordered, idempotent `.sql` migrations (applied once, under an advisory lock) and the DDL that
maintains the search indexes around bulk loads (the HNSW index as the settings describe it, the full-text GIN)."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any

from pgvector.psycopg import register_vector
from psycopg import sql

from shopagent.db.connection import Connection
from shopagent.settings import Settings

log = logging.getLogger(__name__)

# Serialises concurrent migration runs (two `make run`s, tests in parallel).
_MIGRATION_LOCK_ID = 726_001

VECTOR_INDEX = "products_embedding_hnsw"
FULLTEXT_INDEX = "products_search_tsv_gin"
# Same definition as migration 0004 (migrations stay static SQL); used to rebuild the index after bulk loads.
_FULLTEXT_INDEX_DDL = f"CREATE INDEX IF NOT EXISTS {FULLTEXT_INDEX} ON products USING gin (search_tsv)"


@dataclass(frozen=True)
class VectorIndexSpec:
    """How the HNSW index is built: graph degree `m`, build-time candidate list `ef_construction`, and whether
    it indexes half-precision copies of the vectors (`halfvec`: about half the size; queries must then order
    by the same `embedding::halfvec(dim)` expression, see `catalog.vector_search`). Migration 0004's index
    is the default spec."""

    m: int = 16
    ef_construction: int = 64
    halfvec: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> VectorIndexSpec:
        """HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_HALFVEC."""
        return cls(settings.hnsw_m, settings.hnsw_ef_construction, settings.hnsw_halfvec)

    def ddl(self, dim: int, name: str = VECTOR_INDEX, *, concurrently: bool = False) -> sql.Composed:
        """CREATE INDEX [CONCURRENTLY] IF NOT EXISTS `name` for a `dim`-dimensional embedding column."""
        column = (
            sql.SQL("(embedding::halfvec({})) halfvec_cosine_ops").format(sql.Literal(int(dim)))
            if self.halfvec
            else sql.SQL("embedding vector_cosine_ops")
        )
        return sql.SQL(
            "CREATE INDEX {concurrently} IF NOT EXISTS {name} ON products USING hnsw ({column})"
            " WITH (m = {m}, ef_construction = {ef})"
        ).format(
            concurrently=sql.SQL("CONCURRENTLY" if concurrently else ""),
            name=sql.Identifier(name),
            column=column,
            m=sql.Literal(int(self.m)),
            ef=sql.Literal(int(self.ef_construction)),
        )


@dataclass(frozen=True)
class IndexBuild:
    """Session settings for building indexes after a bulk load: `maintenance_work_mem` (a PostgreSQL size such
    as "1GB"; an HNSW graph that does not fit builds much more slowly) and parallel workers besides the leader."""

    maintenance_work_mem: str = "1GB"
    parallel_workers: int = 1

    @classmethod
    def from_settings(cls, settings: Settings) -> IndexBuild:
        """INDEX_BUILD_MAINTENANCE_WORK_MEM, INDEX_BUILD_PARALLEL_WORKERS."""
        return cls(settings.index_build_maintenance_work_mem, settings.index_build_parallel_workers)


DEFAULT_INDEX = VectorIndexSpec()
DEFAULT_BUILD = IndexBuild()


def first_value(row: Any) -> Any:
    """First value of a dict or tuple row."""
    return next(iter(row.values())) if isinstance(row, dict) else row[0]


@contextmanager
def migration_lock(conn: Connection) -> Iterator[None]:
    """Hold the migration lock on `conn` for a block that migrates through other connections (LangGraph's
    checkpointer `setup()`, which several workers starting together would otherwise race)."""
    conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK_ID,))
    try:
        yield
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK_ID,))


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
    """Drop the HNSW index (before bulk writes: building it once afterwards is far cheaper than maintaining it
    row by row)."""
    conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(VECTOR_INDEX)))


def drop_fulltext_index(conn: Connection) -> None:
    """Drop the full-text GIN index (before bulk writes, for the same reason)."""
    conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(FULLTEXT_INDEX)))


def _dimension(conn: Connection) -> int:
    """The embedding column's dimension; RuntimeError before the migrations."""
    dim = embedding_column_dimension(conn)
    if dim is None:
        raise RuntimeError("products.embedding has no dimension: run the migrations first")
    return dim


def ensure_vector_index(conn: Connection, spec: VectorIndexSpec = DEFAULT_INDEX) -> None:
    """(Re)build the HNSW index if it is missing (after a bulk load, or a load killed before its end)."""
    conn.execute(spec.ddl(_dimension(conn)))


@contextmanager
def index_build_session(conn: Connection, build: IndexBuild) -> Iterator[None]:
    """`build`'s memory and parallel workers for the index builds inside, this session only."""
    conn.execute(sql.SQL("SET maintenance_work_mem = {}").format(sql.Literal(build.maintenance_work_mem)))
    conn.execute(sql.SQL("SET max_parallel_maintenance_workers = {}").format(sql.Literal(build.parallel_workers)))
    try:
        yield
    finally:
        conn.execute("RESET maintenance_work_mem")
        conn.execute("RESET max_parallel_maintenance_workers")


def build_search_indexes(
    conn: Connection, spec: VectorIndexSpec = DEFAULT_INDEX, build: IndexBuild = DEFAULT_BUILD
) -> dict[str, float]:
    """Build whichever of the GIN and HNSW indexes is missing, with `build`'s memory and workers; return seconds
    per index built (`{}` when both exist)."""
    rows = conn.execute(
        "SELECT name FROM unnest(%s::text[]) name WHERE to_regclass(name) IS NULL", ([FULLTEXT_INDEX, VECTOR_INDEX],)
    ).fetchall()
    missing = {r["name"] for r in rows}
    builders: dict[str, Callable[[], object]] = {
        FULLTEXT_INDEX: lambda: conn.execute(_FULLTEXT_INDEX_DDL),
        VECTOR_INDEX: lambda: ensure_vector_index(conn, spec),
    }
    seconds: dict[str, float] = {}
    with index_build_session(conn, build):
        for name in (n for n in builders if n in missing):
            started = time.perf_counter()
            builders[name]()
            seconds[name] = time.perf_counter() - started
            log.info("built %s in %.1f s", name, seconds[name])
    return seconds


def rebuild_vector_index(conn: Connection, spec: VectorIndexSpec, build: IndexBuild = DEFAULT_BUILD) -> float:
    """Build the HNSW index anew as `spec` says (new HNSW_* settings) beside the old one, without blocking writes
    (CONCURRENTLY), then swap them in one transaction; searches keep the old index until the swap. Returns the
    build's seconds. Needs an autocommit connection."""
    staging = f"{VECTOR_INDEX}_new"
    conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(staging)))  # a build killed earlier
    started = time.perf_counter()
    with index_build_session(conn, build):
        conn.execute(spec.ddl(_dimension(conn), staging, concurrently=True))
    seconds = time.perf_counter() - started
    with conn.transaction():
        drop_vector_index(conn)
        conn.execute(
            sql.SQL("ALTER INDEX {} RENAME TO {}").format(sql.Identifier(staging), sql.Identifier(VECTOR_INDEX))
        )
    log.info("rebuilt %s in %.1f s", VECTOR_INDEX, seconds)
    return seconds


def vector_index_definition(conn: Connection) -> str | None:
    """The HNSW index's definition as PostgreSQL prints it, or None when it is missing."""
    row = conn.execute("SELECT pg_get_indexdef(to_regclass(%s)) AS d", (VECTOR_INDEX,)).fetchone()
    return row["d"] if row else None


def reset_embedding_column(conn: Connection, dim: int, spec: VectorIndexSpec = DEFAULT_INDEX) -> None:
    """Re-create products.embedding as vector(dim): drops stored vectors and the HNSW index, rebuilds it."""
    with conn.transaction():
        drop_vector_index(conn)
        conn.execute(
            sql.SQL("ALTER TABLE products ALTER COLUMN embedding TYPE vector({}) USING NULL").format(
                sql.Literal(int(dim))
            )
        )
        conn.execute("UPDATE products SET content_hash = '', embedding_model = NULL")
        ensure_vector_index(conn, spec)
