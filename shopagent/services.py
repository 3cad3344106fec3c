"""Start-up in one place: connect (embedded server or DATABASE_URL), migrate, check the dimension, and hold the
long-lived clients (embeddings, pools, Chroma, the strategy switch) that the API, the graph, the tools, the
retriever and the scripts share.

With DATABASE_READ_URL set, searches and reads by id go to that server (a streaming replica, say) through their
own pool; migrations, writes, sessions and the checkpointer use the primary pool."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import psycopg
from langchain_core.embeddings import Embeddings
from psycopg_pool import PoolTimeout

from shopagent.db import catalog, schema
from shopagent.db.connection import (
    Availability,
    Connection,
    DatabaseUnavailableError,
    Pool,
    configure_search,
    connect,
    conninfo,
    make_pool,
    redact,
)
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
    # Shared by every pool on `dsn` (the catalog's here, the API's checkpointer and sessions pools); None when the
    # database was down at start-up.
    availability: Availability | None = None
    # The pool searches use when DATABASE_READ_URL is set (None: they use `pool`).
    read_pool: Pool | None = None
    _vocabulary: Vocabulary | None = field(default=None, init=False, repr=False)
    _translator: TermTranslator | None = field(default=None, init=False, repr=False)

    def make_pool(self, name: str, **kwargs: Any) -> Pool | None:
        """Another pool on the catalog database, gated by the same availability (None when it was down at start-up)."""
        if self.dsn is None or self.availability is None:
            return None
        return make_pool(self.settings, self.dsn, name=name, availability=self.availability, **kwargs)

    def warm_up(self) -> None:
        """Load the lazily loaded models now (service start-up), so no shopper waits for them."""
        if self.translator is not None:
            self.translator.warm_up()
        if (reranker := self.search.hybrid.reranker) is not None:
            try:
                reranker.warm_up()
            except RerankerUnavailable as exc:
                log.error("reranker unavailable, results are not reranked: %s", exc)

    @property
    def vocabulary(self) -> Vocabulary:
        """The catalog's brands, categories and name words, read once. While the database cannot be read, an empty
        vocabulary that is not kept: the next turn tries again."""
        if self._vocabulary is not None:
            return self._vocabulary
        if self.pool is None:
            return Vocabulary()
        try:
            with self.pool.connection() as conn:
                counts = catalog.brand_counts(conn), catalog.category_counts(conn), catalog.name_word_counts(conn)
        except (psycopg.Error, PoolTimeout) as exc:
            log.warning("catalog vocabulary unavailable (%s): understanding without brands and categories", exc)
            return Vocabulary()
        self._vocabulary = Vocabulary.from_counts(*counts)
        return self._vocabulary

    @property
    def translator(self) -> TermTranslator | None:
        """Spanish words -> the catalog's English words (None without the multilingual model or, until it can be
        read, the catalog's vocabulary)."""
        if self._translator is None and self.multilingual is not None:
            words = self.vocabulary.words
            if words:
                self._translator = TermTranslator(self.multilingual, words)
        return self._translator

    def parse(self, query: str) -> SearchRequest:
        """A raw query understood as the agent understands it (this catalog's vocabulary and translations)."""
        return parse_search(query, vocab=self.vocabulary, translate=self.translator)

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
    availability: Availability | None = None
    try:
        dsn = conninfo(settings)
        with prepare_database(settings, embeddings, dsn):
            pass
        availability = Availability(dsn, settings.db_probe_interval_s)
        pool = make_pool(settings, dsn, availability=availability)
    except DatabaseUnavailableError as exc:
        availability = None
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
    if settings.multilingual_languages:
        multilingual = multilingual or MultilingualEmbeddings()
    else:
        multilingual = None
    reranker = CrossEncoderReranker() if settings.rerank_top_n and settings.rerank_languages else None
    search = ProductSearch(settings, embeddings, read_pool or pool, chroma, multilingual, reranker)
    return Services(settings, embeddings, pool, chroma, search, dsn, multilingual, errors, availability, read_pool)
