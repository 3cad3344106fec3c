"""Start-up in one place: connect (embedded server or DATABASE_URL), migrate, check the dimension, and hold the
long-lived clients (embeddings, pools, Chroma, the strategy switch) that the API, the graph, the tools, the
retriever and the scripts share.

With DATABASE_READ_URL set, searches and reads by id go to that server (a streaming replica, say) through their
own pool; migrations, writes, sessions and the checkpointer use the primary pool."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from langchain_core.embeddings import Embeddings
from psycopg_pool import PoolTimeout

from shopagent.db import schema
from shopagent.db.connection import (
    Connection,
    DatabaseUnavailableError,
    Pool,
    configure_search,
    connect,
    conninfo,
    make_pool,
    redact,
)
from shopagent.embeddings import check_dimension, embedding_dimension, embedding_model_name, make_embeddings
from shopagent.retrieval.chroma import ChromaStore
from shopagent.retrieval.strategies import ProductSearch
from shopagent.settings import Settings

log = logging.getLogger(__name__)


def prepare_database(settings: Settings, embeddings: Embeddings, dsn: str | None = None) -> Connection:
    """A migrated connection whose embedding column matches the model (or a clear error)."""
    conn = connect(settings, dsn)
    dim = embedding_dimension(embeddings)
    schema.migrate(conn, dim)
    check_dimension(dim, schema.embedding_column_dimension(conn), embedding_model_name(embeddings))
    return conn


@dataclass
class Services:
    """Long-lived clients shared by the API, the graph, the tools, the retriever and the scripts."""

    settings: Settings
    embeddings: Embeddings
    pool: Pool | None
    chroma: ChromaStore | None
    search: ProductSearch
    dsn: str | None = None
    startup_errors: list[str] = field(default_factory=list)
    # The pool searches use when DATABASE_READ_URL is set (None: they use `pool`).
    read_pool: Pool | None = None

    @property
    def embedding_model(self) -> str:
        """The exact model name the vectors come from (what /health and traces report)."""
        return embedding_model_name(self.embeddings)

    def close(self) -> None:
        """Close the pools (idempotent)."""
        for pool in (self.read_pool, self.pool):
            if pool is not None:
                pool.close()


def make_read_pool(settings: Settings) -> Pool | None:
    """The search pool on DATABASE_READ_URL, or None when it is unset. Raises PoolTimeout when it is unreachable."""
    if settings.database_read_url is None:
        return None
    return make_pool(
        settings,
        settings.database_read_url.get_secret_value(),
        name="catalog_read",
        configure=lambda conn: configure_search(conn, settings),
    )


def build_services(settings: Settings, embeddings: Embeddings | None = None, *, with_chroma: bool = True) -> Services:
    """Embeddings (unless given), migrated database pool and Chroma store. A database that is down
    is recorded (the service still starts and searches Chroma); a dimension mismatch is fatal."""
    embeddings = embeddings or make_embeddings(settings)
    errors: list[str] = []
    pool: Pool | None = None
    dsn: str | None = None
    try:
        dsn = conninfo(settings)
        with prepare_database(settings, embeddings, dsn):
            pass
        pool = make_pool(settings, dsn)
    except DatabaseUnavailableError as exc:
        errors.append(str(exc))
        log.error("database unavailable, continuing with Chroma only: %s", exc)
    read_pool: Pool | None = None
    try:
        read_pool = make_read_pool(settings)
    except PoolTimeout as exc:
        dsn_shown = redact(settings.database_read_url.get_secret_value()) if settings.database_read_url else ""
        errors.append(f"read replica unavailable ({dsn_shown}): searches use the primary")
        log.error("read replica %s unavailable, searching the primary: %s", dsn_shown, exc)
    chroma = None
    if with_chroma:
        try:
            chroma = ChromaStore.from_settings(settings, embeddings)
        except Exception as exc:  # noqa: BLE001 - a broken Chroma dir must not stop the service
            errors.append(f"Chroma unavailable: {exc}")
            log.exception("Chroma unavailable")
    search = ProductSearch(settings, embeddings, read_pool or pool, chroma)
    return Services(settings, embeddings, pool, chroma, search, dsn, errors, read_pool)
