"""Chroma against pgvector on the same stored vectors: cosine space, the same order and similarity
(within 1e-4) for real queries, and the same results for the same filters."""

from __future__ import annotations

from collections.abc import Callable

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings as ChromaSettings

from shopagent.db import catalog
from shopagent.domain import ProductView, SearchFilters
from shopagent.retrieval.chroma import ChromaStore, chroma_where, distance_to_similarity
from shopagent.services import Services

QUERY_IDS = ("q013", "q024", "q008", "q003", "q018")


@pytest.fixture(scope="module")
def qvec(services: Services) -> Callable[[str], list[float]]:
    """Cached query embeddings."""
    cache: dict[str, list[float]] = {}
    return lambda text: cache.setdefault(text, services.embeddings.embed_query(text))


def _pg(services: Services, vec: list[float], k: int, filters: SearchFilters | None = None) -> list[ProductView]:
    """pgvector top-k."""
    with services.pool.connection() as conn:
        return catalog.vector_search(conn, vec, k, filters or SearchFilters())


def assert_same_ranking(pg: list[ProductView], ch: list[ProductView], tol: float = 1e-4) -> None:
    """Same length, same similarity at every rank (within tol), same ids except where two
    products tie (then they may swap)."""
    assert len(pg) == len(ch)
    for p, c in zip(pg, ch, strict=True):
        assert p["similarity"] == pytest.approx(c["similarity"], abs=tol), (p, c)
    swapped = [(p, c) for p, c in zip(pg, ch, strict=True) if p["product_id"] != c["product_id"]]
    assert all(abs(p["similarity"] - c["similarity"]) < 1e-5 for p, c in swapped), swapped
    assert len(swapped) <= 2, swapped


def test_collection_uses_cosine_space(services: Services, tmp_path) -> None:
    """The collection is cosine; a collection created with Chroma's default (L2) is refused."""
    assert services.chroma.collection.metadata["hnsw:space"] == "cosine"
    client = chromadb.PersistentClient(path=str(tmp_path), settings=ChromaSettings(anonymized_telemetry=False))
    client.create_collection("l2_products")
    with pytest.raises(ValueError, match="cosine"):
        ChromaStore(tmp_path, "l2_products")
    assert distance_to_similarity(0.0) == 1.0 and distance_to_similarity(2.0) == -1.0


def test_same_vectors_in_both_stores(services: Services) -> None:
    """Chroma holds exactly PostgreSQL's vectors for every product."""
    with services.pool.connection() as conn:
        ids = catalog.all_product_ids(conn)
        pg = catalog.get_embeddings(conn, ids)
    ch = services.chroma.get(ids)
    assert set(ch) == set(pg) == set(ids)
    assert max(float(np.max(np.abs(pg[i] - ch[i]["embedding"]))) for i in ids) < 1e-6


@pytest.mark.parametrize("qid", QUERY_IDS)
def test_score_parity_on_real_queries(services: Services, queries: dict[str, str], qvec, qid: str) -> None:
    """Top-10 unfiltered: same order and the same cosine similarity, which is also q·v of the
    stored (unit) vectors."""
    vec = qvec(queries[qid])
    pg = _pg(services, vec, 10)
    ch = services.chroma.search(vec, 10)
    assert len(pg) == 10
    assert_same_ranking(pg, ch)
    with services.pool.connection() as conn:
        stored = catalog.get_embeddings(conn, [h["product_id"] for h in pg])
    q = np.asarray(vec, dtype=np.float32)
    for h in pg:
        assert h["similarity"] == pytest.approx(float(stored[h["product_id"]] @ q), abs=1e-4)
    assert [h["backend"] for h in ch] == ["chroma"] * 10


def test_thresholds_mean_the_same(services: Services, queries: dict[str, str], qvec) -> None:
    """A threshold between the 12th and 13th similarity cuts both backends' lists after 12."""
    vec = qvec(queries["q024"])
    full = _pg(services, vec, 30)
    assert full[12]["similarity"] < full[11]["similarity"]
    threshold = (full[11]["similarity"] + full[12]["similarity"]) / 2
    with services.pool.connection() as conn:
        assert len(catalog.vector_search(conn, vec, 30, threshold=threshold)) == 12
    assert len(services.chroma.search(vec, 30, threshold=threshold)) == 12


FILTER_CASES = {
    "price_range": SearchFilters(price_min=10, price_max=20),
    "price_max": SearchFilters(price_max=15),
    "brand": SearchFilters(brands=("ugg",)),
    "brands_two": SearchFilters(brands=("UGG", "Koolaburra by UGG")),
    "category": SearchFilters(categories=("slipper",)),
    "color": SearchFilters(colors=("black",)),
    "in_stock": SearchFilters(in_stock=True),
    "out_of_stock": SearchFilters(in_stock=False),
    "exclude_terms": SearchFilters(exclude_terms=("straw", "lid")),
    "exclude_ids": SearchFilters(exclude_ids=("B07T485PYW", "B0000AYC09")),
    "combined": SearchFilters(brands=("UGG",), colors=("chestnut",), categories=("women",), exclude_terms=("boot",)),
    "nothing_matches": SearchFilters(brands=("no such brand",)),
}


@pytest.mark.parametrize("case", FILTER_CASES)
@pytest.mark.parametrize("qid", ("q013", "q024"))
def test_filters_agree_with_pgvector(services: Services, queries: dict[str, str], qvec, case: str, qid: str) -> None:
    """Chroma's where clause + post-filters give pgvector's results for the same filters. Both are
    approximate (HNSW) searches, and a selective filter far from the query (slippers for a water
    bottle) makes each walk its graph differently, so near the tail an id may differ; what must
    agree is the count, most ids, and the similarity of every shared id."""
    vec = qvec(queries[qid])
    filters = FILTER_CASES[case]
    pg = _pg(services, vec, 10, filters)
    ch = services.chroma.search(vec, 10, filters)
    assert len(pg) == len(ch)
    pg_sims = {h["product_id"]: h["similarity"] for h in pg}
    shared = [h for h in ch if h["product_id"] in pg_sims]
    assert len(shared) >= len(pg) - 2, (pg, ch)
    assert all(h["similarity"] == pytest.approx(pg_sims[h["product_id"]], abs=1e-4) for h in shared)


def test_where_clause() -> None:
    """Native filters become a Chroma where clause; substring ones are left to post-filtering."""
    assert chroma_where(SearchFilters()) is None
    assert chroma_where(SearchFilters(price_max=50)) == {"price": {"$lte": 50.0}}
    assert chroma_where(SearchFilters(price_min=5, brands=("UGG",), in_stock=True, colors=("red",))) == {
        "$and": [{"price": {"$gte": 5.0}}, {"brand_lc": {"$in": ["ugg"]}}, {"in_stock": {"$eq": True}}]
    }
