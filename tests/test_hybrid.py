"""The hybrid strategy's extra stages on the real slice: the multilingual dense list for Spanish queries, and the
cross-encoder reranker (off by default; tested on, with a small N)."""

from __future__ import annotations

from conftest import run_search

from shopagent.domain import SearchOptions
from shopagent.retrieval.reranker import CrossEncoderReranker
from shopagent.retrieval.strategies import ProductSearch
from shopagent.services import Services
from shopagent.understanding import parse_search

HYBRID = SearchOptions(k=5, strategy="hybrid")


def _without_multilingual(services: Services) -> ProductSearch:
    """The same search with the multilingual list switched off."""
    settings = services.settings.model_copy(update={"multilingual_languages": ()})
    return ProductSearch(settings, services.embeddings, services.pool, services.chroma)


def test_spanish_queries_use_the_multilingual_list(services: Services, labels) -> None:
    """Spanish shoppers' words the glossary does not know still meet the English titles: with the multilingual
    list more judged-relevant products reach the top 5 than without it; English queries don't use it."""
    queries = {"q024": "chanclas de peluche ugg para dama", "q013": "termo infantil para agua sin popote"}
    with_ml = without_ml = 0
    for qid, text in queries.items():
        request = parse_search(text)
        assert request.language == "es" and request.native, request
        on = services.search.search(request, HYBRID)
        off = _without_multilingual(services).search(request, HYBRID)
        assert "multilingual" in on.timings_ms and "multilingual" not in off.timings_ms
        with_ml += sum(labels[qid].get(p["product_id"], 0) >= 2 for p in on.products)
        without_ml += sum(labels[qid].get(p["product_id"], 0) >= 2 for p in off.products)
        assert all(p["similarity"] is not None for p in on.products)  # always MiniLM's cosine, whoever found it
    assert with_ml > without_ml, (with_ml, without_ml)
    english = run_search(services, "ugg slippers women", HYBRID)
    assert "multilingual" not in english.timings_ms


def test_reranker_reorders_the_top(services: Services) -> None:
    """With RERANK_TOP_N on, English results come back in the cross-encoder's order (its logit as the score),
    from the same candidates the fusion produced."""
    settings = services.settings.model_copy(update={"rerank_top_n": 6})
    reranked = ProductSearch(
        settings, services.embeddings, services.pool, services.chroma, None, CrossEncoderReranker()
    )
    request = parse_search("toddler water bottle without straw")
    before = services.search.search(request, SearchOptions(k=6, strategy="hybrid"))
    after = reranked.search(request, SearchOptions(k=6, strategy="hybrid"))
    assert "rerank" in after.timings_ms and "rerank" not in before.timings_ms
    assert {p["product_id"] for p in after.products} == {p["product_id"] for p in before.products}
    scores = [p["score"] for p in after.products]
    assert scores == sorted(scores, reverse=True)
    assert all(
        not name.lower().count("straw") or "no straw" in name.lower() for name in (p["name"] for p in after.products)
    )


def test_a_missing_reranker_model_does_not_break_search(services: Services, tmp_path) -> None:
    """A reranker whose model files are missing leaves the fused order and still answers."""
    settings = services.settings.model_copy(update={"rerank_top_n": 5})
    broken = ProductSearch(
        settings, services.embeddings, services.pool, services.chroma, None, CrossEncoderReranker(tmp_path)
    )
    result = broken.search(parse_search("ugg slippers women"), HYBRID)
    assert len(result.products) == 5 and result.backend == "hybrid"
