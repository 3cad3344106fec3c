"""Every filter narrows pgvector and Chroma results correctly on the real slice (read-only), negated
terms stay out, and filtered HNSW scans still fill k (iterative scan)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from shopagent.db import catalog
from shopagent.domain import ProductView, SearchFilters
from shopagent.matching import name_is_excluded
from shopagent.services import Services

Search = Callable[[str, int, SearchFilters], list[ProductView]]


@pytest.fixture(scope="module")
def qvec(services: Services) -> Callable[[str], list[float]]:
    """Cached query embeddings."""
    cache: dict[str, list[float]] = {}
    return lambda text: cache.setdefault(text, services.embeddings.embed_query(text))


@pytest.fixture(params=["pgvector", "chroma"])
def search(request: pytest.FixtureRequest, services: Services, qvec) -> Search:
    """Raw backend search by text (no thresholds), one per backend."""
    if request.param == "pgvector":

        def run(text: str, k: int, filters: SearchFilters) -> list[ProductView]:
            """pgvector top-k."""
            with services.pool.connection() as conn:
                return catalog.vector_search(conn, qvec(text), k, filters)

        return run
    return lambda text, k, filters: services.chroma.search(qvec(text), k, filters)


@pytest.fixture(scope="module")
def rows(services: Services) -> dict[str, dict[str, Any]]:
    """Every stored product (for checking hits against their real fields)."""
    with services.pool.connection() as conn:
        return {r["id"]: r for r in catalog.get_products(conn, catalog.all_product_ids(conn))}


def _count(rows: dict[str, dict[str, Any]], pred: Callable[[dict[str, Any]], bool]) -> int:
    """Products matching a predicate."""
    return sum(pred(r) for r in rows.values())


def test_price_range(search: Search, rows) -> None:
    """price_min/price_max hold, and products without a price are excluded."""
    f = SearchFilters(price_min=10, price_max=20)
    matching = _count(rows, lambda r: r["price"] is not None and 10 <= r["price"] <= 20)
    hits = search("shampoo for damaged hair", 10, f)
    assert len(hits) == min(10, matching) and matching >= 10
    assert all(rows[h["product_id"]]["price"] is not None and 10 <= rows[h["product_id"]]["price"] <= 20 for h in hits)
    only_max = search("shoes", 10, SearchFilters(price_max=15))
    assert only_max and all(
        rows[h["product_id"]]["price"] is not None and rows[h["product_id"]]["price"] <= 15 for h in only_max
    )
    unfiltered = search("shoes", 10, SearchFilters())
    assert any(rows[h["product_id"]]["price"] is None for h in unfiltered)  # so the filter did something


def test_brand(search: Search, rows) -> None:
    """Brand matches exactly, case-insensitively (not 'Koolaburra by UGG' for 'ugg')."""
    hits = search("women slippers", 10, SearchFilters(brands=("ugg",)))
    assert len(hits) == 10 and all(rows[h["product_id"]]["brand"] == "UGG" for h in hits)
    unfiltered = search("women slippers", 40, SearchFilters())
    assert any(rows[h["product_id"]]["brand"] != "UGG" for h in unfiltered)
    two = search("women slippers", 40, SearchFilters(brands=("UGG", "Koolaburra by UGG")))
    assert {rows[h["product_id"]]["brand"] for h in two} == {"UGG", "Koolaburra by UGG"}


def test_category_substring(search: Search, rows) -> None:
    """Category matches as a case-insensitive substring of the category path."""
    hits = search("comfortable shoes", 10, SearchFilters(categories=("slipper",)))
    assert len(hits) == 10
    assert all(any("slipper" in c.lower() for c in rows[h["product_id"]]["category"]) for h in hits)


def test_color(search: Search, rows) -> None:
    """Colour matches as a case-insensitive substring (so 'black' matches 'Black/White')."""
    hits = search("slippers", 10, SearchFilters(colors=("BLACK",)))
    assert len(hits) == 10 and all("black" in (rows[h["product_id"]]["color"] or "").lower() for h in hits)


def test_in_stock(search: Search, rows) -> None:
    """in_stock=True keeps in-stock products; in_stock=False finds none in this all-in-stock slice."""
    assert _count(rows, lambda r: not r["in_stock"]) == 0
    assert len(search("belt", 10, SearchFilters(in_stock=True))) == 10
    assert search("belt", 10, SearchFilters(in_stock=False)) == []


def test_exclude_ids(search: Search) -> None:
    """Excluded ids never come back, and the list is still filled to k."""
    top = search("water bottle", 10, SearchFilters())
    banned = tuple(h["product_id"] for h in top[:4])
    hits = search("water bottle", 10, SearchFilters(exclude_ids=banned))
    assert len(hits) == 10 and not set(banned) & {h["product_id"] for h in hits}
    assert [h["product_id"] for h in hits[:6]] == [h["product_id"] for h in top[4:]]


@pytest.mark.parametrize(
    ("text", "term"), [("leather belts", "buckles"), ("toddler water bottle", "straw"), ("shampoo", "conditioner")]
)
def test_excluded_terms(search: Search, text: str, term: str) -> None:
    """No name mentions an excluded term unless it negates it ('without buckle'), while the
    unfiltered search does return such names."""
    unfiltered = search(text, 20, SearchFilters())
    assert any(name_is_excluded(h["name"], (term,)) for h in unfiltered), "nothing to exclude: test proves nothing"
    hits = search(text, 20, SearchFilters(exclude_terms=(term,)))
    assert len(hits) == 20 and not [h["name"] for h in hits if name_is_excluded(h["name"], (term,))]


def test_combined_filters(search: Search, rows) -> None:
    """Filters AND together."""
    f = SearchFilters(brands=("UGG",), colors=("chestnut",), categories=("women",), exclude_terms=("boot",))
    hits = search("slippers", 10, f)
    assert hits
    for h in hits:
        r = rows[h["product_id"]]
        assert r["brand"] == "UGG" and "chestnut" in r["color"].lower()
        assert any("women" in c.lower() for c in r["category"]) and not name_is_excluded(r["name"], ("boot",))


def test_filters_agree_with_sql_truth(services: Services, rows, qvec) -> None:
    """For a selective filter, pgvector returns exactly the matching products, nearest first."""
    f = SearchFilters(brands=("TRESemmé",), price_max=15)
    expected = {
        pid for pid, r in rows.items() if r["brand"] == "TRESemmé" and r["price"] is not None and r["price"] <= 15
    }
    assert 0 < len(expected) < 36
    with services.pool.connection() as conn:
        hits = catalog.vector_search(conn, qvec("ugg slippers"), 50, f)
    assert {h["product_id"] for h in hits} == expected
    assert [h["similarity"] for h in hits] == sorted((h["similarity"] for h in hits), reverse=True)


@pytest.fixture
def index_conn(services: Services) -> Iterator[Any]:
    """A pooled connection inside a transaction that forces the HNSW index (the slice is small enough
    that the planner would otherwise rightly scan it exactly)."""
    with services.pool.connection() as conn, conn.transaction():
        conn.execute("SET LOCAL enable_seqscan = off")
        conn.execute("SET LOCAL enable_sort = off")
        yield conn


def test_filtered_index_scan_still_returns_k(index_conn, qvec) -> None:
    """A selective filter on an unrelated query: the HNSW scan stops after ef_search candidates and
    returns too few rows without iterative scan; with it (as configured) the list is full."""
    f = SearchFilters(brands=("TRESemmé",))
    plan = index_conn.execute(
        "EXPLAIN SELECT id FROM products WHERE lower(brand) = ANY(%s) ORDER BY embedding <=> %s LIMIT 20",
        (["tresemmé"], np.asarray(qvec("ugg slippers women"), dtype=np.float32)),
    ).fetchall()
    assert "products_embedding_hnsw" in "\n".join(r["QUERY PLAN"] for r in plan)
    assert index_conn.execute("SHOW hnsw.iterative_scan").fetchone()["hnsw.iterative_scan"] == "relaxed_order"
    assert len(catalog.vector_search(index_conn, qvec("ugg slippers women"), 20, f)) == 20
    index_conn.execute("SET LOCAL hnsw.iterative_scan = off")
    assert len(catalog.vector_search(index_conn, qvec("ugg slippers women"), 20, f)) < 20
