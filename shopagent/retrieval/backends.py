"""Retrieval backends behind one protocol: pgvector, PostgreSQL full text and Chroma.

Each backend answers `search(query) -> list[ProductView]`, best first by its own measure (cosine similarity for the
vector stores, `ts_rank` for full text) and never with a non-finite one, whatever is stored (`domain.ranked`); it is
traced as a LangSmith
`retriever` run named `<backend>_search` with its figures (k, threshold, filters, count, similarities,
latency). A backend that cannot answer raises `BackendUnavailable` carrying a typed `FallbackReason`;
deciding what to do about it is the strategies' job, not the backends'.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import psycopg
from langsmith import traceable
from psycopg_pool import PoolTimeout

from shopagent.db import catalog
from shopagent.db.connection import Connection, Pool
from shopagent.domain import FallbackReason, ProductView, RankKey, SearchFilters, figures, ranked
from shopagent.observability.tracing import annotate
from shopagent.retrieval.chroma import ChromaStore
from shopagent.settings import Backend

log = logging.getLogger(__name__)


class BackendUnavailable(RuntimeError):
    """A backend could not answer (unreachable, timed out, errored, not configured)."""

    def __init__(self, reason: FallbackReason):
        """Carry the typed reason."""
        super().__init__(str(reason))
        self.reason = reason


@dataclass(frozen=True)
class Query:
    """One backend call: the search words, their embedding, the filters, how many, and the minimum similarity."""

    text: str
    vector: list[float]
    filters: SearchFilters
    k: int
    threshold: float | None = None


def _query_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    """What a backend run records as inputs: everything but the 384 floats of the query vector."""
    q: Query = inputs["query"]
    return {"text": q.text, "k": q.k, "threshold": q.threshold, "filters": q.filters.as_dict()}


@traceable(run_type="chain", name="fallback")
def note_fallback(primary: str, served_by: str, reasons: list[FallbackReason]) -> dict[str, str]:
    """A trace node that records a fallback and why."""
    reason = "; ".join(str(r) for r in reasons)
    annotate(primary=primary, served_by=served_by, fallback_reason=reason)
    log.info("fallback from %s to %s: %s", primary, served_by, reason)
    return {"primary": primary, "served_by": served_by, "reason": reason}


class RetrievalBackend:
    """Base of the backends: one traced, timed `search` that turns the backend's own failures into
    `BackendUnavailable`."""

    name: ClassVar[Backend]
    # Exceptions that mean "this backend cannot answer now" (anything else is a bug and propagates).
    failures: ClassVar[tuple[type[BaseException], ...]] = (psycopg.Error, PoolTimeout)
    # Database errors can quote connection details: only their type is reported.
    quote_errors: ClassVar[bool] = False
    # What the backend ranks by.
    rank_key: ClassVar[RankKey] = "similarity"

    def __init__(self) -> None:
        """Bind the traced entry point under this backend's run name."""
        self.search = traceable(run_type="retriever", name=f"{self.name}_search", process_inputs=_query_inputs)(
            self._traced_search
        )

    def _run(self, query: Query) -> list[ProductView]:
        """The backend's own search (subclasses)."""
        raise NotImplementedError

    def _traced_search(self, query: Query) -> list[ProductView]:
        """Search, timing it and recording its figures on the current run."""
        started = time.perf_counter()
        try:
            products = ranked(self._run(query), self.rank_key)
        except BackendUnavailable:
            raise
        except self.failures as exc:
            detail = type(exc).__name__ + (f": {str(exc)[:200]}" if self.quote_errors else "")
            raise BackendUnavailable(FallbackReason(self.name, "unavailable", detail)) from exc
        annotate(
            backend=self.name,
            k=query.k,
            threshold=query.threshold,
            filters=query.filters.as_dict(),
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
            **figures(products),
        )
        return products


class PostgresBackend(RetrievalBackend):
    """A backend served by the catalog database's pool."""

    def __init__(self, pool: Pool | None):
        """`pool` None means the database was down at start-up."""
        super().__init__()
        self.pool = pool

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A pooled connection; `BackendUnavailable` when the database cannot give one or fails under it."""
        if self.pool is None:
            raise BackendUnavailable(FallbackReason(self.name, "unavailable", "no database pool"))
        try:
            with self.pool.connection() as conn:
                yield conn
        except self.failures as exc:
            raise BackendUnavailable(FallbackReason(self.name, "unavailable", type(exc).__name__)) from exc


class PgVectorBackend(PostgresBackend):
    """pgvector top-k by cosine similarity (HNSW with iterative scans), and reads by id."""

    name = "pgvector"

    def __init__(self, pool: Pool | None, *, halfvec: bool = False):
        """`halfvec`: the HNSW index is built on half-precision vectors (HNSW_HALFVEC), so queries order by them."""
        super().__init__(pool)
        self.halfvec = halfvec

    def _run(self, query: Query) -> list[ProductView]:
        """Vector search in PostgreSQL."""
        with self.connection() as conn:
            return catalog.vector_search(
                conn, query.vector, query.k, query.filters, query.threshold, halfvec=self.halfvec
            )

    def rows(self, ids: list[str]) -> list[ProductView]:
        """Products by id with their detail fields (unknown ids skipped)."""
        with self.connection() as conn:
            return catalog.product_views(conn, ids)

    def neighbours(
        self, product_id: str, k: int, filters: SearchFilters
    ) -> tuple[ProductView | None, np.ndarray | None, list[tuple[ProductView, np.ndarray]]]:
        """(the product, its vector, its k nearest products with their vectors); (None, None, []) if unknown."""
        with self.connection() as conn:
            source = catalog.product_views(conn, [product_id])
            if not source:
                return None, None, []
            vector = catalog.get_embeddings(conn, [product_id]).get(product_id)
            if vector is None:
                return source[0], None, []
            return (
                source[0],
                vector,
                catalog.neighbours_with_vectors(conn, product_id, vector, k, filters, halfvec=self.halfvec),
            )

    def rerank_texts(self, ids: list[str]) -> dict[str, str]:
        """id -> "name. brand. first bullet" (what the reranker reads); empty when the database cannot answer."""
        try:
            with self.connection() as conn:
                return catalog.rerank_texts(conn, ids)
        except BackendUnavailable:
            return {}

    def similarities(self, vector: list[float], ids: list[str]) -> dict[str, float]:
        """Cosine similarity of stored vectors to `vector` (unit vectors), for products another backend found;
        empty when the database cannot answer (the caller then drops those products)."""
        if not ids:
            return {}
        try:
            with self.connection() as conn:
                stored = catalog.get_embeddings(conn, ids)
        except BackendUnavailable:
            return {}
        q = np.asarray(vector, dtype=np.float32)
        return {pid: sim for pid, v in stored.items() if (sim := cosine(v, q)) is not None}


class MultilingualBackend(PostgresBackend):
    """The multilingual dense list: pgvector over the products' USE multilingual vectors (`embedding_ml`). Its
    `similarity` is that model's cosine, not MiniLM's: the hybrid fusion re-scores what it keeps."""

    name = "multilingual"

    def _run(self, query: Query) -> list[ProductView]:
        """Multilingual vector search in PostgreSQL."""
        with self.connection() as conn:
            return catalog.vector_search(conn, query.vector, query.k, query.filters, query.threshold, "embedding_ml")


class FullTextBackend(PostgresBackend):
    """PostgreSQL weighted full-text search (name A, brand/category B, colour/bullets C, description D)."""

    name = "fulltext"
    rank_key = "score"

    def __init__(self, pool: Pool | None, *, candidates: int | None = catalog.FULLTEXT_CANDIDATES):
        """`candidates`: rows ranked per widening step (FULLTEXT_CANDIDATES; None: all, for exact references)."""
        super().__init__(pool)
        self.candidates = candidates

    def _run(self, query: Query) -> list[ProductView]:
        """Full-text search in PostgreSQL."""
        with self.connection() as conn:
            return catalog.fulltext_search(conn, query.text, query.k, query.filters, self.candidates)


class ChromaBackend(RetrievalBackend):
    """Chroma top-k by cosine similarity, with the same filters as PostgreSQL."""

    name = "chroma"
    # chromadb raises many types (sqlite, HTTP, its own); all mean "unavailable" here.
    failures = (Exception,)
    quote_errors = True

    def __init__(self, store: ChromaStore | None):
        """`store` None means Chroma could not be opened at start-up."""
        super().__init__()
        self.store = store

    def _run(self, query: Query) -> list[ProductView]:
        """Vector search in Chroma."""
        if self.store is None:
            raise BackendUnavailable(FallbackReason(self.name, "unavailable", "Chroma not configured"))
        return self.store.search(query.vector, query.k, query.filters, query.threshold)

    def rows(self, ids: list[str]) -> list[ProductView]:
        """Products by id from Chroma's metadata (name, brand, price, image; no detail fields)."""
        if self.store is None:
            raise BackendUnavailable(FallbackReason(self.name, "unavailable", "Chroma not configured"))
        try:
            got = self.store.get(ids, include_embeddings=False)
        except self.failures as exc:
            raise BackendUnavailable(FallbackReason(self.name, "unavailable", type(exc).__name__)) from exc
        return [self.store.view(pid, got[pid]["metadata"]) for pid in ids if pid in got]


def cosine(a: np.ndarray, b: np.ndarray) -> float | None:
    """Cosine similarity of two vectors (in float64); None when it is undefined (a zero vector) or not finite."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    norms = float(np.linalg.norm(a64)) * float(np.linalg.norm(b64))
    if norms == 0.0 or not math.isfinite(norms):
        return None
    sim = float(a64 @ b64) / norms
    return sim if math.isfinite(sim) else None
