"""Start-up in one place: connect (embedded server or DATABASE_URL), migrate, check the dimension."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import psycopg
from langchain_core.embeddings import Embeddings
from psycopg_pool import ConnectionPool

from shopagent import db, repository
from shopagent.chroma_store import ChromaStore
from shopagent.config import Settings
from shopagent.embeddings import check_dimension, embedding_dimension, embedding_model_name, make_embeddings
from shopagent.search import ProductSearch

log = logging.getLogger(__name__)


def prepare_database(settings: Settings, embeddings: Embeddings, dsn: str | None = None) -> psycopg.Connection:
    """A migrated connection whose embedding column matches the model (or a clear error)."""
    conn = db.connect(settings, dsn)
    dim = embedding_dimension(embeddings)
    db.migrate(conn, dim)
    check_dimension(dim, repository.embedding_column_dimension(conn), embedding_model_name(settings, embeddings))
    return conn


@dataclass
class Services:
    """Long-lived clients shared by the API, the graph, the tools and the scripts."""

    settings: Settings
    embeddings: Embeddings
    pool: ConnectionPool | None
    chroma: ChromaStore | None
    search: ProductSearch
    dsn: str | None = None
    startup_errors: list[str] = field(default_factory=list)

    def close(self) -> None:
        """Close the pool (idempotent)."""
        if self.pool is not None:
            self.pool.close()


def build_services(settings: Settings, embeddings: Embeddings | None = None, *, with_chroma: bool = True) -> Services:
    """Embeddings (unless given), migrated database pool and Chroma store. A database that is down
    is recorded (the service still starts and searches Chroma); a dimension mismatch is fatal."""
    embeddings = embeddings or make_embeddings(settings)
    errors: list[str] = []
    pool: ConnectionPool | None = None
    dsn: str | None = None
    try:
        dsn = db.conninfo(settings)
        with prepare_database(settings, embeddings, dsn):
            pass
        pool = db.make_pool(settings, dsn)
    except db.DatabaseUnavailableError as exc:
        errors.append(str(exc))
        log.error("database unavailable, continuing with Chroma only: %s", exc)
    chroma = None
    if with_chroma:
        try:
            chroma = ChromaStore.from_settings(settings, embeddings)
        except Exception as exc:  # noqa: BLE001 - a broken Chroma dir must not stop the service
            errors.append(f"Chroma unavailable: {exc}")
            log.exception("Chroma unavailable")
    search = ProductSearch(settings, embeddings, pool, chroma)
    return Services(settings, embeddings, pool, chroma, search, dsn, errors)
