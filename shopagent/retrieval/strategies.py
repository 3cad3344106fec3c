"""The strategy switch: the only place that branches on the strategy name or on USE_PGVECTOR.

- `pgvector_primary` / `chroma_primary`: the primary vector backend; on an error, or fewer than
  MIN_RESULTS_BEFORE_FALLBACK results above its threshold, the other one; when neither has enough above its
  threshold, the best products above the relaxed floor as "weaker matches".
- `hybrid`: dense (pgvector, or Chroma when PostgreSQL is down), full-text and (for Spanish) multilingual
  top-50 lists fused by RRF, the top reranked by a cross-encoder (for English): see `hybrid`.
- USE_PGVECTOR=false: Chroma alone, whatever was asked.

Scores: every product returned carries its cosine `similarity` (computed from stored vectors for products
only full text found), so thresholds mean the same thing on every backend.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings
from langsmith import traceable

from shopagent.db.connection import Pool
from shopagent.domain import (
    FallbackReason,
    ProductView,
    SearchFilters,
    SearchOptions,
    SearchRequest,
    SearchResult,
)
from shopagent.observability.tracing import annotate
from shopagent.retrieval.backends import (
    BackendUnavailable,
    ChromaBackend,
    FullTextBackend,
    MultilingualBackend,
    PgVectorBackend,
    Query,
    RetrievalBackend,
    note_fallback,
)
from shopagent.retrieval.chroma import ChromaStore
from shopagent.retrieval.hybrid import HybridSearch
from shopagent.retrieval.reranker import CrossEncoderReranker
from shopagent.settings import STRATEGIES, Settings

log = logging.getLogger(__name__)

StrategyFn = Callable[[SearchRequest, list[float], int, SearchOptions], SearchResult]


def _search_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    """What a product_search run records as inputs: the query, its filters and the options set."""
    request: SearchRequest = inputs["request"]
    options: SearchOptions | None = inputs.get("options")
    chosen = {k: v for k, v in vars(options).items() if v is not None} if options else {}
    return {"query": request.text, "filters": request.filters.as_dict(), "language": request.language, **chosen}


class ProductSearch:
    """Runs a search request through the configured (or requested) strategy."""

    def __init__(
        self,
        settings: Settings,
        embeddings: Embeddings,
        pool: Pool | None,
        chroma: ChromaStore | None,
        multilingual: Embeddings | None = None,
        reranker: CrossEncoderReranker | None = None,
    ):
        """Hold long-lived clients; nothing here connects per call."""
        self.settings = settings
        self.embeddings = embeddings
        self.pgvector = PgVectorBackend(pool, halfvec=settings.hnsw_halfvec)
        self.fulltext = FullTextBackend(pool, candidates=settings.fulltext_candidates)
        self.chroma = ChromaBackend(chroma)
        ml_backend = MultilingualBackend(pool)
        self.hybrid = HybridSearch(
            settings, self.pgvector, self.chroma, self.fulltext, ml_backend, multilingual, reranker
        )

    @traceable(run_type="chain", name="product_search", process_inputs=_search_inputs)
    def search(self, request: SearchRequest, options: SearchOptions | None = None) -> SearchResult:
        """Embed the request's text and run the strategy. Never raises for a backend that is down: the result
        then names the fallback, or is empty with `errors`."""
        options = options or SearchOptions()
        k = options.k or self.settings.search_k
        run = self._strategy(options.strategy or self.settings.product_search_strategy)
        started = time.perf_counter()
        vector = self.embeddings.embed_query(request.text)
        embed_ms = (time.perf_counter() - started) * 1000
        result = run(request, vector, k, options)
        result.timings_ms["embed"] = round(embed_ms, 2)
        result.timings_ms["total"] = round((time.perf_counter() - started) * 1000, 2)
        annotate(
            strategy=result.strategy,
            backend=result.backend,
            fallback_reason=result.fallback_reason,
            weak_matches=result.weak_matches,
            k=k,
            filters=request.filters.as_dict(),
            search_text=request.text,
            latency_ms=result.timings_ms["total"],
            **result.figures,
        )
        return result

    def _strategy(self, name: str) -> StrategyFn:
        """The one place that maps a strategy name (and USE_PGVECTOR) to its implementation."""
        if not self.settings.use_pgvector:
            return self._chroma_only  # USE_PGVECTOR=false means Chroma only, whatever was asked
        match name:
            case "pgvector_primary":
                return self._pgvector_primary
            case "chroma_primary":
                return self._chroma_primary
            case "hybrid":
                return self._hybrid
            case _:
                raise ValueError(f"unknown strategy {name!r}; valid: {', '.join(STRATEGIES)}")

    def _threshold(self, backend: RetrievalBackend, options: SearchOptions) -> float:
        """The request's threshold for a vector backend, else the calibrated setting."""
        if backend is self.chroma:
            ch = options.chroma_threshold
            return self.settings.chroma_similarity_threshold if ch is None else ch
        pg = options.pgvector_threshold
        return self.settings.pgvector_similarity_threshold if pg is None else pg

    # ------------------------------------------------------------ reads by id

    def lookup(self, ids: list[str]) -> list[ProductView]:
        """Products by id with their details from PostgreSQL; from Chroma's metadata when it is unavailable."""
        for backend in (self.pgvector, self.chroma):
            try:
                return backend.rows(ids)
            except BackendUnavailable as exc:
                log.warning("product lookup: %s", exc.reason)
        return []

    def neighbours(
        self, product_id: str, k: int, filters: SearchFilters
    ) -> tuple[ProductView | None, np.ndarray | None, list[tuple[ProductView, np.ndarray]]] | None:
        """A product, its vector and its nearest products with vectors (for MMR); None when the database is down."""
        try:
            return self.pgvector.neighbours(product_id, k, filters)
        except BackendUnavailable as exc:
            log.warning("similar products: %s", exc.reason)
            return None

    # ------------------------------------------------------------ strategies

    def _primary_with_fallback(
        self,
        strategy: str,
        order: tuple[RetrievalBackend, ...],
        request: SearchRequest,
        vector: list[float],
        k: int,
        options: SearchOptions,
    ) -> SearchResult:
        """Backends in order until one has enough above its threshold; else weaker matches above the floor."""
        reasons: list[FallbackReason] = []
        timings: dict[str, float] = {}
        reachable: list[RetrievalBackend] = []

        def query(threshold: float) -> Query:
            return Query(request.text, vector, request.filters, k, threshold)

        for backend in order:
            threshold = self._threshold(backend, options)
            started = time.perf_counter()
            try:
                products = backend.search(query(threshold))
            except BackendUnavailable as exc:
                reasons.append(exc.reason)
                continue
            finally:
                timings[backend.name] = round((time.perf_counter() - started) * 1000, 2)
            reachable.append(backend)
            if len(products) >= max(self.settings.min_results_before_fallback, 1):
                if reasons:
                    note_fallback(order[0].name, backend.name, reasons)
                return SearchResult(products, strategy, backend.name, reasons, timings_ms=timings)
            reasons.append(
                FallbackReason(backend.name, "too_few", f"{len(products)} results above threshold {threshold:.2f}")
            )
        # Nothing above either threshold: offer weaker matches rather than "nothing found".
        for backend in reachable:
            try:
                products = backend.search(query(self.settings.relaxed_similarity_floor))
            except BackendUnavailable as exc:
                reasons.append(exc.reason)
                continue
            if products:
                note_fallback(order[0].name, backend.name, reasons)
                return SearchResult(products, strategy, backend.name, reasons, weak_matches=True, timings_ms=timings)
        served = reachable[0].name if reachable else "none"
        return SearchResult([], strategy, served, reasons, timings_ms=timings)

    def _pgvector_primary(self, request: SearchRequest, vector: list[float], k: int, o: SearchOptions) -> SearchResult:
        """pgvector, falling back to Chroma."""
        return self._primary_with_fallback("pgvector_primary", (self.pgvector, self.chroma), request, vector, k, o)

    def _chroma_primary(self, request: SearchRequest, vector: list[float], k: int, o: SearchOptions) -> SearchResult:
        """Chroma, falling back to pgvector."""
        return self._primary_with_fallback("chroma_primary", (self.chroma, self.pgvector), request, vector, k, o)

    def _chroma_only(self, request: SearchRequest, vector: list[float], k: int, o: SearchOptions) -> SearchResult:
        """USE_PGVECTOR=false: Chroma alone (relaxed floor when nothing clears the threshold)."""
        return self._primary_with_fallback("chroma_only", (self.chroma,), request, vector, k, o)

    def _hybrid(self, request: SearchRequest, vector: list[float], k: int, o: SearchOptions) -> SearchResult:
        """Dense, full text, multilingual and negation lists fused by RRF, then reranked (see `hybrid`)."""
        return self.hybrid.run(request, vector, k, self._threshold(self.pgvector, o))
