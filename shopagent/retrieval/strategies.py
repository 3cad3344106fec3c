"""The strategy switch: the only place that branches on the strategy name or on USE_PGVECTOR.

- `pgvector_primary` / `chroma_primary`: the primary vector backend; on an error, or fewer than
  MIN_RESULTS_BEFORE_FALLBACK results above its threshold, the other one; when neither has enough above its
  threshold, the best products above the relaxed floor as "weaker matches".
- `hybrid`: dense (pgvector, or Chroma when PostgreSQL is down) and full-text top-50 lists fused by RRF.
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
    figures,
)
from shopagent.matching import name_negates
from shopagent.observability.tracing import annotate
from shopagent.retrieval.backends import (
    BackendUnavailable,
    ChromaBackend,
    FullTextBackend,
    PgVectorBackend,
    Query,
    RetrievalBackend,
)
from shopagent.retrieval.chroma import ChromaStore
from shopagent.retrieval.fusion import reciprocal_rank_fusion
from shopagent.settings import STRATEGIES, Backend, Settings

log = logging.getLogger(__name__)

# Hybrid fusion: dense and full-text top-50 lists fused by RRF with the textbook k=60 and equal
# weights. Tuned settings scored at most ~0.01 nDCG@10 higher on the sample queries (README "Figures"),
# not enough to justify fitting them to 100 queries.
HYBRID_CANDIDATES = 50
HYBRID_WEIGHTS = {"vector": 1.0, "fulltext": 1.0, "negation": 1.0}
RRF_K = 60

StrategyFn = Callable[[SearchRequest, list[float], int, SearchOptions], SearchResult]


def _search_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    """What a product_search run records as inputs: the query, its filters and the options set."""
    request: SearchRequest = inputs["request"]
    options: SearchOptions | None = inputs.get("options")
    chosen = {k: v for k, v in vars(options).items() if v is not None} if options else {}
    return {"query": request.text, "filters": request.filters.as_dict(), "language": request.language, **chosen}


class ProductSearch:
    """Runs a search request through the configured (or requested) strategy."""

    def __init__(self, settings: Settings, embeddings: Embeddings, pool: Pool | None, chroma: ChromaStore | None):
        """Hold long-lived clients; nothing here connects per call."""
        self.settings = settings
        self.embeddings = embeddings
        self.pgvector = PgVectorBackend(pool, halfvec=settings.hnsw_halfvec)
        self.fulltext = FullTextBackend(pool, candidates=settings.fulltext_candidates)
        self.chroma = ChromaBackend(chroma)

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
                    self._note_fallback(order[0].name, backend.name, reasons)
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
                self._note_fallback(order[0].name, backend.name, reasons)
                return SearchResult(products, strategy, backend.name, reasons, weak_matches=True, timings_ms=timings)
        served = reachable[0].name if reachable else "none"
        return SearchResult([], strategy, served, reasons, timings_ms=timings)

    @traceable(run_type="chain", name="fallback")
    def _note_fallback(self, primary: str, served_by: str, reasons: list[FallbackReason]) -> dict[str, str]:
        """A trace node that records a fallback and why."""
        reason = "; ".join(str(r) for r in reasons)
        annotate(primary=primary, served_by=served_by, fallback_reason=reason)
        log.info("fallback from %s to %s: %s", primary, served_by, reason)
        return {"primary": primary, "served_by": served_by, "reason": reason}

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
        """Dense (pgvector, or Chroma when pgvector is down) + full text, fused by weighted RRF."""
        n = max(HYBRID_CANDIDATES, k)
        floor = self.settings.relaxed_similarity_floor
        dense_query = Query(request.text, vector, request.filters, n, floor)
        timings: dict[str, float] = {}
        reasons: list[FallbackReason] = []
        dense: list[ProductView] = []
        dense_backend: Backend = self.pgvector.name
        started = time.perf_counter()
        for candidate in (self.pgvector, self.chroma):
            try:
                dense = candidate.search(dense_query)
                dense_backend = candidate.name
                break
            except BackendUnavailable as exc:
                reasons.append(exc.reason)
        timings["dense"] = round((time.perf_counter() - started) * 1000, 2)
        started = time.perf_counter()
        try:
            lexical = self.fulltext.search(Query(request.text, vector, request.filters, n))
        except BackendUnavailable as exc:
            reasons.append(exc.reason)
            lexical = []
        timings["fulltext"] = round((time.perf_counter() - started) * 1000, 2)
        if reasons:
            self._note_fallback("hybrid", dense_backend if dense else "none", reasons)
        products = self._fuse(vector, dense, lexical, k, floor, request.filters.exclude_terms)
        backend: Backend = "hybrid" if lexical else (dense_backend if dense else "none")
        threshold = self._threshold(self.pgvector, o)
        weak = bool(products) and all((p["similarity"] or 0.0) < threshold for p in products)
        return SearchResult(products, "hybrid", backend, reasons, weak_matches=weak, timings_ms=timings)

    # dense / lexical are already the outputs of the sibling backend runs; don't send them twice.
    @traceable(run_type="chain", name="fusion", process_inputs=lambda inputs: {"k": inputs.get("k")})
    def _fuse(
        self,
        vector: list[float],
        dense: list[ProductView],
        lexical: list[ProductView],
        k: int,
        floor: float,
        negated: tuple[str, ...] = (),
    ) -> list[ProductView]:
        """Weighted RRF of the lists; every fused product gets its cosine similarity; drop those below the
        relaxed floor (lexical matches that mean something else). For a negation query ("chair without
        wheels"), candidates whose name says so ("..., No Wheels") form a third list: they match the
        constraint explicitly, which neither the embedding nor full text can see."""
        by_id = {p["product_id"]: p for p in lexical} | {p["product_id"]: p for p in dense}
        rankings = {"vector": [p["product_id"] for p in dense], "fulltext": [p["product_id"] for p in lexical]}
        if negated:
            rankings["negation"] = [
                pid
                for pid in dict.fromkeys(rankings["vector"] + rankings["fulltext"])
                if name_negates(by_id[pid]["name"], negated)
            ]
        fused = reciprocal_rank_fusion(rankings, HYBRID_WEIGHTS, RRF_K)
        missing = [pid for pid, _ in fused[: k * 2] if by_id[pid]["similarity"] is None]
        sims = self.pgvector.similarities(vector, missing)
        out: list[ProductView] = []
        for pid, score in fused:
            product = by_id[pid]
            sim = product["similarity"] if product["similarity"] is not None else sims.get(pid)
            if sim is None or sim < floor:
                continue
            out.append({**product, "score": score, "backend": "hybrid", "similarity": sim})
            if len(out) == k:
                break
        annotate(
            rrf_k=RRF_K,
            weights=HYBRID_WEIGHTS,
            dense=len(dense),
            fulltext=len(lexical),
            negation=len(rankings.get("negation", [])),
            **figures(out),
        )
        return out
