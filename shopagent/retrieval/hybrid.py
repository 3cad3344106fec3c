"""The hybrid strategy: dense (pgvector, or Chroma when PostgreSQL is down), full text, the multilingual dense list
(for the languages it helps) and, for names that negate an excluded term, a negation list, fused by reciprocal
rank fusion; then a cross-encoder reranks the top of the fused list (for the languages it helps).

RRF uses the textbook k = 60 and equal weights for MiniLM, full text and negation: tuned settings scored at most
~0.01 nDCG@10 higher on the sample queries, not worth fitting to 100 queries. The multilingual weight and the
reranker's depth were chosen on the dev split only (README "Understanding and ranking").
"""

from __future__ import annotations

import logging
import time

import numpy as np
from langchain_core.embeddings import Embeddings
from langsmith import traceable

from shopagent.domain import FallbackReason, ProductView, SearchRequest, SearchResult, figures, updated
from shopagent.matching import name_negates
from shopagent.observability.tracing import annotate
from shopagent.retrieval.backends import (
    BackendUnavailable,
    ChromaBackend,
    FullTextBackend,
    MultilingualBackend,
    PgVectorBackend,
    Query,
    note_fallback,
)
from shopagent.retrieval.fusion import reciprocal_rank_fusion
from shopagent.retrieval.reranker import CrossEncoderReranker, RerankerUnavailable
from shopagent.settings import Backend, Settings

log = logging.getLogger(__name__)

HYBRID_CANDIDATES = 50
RRF_K = 60
BASE_WEIGHTS = {"vector": 1.0, "fulltext": 1.0, "negation": 1.0}


class HybridSearch:
    """Fuses the retrievers' lists for one request; every product returned carries its MiniLM cosine similarity."""

    def __init__(
        self,
        settings: Settings,
        pgvector: PgVectorBackend,
        chroma: ChromaBackend,
        fulltext: FullTextBackend,
        multilingual: MultilingualBackend,
        multilingual_embeddings: Embeddings | None = None,
        reranker: CrossEncoderReranker | None = None,
    ):
        """The backends are the strategy switch's own; the multilingual model and the reranker are optional."""
        self.settings = settings
        self.pgvector, self.chroma, self.fulltext, self.multilingual = pgvector, chroma, fulltext, multilingual
        self.multilingual_embeddings = multilingual_embeddings
        self.reranker = reranker
        self.weights = {**BASE_WEIGHTS, "multilingual": settings.multilingual_weight}

    def _reranks(self, request: SearchRequest) -> bool:
        """Whether the cross-encoder reorders this request's top candidates."""
        return (
            self.reranker is not None
            and self.settings.rerank_top_n > 0
            and (request.language in self.settings.rerank_languages)
        )

    def run(self, request: SearchRequest, vector: list[float], k: int, threshold: float) -> SearchResult:
        """Search every list, fuse, rerank; the result names any backend that failed."""
        floor = self.settings.relaxed_similarity_floor
        depth = max(k, self.settings.rerank_top_n) if self._reranks(request) else k
        n = max(HYBRID_CANDIDATES, depth)
        timings: dict[str, float] = {}
        reasons: list[FallbackReason] = []
        dense, dense_backend = self._dense(Query(request.text, vector, request.filters, n, floor), reasons, timings)
        lexical = self._timed(
            "fulltext", timings, reasons, self.fulltext, Query(request.text, vector, request.filters, n)
        )
        multilingual: list[ProductView] = []
        if self.multilingual_embeddings is not None and request.language in self.settings.multilingual_languages:
            native = self.multilingual_embeddings.embed_query(request.native or request.text)
            query = Query(request.native or request.text, native, request.filters, n)
            multilingual = self._timed("multilingual", timings, reasons, self.multilingual, query)
        if reasons:
            note_fallback("hybrid", dense_backend, reasons)
        fused = self._fuse(vector, dense, lexical, multilingual, depth, floor, request.filters.exclude_terms)
        if self._reranks(request) and len(fused) > 1:
            started = time.perf_counter()
            try:
                fused = self._rerank(request.text, fused)
            except RerankerUnavailable as exc:
                log.warning("results not reranked: %s", exc)
            timings["rerank"] = round((time.perf_counter() - started) * 1000, 2)
        products = fused[:k]
        backend: Backend = "hybrid" if lexical or multilingual else dense_backend
        weak = bool(products) and all((p["similarity"] or 0.0) < threshold for p in products)
        return SearchResult(products, "hybrid", backend, reasons, weak_matches=weak, timings_ms=timings)

    def _dense(
        self, query: Query, reasons: list[FallbackReason], timings: dict[str, float]
    ) -> tuple[list[ProductView], Backend]:
        """pgvector's list, or Chroma's when PostgreSQL cannot answer."""
        started = time.perf_counter()
        try:
            for backend in (self.pgvector, self.chroma):
                try:
                    return backend.search(query), backend.name
                except BackendUnavailable as exc:
                    reasons.append(exc.reason)
            return [], "none"
        finally:
            timings["dense"] = round((time.perf_counter() - started) * 1000, 2)

    @staticmethod
    def _timed(
        name: str,
        timings: dict[str, float],
        reasons: list[FallbackReason],
        backend: FullTextBackend | MultilingualBackend,
        query: Query,
    ) -> list[ProductView]:
        """One optional list; an unavailable backend contributes nothing and is noted."""
        started = time.perf_counter()
        try:
            return backend.search(query)
        except BackendUnavailable as exc:
            reasons.append(exc.reason)
            return []
        finally:
            timings[name] = round((time.perf_counter() - started) * 1000, 2)

    # The lists are already the outputs of the sibling backend runs; don't send them twice.
    @traceable(run_type="chain", name="fusion", process_inputs=lambda inputs: {"k": inputs.get("k")})
    def _fuse(
        self,
        vector: list[float],
        dense: list[ProductView],
        lexical: list[ProductView],
        multilingual: list[ProductView],
        k: int,
        floor: float,
        negated: tuple[str, ...] = (),
    ) -> list[ProductView]:
        """Weighted RRF of the lists; every fused product gets its MiniLM cosine similarity and those below the
        relaxed floor are dropped (lexical matches that mean something else), unless the multilingual list vouches
        for them. For a negation query ("chair without wheels"), candidates whose name says so ("..., No Wheels")
        form an extra list: they match the constraint explicitly, which neither embeddings nor full text see."""
        by_id = {p["product_id"]: p for p in (*lexical, *multilingual)} | {p["product_id"]: p for p in dense}
        rankings = {
            "vector": [p["product_id"] for p in dense],
            "fulltext": [p["product_id"] for p in lexical],
            "multilingual": [p["product_id"] for p in multilingual],
        }
        if negated:
            candidates = dict.fromkeys(rankings["vector"] + rankings["fulltext"] + rankings["multilingual"])
            rankings["negation"] = [pid for pid in candidates if name_negates(by_id[pid]["name"], negated)]
        fused = reciprocal_rank_fusion({name: ids for name, ids in rankings.items() if ids}, self.weights, RRF_K)
        ml_floor = self.settings.multilingual_floor
        vouched = {p["product_id"] for p in multilingual if (p["similarity"] or 0.0) >= ml_floor}
        minilm = {p["product_id"]: p["similarity"] for p in dense}
        missing = [pid for pid, _ in fused[: k * 2] if minilm.get(pid) is None]
        minilm |= self.pgvector.similarities(vector, missing)
        out: list[ProductView] = []
        for pid, score in fused:
            sim = minilm.get(pid)
            if sim is None or not np.isfinite(sim) or (sim < floor and pid not in vouched):
                continue
            out.append(updated(by_id[pid], score=score, backend="hybrid", similarity=sim))
            if len(out) == k:
                break
        annotate(
            rrf_k=RRF_K, weights=self.weights, **{name: len(ids) for name, ids in rankings.items()}, **figures(out)
        )
        return out

    @traceable(run_type="chain", name="rerank", process_inputs=lambda inputs: {"query": inputs.get("text")})
    def _rerank(self, text: str, candidates: list[ProductView]) -> list[ProductView]:
        """The candidates reordered by the cross-encoder's relevance (its logit becomes each product's score)."""
        assert self.reranker is not None
        ids = [p["product_id"] for p in candidates]
        texts = self.pgvector.rerank_texts(ids)  # name, brand and first bullet; {} when PostgreSQL is down
        pairs = [texts.get(p["product_id"]) or ". ".join(filter(None, (p["name"], p["brand"]))) for p in candidates]
        scores = self.reranker.scores(text, pairs)
        order = np.argsort(-scores, kind="stable")
        annotate(candidates=len(candidates), moved=int(sum(int(i) != pos for pos, i in enumerate(order))))
        return [updated(candidates[i], score=round(float(scores[i]), 4)) for i in order]
