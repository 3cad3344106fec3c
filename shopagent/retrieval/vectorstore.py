"""The `products` table exposed as a langchain-postgres `PGVectorStore` (for LangChain retrievers).

Search only: bulk loading goes through `shopagent.ingest` (the store inserts one row at a time).
Scores: `similarity_search_with_relevance_scores` gives cosine similarity (the scale every
backend uses); `similarity_search_with_score` gives cosine *distance*.
"""

from __future__ import annotations

import psycopg
from langchain_core.embeddings import Embeddings
from langchain_postgres import PGEngine, PGVectorStore
from langchain_postgres.v2.indexes import DistanceStrategy
from sqlalchemy.engine import URL

from shopagent.db.connection import conninfo
from shopagent.settings import Settings

METADATA_COLUMNS = ["name", "brand", "price", "in_stock"]


def sqlalchemy_url(dsn: str) -> URL:
    """A `postgresql+psycopg` URL for a libpq DSN; a Unix-socket host (the embedded server) goes
    in the query string, where SQLAlchemy passes it through to libpq."""
    params = {k: str(v) for k, v in psycopg.conninfo.conninfo_to_dict(dsn).items() if v not in (None, "")}
    host = params.pop("host", "")
    socket = host.startswith("/")
    port = params.pop("port", None)
    return URL.create(
        "postgresql+psycopg",
        username=params.pop("user", None),
        password=params.pop("password", None),
        host=None if socket else host or None,
        port=int(port) if port else None,
        database=params.pop("dbname", None),
        query={"host": host, **params} if socket else params,
    )


def make_pg_vectorstore(settings: Settings, embeddings: Embeddings, dsn: str | None = None) -> PGVectorStore:
    """A PGVectorStore over the existing `products` table (cosine distance, product fields as metadata)."""
    engine = PGEngine.from_connection_string(sqlalchemy_url(dsn or conninfo(settings)))
    return PGVectorStore.create_sync(
        engine,
        embeddings,
        table_name="products",
        id_column="id",
        content_column="embedded_text",
        embedding_column="embedding",
        metadata_columns=METADATA_COLUMNS,
        distance_strategy=DistanceStrategy.COSINE_DISTANCE,
    )


def close_pg_vectorstore(store: PGVectorStore) -> None:
    """Dispose of the store's connection pool (PGEngine only offers an async close)."""
    engine: PGEngine = store._engine  # the store keeps its engine private
    engine._run_as_sync(engine.close())
