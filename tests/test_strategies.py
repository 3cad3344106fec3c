"""The retrieval strategies on real stores: labels and ordering, threshold fallbacks, weaker
matches, PostgreSQL going down mid-test (on a separate throwaway server), USE_PGVECTOR=false."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_search, stop_server

from shopagent.db import catalog
from shopagent.domain import SearchFilters, SearchOptions, SearchRequest
from shopagent.matching import name_is_excluded
from shopagent.retrieval.fusion import reciprocal_rank_fusion
from shopagent.retrieval.hybrid import BASE_WEIGHTS as HYBRID_WEIGHTS
from shopagent.retrieval.hybrid import HYBRID_CANDIDATES, RRF_K
from shopagent.retrieval.strategies import ProductSearch
from shopagent.services import Services, build_services
from shopagent.settings import STRATEGIES, Settings
from shopagent.understanding import parse_search

QUERY = "ugg slippers women"


def test_pgvector_primary(services: Services) -> None:
    """Served by pgvector, no fallback, ranks 1..k by descending cosine similarity."""
    r = run_search(services, QUERY, SearchOptions(k=8, strategy="pgvector_primary"))
    assert (r.strategy, r.backend, r.fallback_reason, r.weak_matches) == ("pgvector_primary", "pgvector", None, False)
    assert [h["backend"] for h in r.products] == ["pgvector"] * 8
    sims = [h["similarity"] for h in r.products]
    assert sims == sorted(sims, reverse=True) and all(
        s >= services.settings.pgvector_similarity_threshold for s in sims
    )
    assert {"embed", "total", "pgvector"} <= set(r.timings_ms)


def test_chroma_primary(services: Services) -> None:
    """Served by Chroma with the same products pgvector finds (same vectors, same scale)."""
    r = run_search(services, QUERY, SearchOptions(k=8, strategy="chroma_primary"))
    pg = run_search(services, QUERY, SearchOptions(k=8, strategy="pgvector_primary"))
    assert (r.strategy, r.backend, r.fallback_reason) == ("chroma_primary", "chroma", None)
    assert [h["backend"] for h in r.products] == ["chroma"] * 8
    assert {h["product_id"] for h in r.products} == {h["product_id"] for h in pg.products}


def test_hybrid_is_weighted_rrf_of_dense_and_fulltext(services: Services) -> None:
    """Hybrid hits are labelled 'hybrid', ranked 1..k, carry a cosine similarity each, and their
    scores are exactly the weighted RRF of their ranks in the dense and full-text lists."""
    k = 10
    r = run_search(services, QUERY, SearchOptions(k=k, strategy="hybrid"))
    assert (r.strategy, r.backend, r.fallback_reason) == ("hybrid", "hybrid", None)
    assert [h["backend"] for h in r.products] == ["hybrid"] * k
    assert all(
        h["similarity"] is not None and h["similarity"] >= services.settings.relaxed_similarity_floor
        for h in r.products
    )
    scores = [h["score"] for h in r.products]
    assert scores == sorted(scores, reverse=True)

    text = parse_search(QUERY).text
    qvec = services.embeddings.embed_query(text)
    with services.pool.connection() as conn:
        dense = catalog.vector_search(
            conn, qvec, HYBRID_CANDIDATES, threshold=services.settings.relaxed_similarity_floor
        )
        lexical = catalog.fulltext_search(conn, text, HYBRID_CANDIDATES)
    assert dense and lexical
    expected = dict(
        reciprocal_rank_fusion(
            {"vector": [h["product_id"] for h in dense], "fulltext": [h["product_id"] for h in lexical]},
            HYBRID_WEIGHTS,
            RRF_K,
        )
    )
    for h in r.products:
        assert h["score"] == pytest.approx(expected[h["product_id"]])
    dense_rank = {h["product_id"]: rank for rank, h in enumerate(dense, 1)}
    lex_rank = {h["product_id"]: rank for rank, h in enumerate(lexical, 1)}
    top = r.products[0]["product_id"]
    assert r.products[0]["score"] == pytest.approx(
        HYBRID_WEIGHTS["vector"] / (RRF_K + dense_rank[top])
        + (HYBRID_WEIGHTS["fulltext"] / (RRF_K + lex_rank[top]) if top in lex_rank else 0)
    )


def test_filters_passed_to_search_apply_in_every_strategy(services: Services) -> None:
    """Explicit filters merge with parsed ones and hold whatever the strategy."""
    for strategy in STRATEGIES:
        parsed = parse_search("slippers without fur")
        request = SearchRequest(parsed.text, parsed.filters.merged(SearchFilters(brands=("UGG",))))
        r = services.search.search(request, SearchOptions(k=6, strategy=strategy))
        assert r.products, strategy
        assert all(h["brand"] == "UGG" and not name_is_excluded(h["name"], ("fur",)) for h in r.products), (
            strategy,
            r.products,
        )


def test_threshold_fallback_to_chroma(services: Services) -> None:
    """Nothing above 0.99 in pgvector: Chroma (normal threshold) serves, and the reason says why."""
    r = run_search(services, QUERY, SearchOptions(k=5, strategy="pgvector_primary", pgvector_threshold=0.99))
    assert r.backend == "chroma" and len(r.products) == 5 and not r.weak_matches
    assert "pgvector" in r.fallback_reason and "threshold 0.99" in r.fallback_reason
    r = run_search(services, QUERY, SearchOptions(k=5, strategy="chroma_primary", chroma_threshold=0.99))
    assert r.backend == "pgvector" and "chroma" in r.fallback_reason and "threshold 0.99" in r.fallback_reason


def test_both_below_threshold_gives_weak_matches(services: Services) -> None:
    """Nothing above either threshold: the best matches above the relaxed floor, flagged weak."""
    options = SearchOptions(k=5, strategy="pgvector_primary", pgvector_threshold=0.99, chroma_threshold=0.99)
    r = run_search(services, QUERY, options)
    floor = services.settings.relaxed_similarity_floor
    assert r.weak_matches and len(r.products) == 5 and r.backend == "pgvector"
    assert all(floor <= h["similarity"] < 0.99 for h in r.products)
    assert "pgvector: 0 results above threshold 0.99" in r.fallback_reason
    assert "chroma: 0 results above threshold 0.99" in r.fallback_reason


def test_nothing_above_the_floor_is_an_empty_answer(services: Services) -> None:
    """A query that matches nothing (filters exclude everything) returns no hits, not an error."""
    request = SearchRequest(parse_search(QUERY).text, SearchFilters(brands=("no such brand",)))
    r = services.search.search(request, SearchOptions(k=5, strategy="pgvector_primary"))
    assert r.products == [] and not r.weak_matches and r.errors == []


def test_use_pgvector_false_means_chroma_only(services: Services, loaded_settings: Settings) -> None:
    """USE_PGVECTOR=false: Chroma serves whatever strategy is asked, even with a working pool."""
    settings = loaded_settings.model_copy(update={"use_pgvector": False})
    search = ProductSearch(settings, services.embeddings, services.pool, services.chroma)
    for strategy in (*STRATEGIES, None):
        r = search.search(parse_search(QUERY), SearchOptions(k=5, strategy=strategy))
        assert r.backend == "chroma" and r.strategy == "chroma_only" and r.fallback_reason is None, strategy
        assert [h["backend"] for h in r.products] == ["chroma"] * 5


def test_unknown_strategy(services: Services) -> None:
    """An unknown strategy is a ValueError naming the valid ones."""
    with pytest.raises(ValueError, match="bm25") as err:
        run_search(services, QUERY, SearchOptions(strategy="bm25"))
    assert all(name in str(err.value) for name in STRATEGIES)


# ---------------------------------------------------------------- PostgreSQL going down


@pytest.mark.slow
def test_postgres_stopped_mid_test_falls_back_to_chroma(doomed: tuple[Services, Path], embeddings) -> None:
    """All strategies work; then the server dies: pgvector_primary and hybrid are served by Chroma
    with the reason recorded, chroma_primary is unaffected, and a fresh start-up records the outage."""
    services, data_dir = doomed
    query = "women slippers"
    for strategy in STRATEGIES:
        r = run_search(services, query, SearchOptions(k=5, strategy=strategy))
        assert r.products and r.fallback_reason is None, (strategy, r.fallback_reason)

    stop_server(data_dir)

    r = run_search(services, query, SearchOptions(k=5, strategy="pgvector_primary"))
    assert r.backend == "chroma" and len(r.products) == 5 and "pgvector unavailable" in r.fallback_reason

    r = run_search(services, query, SearchOptions(k=5, strategy="hybrid"))
    assert r.backend == "chroma" and len(r.products) == 5 and all(h["similarity"] is not None for h in r.products)
    assert "pgvector unavailable" in r.fallback_reason and "fulltext unavailable" in r.fallback_reason
    assert len(r.errors) == 2

    r = run_search(services, query, SearchOptions(k=5, strategy="chroma_primary"))
    assert r.backend == "chroma" and r.fallback_reason is None and len(r.products) == 5

    restarted = build_services(services.settings, embeddings)
    try:
        assert restarted.pool is None and any("cannot connect" in e for e in restarted.startup_errors)
        r = run_search(restarted, query, SearchOptions(k=5, strategy="pgvector_primary"))
        assert r.backend == "chroma" and len(r.products) == 5 and "no database pool" in r.fallback_reason
    finally:
        restarted.close()
