"""Product search: backends (pgvector, full text, Chroma), the strategy switch, fallbacks, fusion.

Scores: `Hit.similarity` is cosine similarity for every hit the strategies return (computed from
stored vectors for full-text-only hits), so thresholds mean the same thing everywhere.
The strategy is chosen in `ProductSearch._strategy` and nowhere else.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import psycopg
from langchain_core.embeddings import Embeddings
from langsmith import traceable
from psycopg_pool import ConnectionPool, PoolTimeout

from shopagent import repository
from shopagent.chroma_store import ChromaStore
from shopagent.config import STRATEGIES, Settings
from shopagent.fusion import reciprocal_rank_fusion
from shopagent.models import Hit, SearchFilters, SearchResponse
from shopagent.query import ParsedQuery, name_negates, parse_query
from shopagent.tracing import annotate, without_inputs

log = logging.getLogger(__name__)

# Hybrid fusion: dense and full-text top-50 lists fused by RRF with the textbook k=60 and equal
# weights. Tuned settings scored at most ~0.01 nDCG@10 higher on the sample queries (README "Quality"),
# not enough to justify fitting them to 100 queries.
HYBRID_CANDIDATES = 50
HYBRID_WEIGHTS = {"vector": 1.0, "fulltext": 1.0, "negation": 1.0}
RRF_K = 60


class BackendError(RuntimeError):
    """A retrieval backend failed (unreachable, timed out, errored)."""


@dataclass(frozen=True)
class SearchOptions:
    """Per-request choices; None means the settings' default."""

    k: int | None = None
    strategy: str | None = None
    pgvector_threshold: float | None = None
    chroma_threshold: float | None = None


def _figures(hits: list[Hit]) -> dict[str, Any]:
    """Quality figures of a hit list, for traces."""
    sims = [h.similarity for h in hits if h.similarity is not None]
    return {
        "num_results": len(hits),
        "top1_similarity": round(sims[0], 4) if sims else None,
        "mean_similarity": round(float(np.mean(sims)), 4) if sims else None,
    }


class ProductSearch:
    """Runs a query through the configured (or requested) strategy."""

    def __init__(
        self,
        settings: Settings,
        embeddings: Embeddings,
        pool: ConnectionPool | None,
        chroma: ChromaStore | None,
    ):
        """Hold long-lived clients; nothing here connects per call."""
        self.settings = settings
        self.embeddings = embeddings
        self.pool = pool
        self.chroma = chroma

    # ------------------------------------------------------------ backends (each traced)

    @traceable(run_type="retriever", name="pgvector_search", process_inputs=without_inputs("qvec"))
    def pgvector(self, qvec: list[float], k: int, filters: SearchFilters, threshold: float | None) -> list[Hit]:
        """pgvector top-k by cosine (HNSW)."""
        if self.pool is None or not self.settings.use_pgvector:
            raise BackendError("pgvector disabled (USE_PGVECTOR=false)" if self.pool else "no database pool")
        started = time.perf_counter()
        try:
            with self.pool.connection() as conn:
                hits = repository.vector_search(conn, qvec, k, filters, threshold)
        except (psycopg.Error, PoolTimeout) as exc:
            raise BackendError(f"pgvector unavailable: {type(exc).__name__}") from exc
        annotate(backend="pgvector", k=k, threshold=threshold, filters=filters.as_dict(),
                 latency_ms=round((time.perf_counter() - started) * 1000, 2), **_figures(hits))  # fmt: skip
        return hits

    @traceable(run_type="retriever", name="fulltext_search")
    def fulltext(self, text: str, k: int, filters: SearchFilters) -> list[Hit]:
        """PostgreSQL weighted full-text search."""
        if self.pool is None:
            raise BackendError("no database pool")
        started = time.perf_counter()
        try:
            with self.pool.connection() as conn:
                hits = repository.fulltext_search(conn, text, k, filters)
        except (psycopg.Error, PoolTimeout) as exc:
            raise BackendError(f"full-text search unavailable: {type(exc).__name__}") from exc
        annotate(backend="fulltext", k=k, filters=filters.as_dict(), num_results=len(hits),
                 latency_ms=round((time.perf_counter() - started) * 1000, 2))  # fmt: skip
        return hits

    @traceable(run_type="retriever", name="chroma_search", process_inputs=without_inputs("qvec"))
    def chroma_search(self, qvec: list[float], k: int, filters: SearchFilters, threshold: float | None) -> list[Hit]:
        """Chroma top-k by cosine."""
        if self.chroma is None:
            raise BackendError("Chroma not configured")
        started = time.perf_counter()
        try:
            hits = self.chroma.search(qvec, k, filters, threshold)
        except Exception as exc:  # noqa: BLE001 - chromadb raises many types; all mean "unavailable"
            raise BackendError(f"Chroma unavailable: {type(exc).__name__}: {exc}") from exc
        annotate(backend="chroma", k=k, threshold=threshold, filters=filters.as_dict(),
                 latency_ms=round((time.perf_counter() - started) * 1000, 2), **_figures(hits))  # fmt: skip
        return hits

    # ------------------------------------------------------------ entry point

    @traceable(run_type="chain", name="product_search")
    def search(
        self,
        query: str | ParsedQuery,
        filters: SearchFilters | None = None,
        options: SearchOptions = SearchOptions(),
    ) -> SearchResponse:
        """Parse the query (price/negations -> filters), embed it, and run the strategy."""
        parsed = query if isinstance(query, ParsedQuery) else parse_query(query)
        merged = parsed.filters.merged(filters) if filters else parsed.filters
        k = options.k or self.settings.search_k
        strategy = options.strategy or self.settings.product_search_strategy
        run = self._strategy(strategy)
        started = time.perf_counter()
        qvec = self.embeddings.embed_query(parsed.text)
        embed_ms = (time.perf_counter() - started) * 1000
        response = run(parsed.text, qvec, k, merged, options)
        response.timings_ms["embed"] = round(embed_ms, 2)
        response.timings_ms["total"] = round((time.perf_counter() - started) * 1000, 2)
        annotate(strategy=response.strategy, backend=response.backend, fallback_reason=response.fallback_reason,
                 weak_matches=response.weak_matches, k=k, filters=merged.as_dict(), search_text=parsed.text,
                 latency_ms=response.timings_ms["total"], **_figures(response.hits))  # fmt: skip
        return response

    def _strategy(self, name: str) -> Callable[[str, list[float], int, SearchFilters, SearchOptions], SearchResponse]:
        """The one place that maps a strategy name to its implementation."""
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

    # ------------------------------------------------------------ strategies

    def _thresholds(self, options: SearchOptions) -> tuple[float, float]:
        """(pgvector, chroma) thresholds for this request."""
        pg = options.pgvector_threshold
        ch = options.chroma_threshold
        return (
            self.settings.pgvector_similarity_threshold if pg is None else pg,
            self.settings.chroma_similarity_threshold if ch is None else ch,
        )

    def _primary_with_fallback(
        self, strategy: str, order: tuple[str, ...], qvec: list[float], k: int, filters: SearchFilters,
        options: SearchOptions,
    ) -> SearchResponse:  # fmt: skip
        """Primary vector backend; fall back to the other on error or too few results above threshold;
        if both are empty above threshold, return the best weaker matches above the relaxed floor."""
        pg_thr, ch_thr = self._thresholds(options)
        calls = {
            "pgvector": lambda thr: self.pgvector(qvec, k, filters, thr),
            "chroma": lambda thr: self.chroma_search(qvec, k, filters, thr),
        }
        thresholds = {"pgvector": pg_thr, "chroma": ch_thr}
        reasons: list[str] = []
        timings: dict[str, float] = {}
        reachable: list[str] = []
        for backend in order:
            started = time.perf_counter()
            try:
                hits = calls[backend](thresholds[backend])
            except BackendError as exc:
                reasons.append(str(exc))
                continue
            finally:
                timings[backend] = round((time.perf_counter() - started) * 1000, 2)
            reachable.append(backend)
            if len(hits) >= max(self.settings.min_results_before_fallback, 1):
                reason = "; ".join(reasons) or None
                if reason:
                    self._note_fallback(order[0], backend, reason)
                return SearchResponse(hits, strategy, backend, reason, timings_ms=timings)
            reasons.append(f"{backend}: {len(hits)} results above threshold {thresholds[backend]:.2f}")
        # Nothing above either threshold: offer weaker matches rather than "nothing found".
        for backend in reachable:
            hits = calls[backend](self.settings.relaxed_similarity_floor)
            if hits:
                reason = "; ".join(reasons)
                self._note_fallback(order[0], backend, reason)
                return SearchResponse(hits, strategy, backend, reason, weak_matches=True, timings_ms=timings)
        return SearchResponse([], strategy, reachable[0] if reachable else "none", "; ".join(reasons) or None,
                              timings_ms=timings, errors=[r for r in reasons if "unavailable" in r])  # fmt: skip

    @traceable(run_type="chain", name="fallback")
    def _note_fallback(self, primary: str, served_by: str, reason: str) -> dict[str, str]:
        """A trace node that records a fallback and why."""
        annotate(primary=primary, served_by=served_by, fallback_reason=reason)
        log.info("fallback from %s to %s: %s", primary, served_by, reason)
        return {"primary": primary, "served_by": served_by, "reason": reason}

    def _pgvector_primary(
        self, text: str, qvec: list[float], k: int, f: SearchFilters, o: SearchOptions
    ) -> SearchResponse:
        """pgvector, falling back to Chroma."""
        return self._primary_with_fallback("pgvector_primary", ("pgvector", "chroma"), qvec, k, f, o)

    def _chroma_primary(
        self, text: str, qvec: list[float], k: int, f: SearchFilters, o: SearchOptions
    ) -> SearchResponse:
        """Chroma, falling back to pgvector."""
        return self._primary_with_fallback("chroma_primary", ("chroma", "pgvector"), qvec, k, f, o)

    def _chroma_only(self, text: str, qvec: list[float], k: int, f: SearchFilters, o: SearchOptions) -> SearchResponse:
        """USE_PGVECTOR=false: Chroma alone (relaxed floor when nothing clears the threshold)."""
        response = self._primary_with_fallback("chroma_only", ("chroma",), qvec, k, f, o)
        return response

    def _hybrid(self, text: str, qvec: list[float], k: int, f: SearchFilters, o: SearchOptions) -> SearchResponse:
        """Dense (pgvector, or Chroma when pgvector is down) + full text, fused by weighted RRF."""
        pg_thr, _ = self._thresholds(o)
        n = max(HYBRID_CANDIDATES, k)
        floor = self.settings.relaxed_similarity_floor
        timings: dict[str, float] = {}
        reasons: list[str] = []
        dense_backend = "pgvector"
        started = time.perf_counter()
        try:
            dense = self.pgvector(qvec, n, f, floor)
        except BackendError as exc:
            reasons.append(str(exc))
            dense_backend = "chroma"
            try:
                dense = self.chroma_search(qvec, n, f, floor)
            except BackendError as exc2:
                reasons.append(str(exc2))
                dense = []
        timings["dense"] = round((time.perf_counter() - started) * 1000, 2)
        started = time.perf_counter()
        try:
            lexical = self.fulltext(text, n, f)
        except BackendError as exc:
            reasons.append(str(exc))
            lexical = []
        timings["fulltext"] = round((time.perf_counter() - started) * 1000, 2)
        if reasons:
            self._note_fallback("hybrid", dense_backend if dense else "none", "; ".join(reasons))
        hits = self._fuse(qvec, dense, lexical, k, floor, f.exclude_terms)
        backend = "hybrid" if lexical else dense_backend
        weak = bool(hits) and all((h.similarity or 0.0) < pg_thr for h in hits)
        return SearchResponse(hits, "hybrid", backend, "; ".join(reasons) or None, weak_matches=weak,
                              timings_ms=timings, errors=[r for r in reasons if "unavailable" in r])  # fmt: skip

    # dense / lexical are already the outputs of the sibling backend runs; don't send them twice.
    @traceable(run_type="chain", name="fusion", process_inputs=without_inputs("qvec", "dense", "lexical"))
    def _fuse(
        self, qvec: list[float], dense: list[Hit], lexical: list[Hit], k: int, floor: float,
        negated: tuple[str, ...] = (),
    ) -> list[Hit]:  # fmt: skip
        """Weighted RRF of the lists; every fused hit gets its cosine similarity; drop those below the
        relaxed floor (lexical matches that mean something else). For a negation query ("chair without
        wheels"), candidates whose name says so ("..., No Wheels") form a third list: they match the
        constraint explicitly, which neither the embedding nor full text can see."""
        by_id = {h.product_id: h for h in lexical} | {h.product_id: h for h in dense}
        rankings = {"vector": [h.product_id for h in dense], "fulltext": [h.product_id for h in lexical]}
        if negated:
            rankings["negation"] = [pid for pid in dict.fromkeys(rankings["vector"] + rankings["fulltext"])
                                    if name_negates(by_id[pid].name, negated)]  # fmt: skip
        fused = reciprocal_rank_fusion(rankings, HYBRID_WEIGHTS, RRF_K)
        missing = [pid for pid, _ in fused[: k * 2] if by_id[pid].similarity is None]
        sims = self._similarities(qvec, missing)
        out: list[Hit] = []
        for pid, score in fused:
            hit = by_id[pid]
            sim = hit.similarity if hit.similarity is not None else sims.get(pid)
            if sim is None or sim < floor:
                continue
            out.append(replace(hit, score=score, backend="hybrid", rank=len(out) + 1, similarity=sim))
            if len(out) == k:
                break
        annotate(rrf_k=RRF_K, weights=HYBRID_WEIGHTS, dense=len(dense), fulltext=len(lexical),
                 negation=len(rankings.get("negation", [])), **_figures(out))  # fmt: skip
        return out

    def _similarities(self, qvec: list[float], ids: list[str]) -> dict[str, float]:
        """Cosine similarity of stored vectors to the query (vectors are unit length)."""
        if not ids or self.pool is None:
            return {}
        try:
            with self.pool.connection() as conn:
                vecs = repository.get_embeddings(conn, ids)
        except (psycopg.Error, PoolTimeout):
            return {}
        q = np.asarray(qvec, dtype=np.float32)
        return {pid: float(v @ q) for pid, v in vecs.items()}
