"""Vectors that are not vectors, and lists that must be sorted: whatever is stored (all zeros, values so small or so
large that the cosine is NaN in pgvector), search never shows a product without a finite similarity, on every
backend and strategy and through the API; and every backend list comes back best first, also when an HNSW
iterative scan in relaxed order serves a colour-filtered query."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from conftest import run_search
from fastapi.testclient import TestClient

from agent.api import create_app
from shopagent.db import catalog
from shopagent.domain import ProductView, SearchFilters, SearchOptions, SearchRequest, ranked
from shopagent.retrieval.backends import Query, cosine
from shopagent.services import Services
from shopagent.settings import STRATEGIES
from shopagent.understanding import parse_search

DIM = 384


def view(pid: str, similarity: float | None, score: float = 0.0) -> ProductView:
    """A minimal product."""
    return ProductView(
        product_id=pid,
        name=pid,
        brand=None,
        price=None,
        image_url=None,
        score=score,
        similarity=similarity,
        backend="pgvector",
    )


def test_ranked_drops_non_finite_and_sorts() -> None:
    """Hand-worked: NaN, infinities and None go; the rest best first, ties by id."""
    products = [view("c", 0.5), view("a", math.nan), view("b", 0.9), view("e", None), view("d", 0.5)]
    products += [view("f", math.inf), view("g", -math.inf), view("h", 0.7)]
    assert [p["product_id"] for p in ranked(products, "similarity")] == ["b", "h", "c", "d"]
    by_score = [view("x", None, 2.0), view("y", None, math.nan), view("z", None, 3.0)]
    assert [p["product_id"] for p in ranked(by_score, "score")] == ["z", "x"]


def test_cosine_is_none_when_undefined() -> None:
    """A zero or infinite vector has no cosine; ordinary, tiny and huge ones do."""
    q = np.ones(DIM, dtype=np.float32) / math.sqrt(DIM)
    assert cosine(np.zeros(DIM, dtype=np.float32), q) is None
    assert cosine(np.full(DIM, np.inf, dtype=np.float32), q) is None
    assert cosine(q, q) == pytest.approx(1.0)
    # In float64 the norms of tiny and huge float32 vectors stay finite and non-zero: the cosine is defined.
    assert cosine(np.full(DIM, 1e-30, dtype=np.float32), q) == pytest.approx(1.0)
    assert cosine(np.full(DIM, 1e30, dtype=np.float32), q) == pytest.approx(1.0)


# ---------------------------------------------------------------- broken vectors in both stores

# Stored vectors whose cosine distance pgvector computes as NaN (float32 norms under- or overflow, or are zero).
BROKEN = {"zero": 0.0, "tiny": 1e-30, "huge": 1e30}


@pytest.fixture
def broken_vectors(services: Services, catalog_slice: list[dict[str, Any]]) -> Iterator[dict[str, str]]:
    """Three products' vectors replaced (a Freshware deli container, an UGG slipper, a TRESemmé shampoo) in
    PostgreSQL and Chroma; restored afterwards. Yields kind -> product id."""
    by_brand = {"zero": "Freshware", "tiny": "UGG", "huge": "TRESemmé"}
    ids = {kind: next(p["product_id"] for p in catalog_slice if p.get("brand") == b) for kind, b in by_brand.items()}
    assert services.pool is not None and services.chroma is not None
    with services.pool.connection() as conn:
        saved_pg = catalog.get_embeddings(conn, list(ids.values()))
    saved_chroma = services.chroma.get(list(ids.values()))
    try:
        with services.pool.connection() as conn:
            for kind, pid in ids.items():
                vector = np.full(DIM, BROKEN[kind], dtype=np.float32)
                conn.execute("UPDATE products SET embedding = %s WHERE id = %s", (vector, pid))
        # Chroma refuses NaN and infinities but stores zeros (similarity 0 there).
        services.chroma.collection.update(ids=[ids["zero"]], embeddings=np.zeros((1, DIM), dtype=np.float32))
        yield ids
    finally:
        with services.pool.connection() as conn:
            for pid, vector in saved_pg.items():
                conn.execute("UPDATE products SET embedding = %s WHERE id = %s", (vector, pid))
        services.chroma.collection.update(
            ids=list(saved_chroma), embeddings=np.stack([v["embedding"] for v in saved_chroma.values()])
        )


def assert_finite(products: list[ProductView], context: object) -> None:
    """Every product has a finite similarity."""
    assert products, context
    for p in products:
        assert p["similarity"] is not None and math.isfinite(p["similarity"]), (context, p)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_broken_vectors_never_give_a_non_finite_similarity(
    services: Services, broken_vectors: dict[str, str], strategy: str
) -> None:
    """The issue's brand-filtered query (an exact scan reaches the zero vector) and unfiltered ones, on every
    strategy, with the threshold at the relaxed floor so that nothing is cut by it."""
    floor = services.settings.relaxed_similarity_floor
    options = SearchOptions(k=20, strategy=strategy, pgvector_threshold=floor, chroma_threshold=floor)
    for query in ("deli containers with lids by Freshware", "ugg slippers for women", "tresemme shampoo"):
        result = run_search(services, query, options)
        assert_finite(result.products, (strategy, query))
    # Each vector backend on its own, with no threshold at all (where NaN passed `>= threshold` in SQL).
    vector = services.embeddings.embed_query("deli containers with lids")
    for brand in ("Freshware", "UGG", "TRESemmé"):
        q = Query("deli containers with lids", vector, SearchFilters(brands=(brand,)), 20, None)
        for backend in (services.search.pgvector, services.search.chroma):
            assert_finite(backend.search(q), (backend.name, brand))
    zero = broken_vectors["zero"]
    pg = services.search.pgvector.search(Query("x", vector, SearchFilters(brands=("Freshware",)), 20, None))
    assert zero not in {p["product_id"] for p in pg}  # no cosine distance: not rankable by vector


def test_broken_vectors_through_the_api_and_similar_products(
    services: Services, broken_vectors: dict[str, str]
) -> None:
    """Through the chat API: no shown product has `similarity: null`; "more like" a product whose own vector is
    zero finds nothing rather than NaN neighbours."""
    with TestClient(create_app(services=services)) as client:
        r = client.post(
            "/api/v1/chat/message", json={"user_id": "nan", "message": "deli containers with lids by Freshware"}
        )
        assert r.status_code == 200 and r.json()["products"], r.text
        assert all(p["similarity"] is not None for p in r.json()["products"])
    with services.pool.connection() as conn:
        stored = catalog.get_embeddings(conn, [broken_vectors["zero"], broken_vectors["tiny"]])
        assert catalog.neighbours_with_vectors(conn, broken_vectors["zero"], stored[broken_vectors["zero"]], 10) == []
        near = catalog.neighbours_with_vectors(conn, broken_vectors["tiny"], stored[broken_vectors["tiny"]], 10)
    assert all(math.isfinite(p["similarity"]) for p, _ in near)


# ---------------------------------------------------------------- ordering under relaxed-order scans

COLOURS = ("black", "white", "brown", "clear", "chestnut", "tan", "purple", "green", "blue", "red")
TEXTS = ("slippers", "shampoo", "belt", "food containers", "light bulb", "t-shirt")


@pytest.fixture
def index_forced(services: Services) -> Iterator[None]:
    """Every catalog connection prefers the HNSW index (with iterative scans in relaxed order, as configured) over
    an exact scan, as the planner does on a large catalog, and scans in the smallest batches (ef_search 10)."""
    assert services.pool is not None
    conns = [services.pool.getconn() for _ in range(services.pool.max_size)]
    try:
        for conn in conns:
            conn.execute("SET enable_seqscan = off")
            conn.execute("SET enable_bitmapscan = off")
            conn.execute("SET hnsw.ef_search = 10")  # small batches: more iterations, more rows out of order
    finally:
        for conn in conns:
            services.pool.putconn(conn)
    yield
    conns = [services.pool.getconn() for _ in range(services.pool.max_size)]
    for conn in conns:
        conn.execute("RESET enable_seqscan")
        conn.execute("RESET enable_bitmapscan")
        conn.execute(f"SET hnsw.ef_search = {services.settings.hnsw_ef_search}")
        services.pool.putconn(conn)


def test_backend_lists_are_sorted_under_colour_filters(services: Services, index_forced: None) -> None:
    """Lists of 50 with a colour filter, served by the HNSW index: every backend list is in non-increasing
    similarity (full text: score), and so is every strategy's list of a vector backend."""
    with services.pool.connection() as conn:
        plan = " ".join(
            r["QUERY PLAN"]
            for r in conn.execute(
                "EXPLAIN SELECT id FROM products ORDER BY embedding <=> %s LIMIT 5",
                (np.ones(DIM, dtype=np.float32),),
            ).fetchall()
        )
    assert "products_embedding_hnsw" in plan
    for text in TEXTS:
        vector = services.embeddings.embed_query(text)
        for colour in COLOURS:
            q = Query(text, vector, SearchFilters(colors=(colour,)), 50, -1.0)
            for backend in (services.search.pgvector, services.search.chroma, services.search.fulltext):
                got = backend.search(q)
                key = backend.rank_key
                values = [p[key] for p in got]
                assert values == sorted(values, reverse=True), (backend.name, text, colour)
    for strategy in ("pgvector_primary", "chroma_primary"):
        for colour in COLOURS[:4]:
            request = SearchRequest(parse_search("slippers").text, SearchFilters(colors=(colour,)))
            result = services.search.search(request, SearchOptions(k=50, strategy=strategy, pgvector_threshold=-1))
            sims = [p["similarity"] for p in result.products]
            assert sims == sorted(sims, reverse=True), (strategy, colour)
