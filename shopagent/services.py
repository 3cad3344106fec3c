"""Start-up in one place: connect (embedded server or DATABASE_URL), migrate, check the dimension, and hold the
long-lived clients (embeddings, pool, Chroma, the strategy switch) that the API, the graph, the tools, the
retriever and the scripts share."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property

from langchain_core.embeddings import Embeddings

from shopagent.db import catalog, schema
from shopagent.db.connection import Connection, DatabaseUnavailableError, Pool, connect, conninfo, make_pool
from shopagent.domain import SearchRequest
from shopagent.embeddings import check_dimension, embedding_dimension, embedding_model_name, make_embeddings
from shopagent.embeddings.multilingual import MultilingualEmbeddings
from shopagent.retrieval.chroma import ChromaStore
from shopagent.retrieval.reranker import CrossEncoderReranker, RerankerUnavailable
from shopagent.retrieval.strategies import ProductSearch
from shopagent.settings import Settings
from shopagent.understanding import Vocabulary, parse_search
from shopagent.understanding.translation import TermTranslator

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
    multilingual: Embeddings | None = None
    startup_errors: list[str] = field(default_factory=list)

    def warm_up(self) -> None:
        """Load the lazily loaded models now (service start-up), so no shopper waits for them."""
        if self.translator is not None:
            self.translator.warm_up()
        if (reranker := self.search.hybrid.reranker) is not None:
            try:
                reranker.warm_up()
            except RerankerUnavailable as exc:
                log.error("reranker unavailable, results are not reranked: %s", exc)

    @cached_property
    def vocabulary(self) -> Vocabulary:
        """The catalog's brands, categories and name words (read once; empty when the database is down)."""
        if self.pool is None:
            return Vocabulary()
        try:
            with self.pool.connection() as conn:
                counts = catalog.brand_counts(conn), catalog.category_counts(conn), catalog.name_word_counts(conn)
        except Exception:  # noqa: BLE001 - understanding works without the vocabulary, only less well
            log.warning("catalog vocabulary unavailable", exc_info=True)
            return Vocabulary()
        return Vocabulary.from_counts(*counts)

    @cached_property
    def translator(self) -> TermTranslator | None:
        """Spanish words -> the catalog's English words (None without the multilingual model)."""
        return TermTranslator(self.multilingual, self.vocabulary.words) if self.multilingual is not None else None

    def parse(self, query: str) -> SearchRequest:
        """A raw query understood as the agent understands it (this catalog's vocabulary and translations)."""
        return parse_search(query, vocab=self.vocabulary, translate=self.translator)

    @property
    def embedding_model(self) -> str:
        """The exact model name the vectors come from (what /health and traces report)."""
        return embedding_model_name(self.embeddings)

    def close(self) -> None:
        """Close the pool (idempotent)."""
        if self.pool is not None:
            self.pool.close()


def build_services(
    settings: Settings,
    embeddings: Embeddings | None = None,
    *,
    multilingual: Embeddings | None = None,
    with_chroma: bool = True,
) -> Services:
    """Embeddings and the multilingual model (unless given), migrated database pool and Chroma store. A database
    that is down is recorded (the service still starts and searches Chroma); a dimension mismatch is fatal."""
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
    chroma = None
    if with_chroma:
        try:
            chroma = ChromaStore.from_settings(settings, embeddings)
        except Exception as exc:  # noqa: BLE001 - a broken Chroma dir must not stop the service
            errors.append(f"Chroma unavailable: {exc}")
            log.exception("Chroma unavailable")
    if settings.multilingual_languages:
        multilingual = multilingual or MultilingualEmbeddings()
    else:
        multilingual = None
    reranker = CrossEncoderReranker() if settings.rerank_top_n and settings.rerank_languages else None
    search = ProductSearch(settings, embeddings, pool, chroma, multilingual, reranker)
    return Services(settings, embeddings, pool, chroma, search, dsn, multilingual, errors)
