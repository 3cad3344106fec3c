"""Product tools: search, details, similar (MMR with reasons) and compare.

Each operation is a plain function over `Services` returning a JSON-able dict with a `status`
("ok", "weak_matches", "no_results", "not_found", "error") and a readable `message` for expected
failures, so neither the graph nor an LLM ever sees an exception for "unknown id" or "no results".
`make_tools` wraps them as typed LangChain tools whose docstrings are what an LLM reads.
"""

from __future__ import annotations

import logging
import re
from decimal import Decimal
from typing import Any, Literal

import numpy as np
import psycopg
from langchain_core.tools import BaseTool, StructuredTool
from psycopg_pool import PoolTimeout

from shopagent import repository
from shopagent.bootstrap import Services
from shopagent.models import Hit, SearchFilters
from shopagent.query import name_is_excluded, parse_query
from shopagent.search import SearchOptions

log = logging.getLogger(__name__)

StrategyName = Literal["pgvector_primary", "chroma_primary", "hybrid"]
_STOP = frozenset("a an and the for with of to in on by or from without sin con para de la el los las y".split())
SIMILAR_CANDIDATES = 30


def _price(value: Decimal | float | None) -> float | None:
    """Prices as JSON floats."""
    return None if value is None else round(float(value), 2)


def _words(text: str) -> set[str]:
    """Content words (singular-ish, lower-case)."""
    return {w.rstrip("s") for w in re.findall(r"[a-z0-9']+", text.lower()) if w not in _STOP and len(w) > 2}


def match_reason(hit: Hit, query: str, filters: SearchFilters) -> dict[str, Any]:
    """Why a hit matches: query words in its name, filters it satisfies, its similarity."""
    name_words = _words(hit.name)
    matched = [w for w in dict.fromkeys(_words(query)) if w in name_words]
    reason: dict[str, Any] = {"matched_terms": matched}
    if filters.brands and hit.brand:
        reason["brand"] = hit.brand
    if filters.price_max is not None and hit.price is not None:
        reason["under"] = filters.price_max
    if filters.price_min is not None and hit.price is not None:
        reason["over"] = filters.price_min
    if filters.exclude_terms:
        reason["excludes"] = list(filters.exclude_terms)
    if filters.colors:
        reason["colors"] = list(filters.colors)
    return reason


def _product(hit: Hit, reason: dict[str, Any]) -> dict[str, Any]:
    """A hit as a tool-result product."""
    return {
        "product_id": hit.product_id,
        "name": hit.name,
        "price": _price(hit.price),
        "brand": hit.brand,
        "score": round(hit.score, 4),
        "similarity": None if hit.similarity is None else round(hit.similarity, 4),
        "why": reason,
    }


def search_products(
    services: Services,
    query: str,
    filters: SearchFilters | None = None,
    k: int = 5,
    strategy: str | None = None,
    pgvector_threshold: float | None = None,
    chroma_threshold: float | None = None,
) -> dict[str, Any]:
    """Search the catalog; the result says which backend served it, any fallback, and weak matches."""
    options = SearchOptions(k=k, strategy=strategy, pgvector_threshold=pgvector_threshold,
                            chroma_threshold=chroma_threshold)  # fmt: skip
    parsed = parse_query(query)
    effective = parsed.filters.merged(filters) if filters else parsed.filters
    response = services.search.search(parsed, filters, options)
    products = [_product(h, match_reason(h, parsed.text, effective)) for h in response.hits]
    if products:
        status = "weak_matches" if response.weak_matches else "ok"
        message = f"{len(products)} products" + (" (weaker matches)" if response.weak_matches else "")
    else:
        status = "error" if response.errors else "no_results"
        message = "search backends unavailable" if response.errors else f"no products match {query!r}"
    return {
        "status": status,
        "message": message,
        "query": query,
        "filters": effective.as_dict(),
        "products": products,
        "strategy": response.strategy,
        "backend": response.backend,
        "fallback_reason": response.fallback_reason,
        "weak_matches": response.weak_matches,
    }


def _rows(services: Services, ids: list[str]) -> list[dict[str, Any]]:
    """Full product rows (from PostgreSQL; Chroma metadata when the database is down)."""
    if services.pool is not None:
        try:
            with services.pool.connection() as conn:
                return repository.get_products(conn, ids)
        except (psycopg.Error, PoolTimeout):
            log.warning("database unavailable for product details; using Chroma", exc_info=True)
    if services.chroma is None:
        return []
    got = services.chroma.get(ids, include_embeddings=False)
    return [{"id": i, "name": got[i]["metadata"].get("name"), "brand": got[i]["metadata"].get("brand") or None,
             "price": got[i]["metadata"].get("price")} for i in ids if i in got]  # fmt: skip


def _detail(row: dict[str, Any]) -> dict[str, Any]:
    """A product row trimmed for an answer."""
    bullets = [b for b in (row.get("bullet_points") or []) if b][:3]
    return {
        "product_id": row["id"],
        "name": row.get("name", ""),
        "brand": row.get("brand"),
        "price": _price(row.get("price")),
        "rating": row.get("rating"),
        "rating_count": row.get("rating_count"),
        "color": row.get("color"),
        "category": " > ".join(row.get("category") or []) or None,
        "in_stock": row.get("in_stock"),
        "highlights": [b[:200] for b in bullets],
        "description": (row.get("description") or "")[:300],
    }


def product_details(services: Services, product_ids: list[str]) -> dict[str, Any]:
    """Details of products by id; unknown ids are reported, not raised."""
    rows = _rows(services, product_ids)
    found = {r["id"] for r in rows}
    missing = [i for i in product_ids if i not in found]
    status = "ok" if rows else "not_found"
    message = f"unknown product id(s): {', '.join(missing)}" if missing else f"{len(rows)} products"
    return {"status": status, "message": message, "products": [_detail(r) for r in rows], "missing": missing}


def compare_products(services: Services, product_ids: list[str]) -> dict[str, Any]:
    """Side-by-side facts of 2+ products plus the cheapest and best-rated among them."""
    if len(product_ids) < 2:
        return {"status": "error", "message": "compare needs at least two product ids", "products": []}
    result = product_details(services, product_ids)
    products = result["products"]
    if len(products) < 2:
        return {**result, "status": "not_found", "message": result["message"] or "products not found"}
    priced = [p for p in products if p["price"] is not None]
    rated = [p for p in products if p["rating"] is not None]
    result["cheapest"] = min(priced, key=lambda p: p["price"])["product_id"] if priced else None
    result["best_rated"] = (
        max(rated, key=lambda p: (p["rating"], p["rating_count"] or 0))["product_id"] if rated else None
    )
    brands = {p["brand"] for p in products}
    result["same_brand"] = len(brands) == 1 and None not in brands
    return result


def _mmr(query: np.ndarray, candidates: list[np.ndarray], k: int, lam: float) -> list[int]:
    """Maximal marginal relevance: indices of `k` candidates balancing similarity and diversity."""
    if not candidates:
        return []
    mat = np.vstack(candidates)
    rel = mat @ query
    chosen: list[int] = []
    while len(chosen) < min(k, len(candidates)):
        redundancy = (mat @ mat[chosen].T).max(axis=1) if chosen else np.zeros(len(candidates))
        score = lam * rel - (1 - lam) * redundancy
        score[chosen] = -np.inf
        chosen.append(int(np.argmax(score)))
    return chosen


def similar_products(
    services: Services, product_id: str, k: int = 5, mmr_lambda: float = 0.6, filters: SearchFilters | None = None
) -> dict[str, Any]:
    """Products similar to `product_id`, diversified by MMR, each with a short reason."""
    if services.pool is None:
        return {"status": "error", "message": "similar products need the database", "products": []}
    try:
        with services.pool.connection() as conn:
            source = repository.get_products(conn, [product_id])
            if not source:
                return {"status": "not_found", "message": f"unknown product id: {product_id}", "products": []}
            src_vec = repository.get_embeddings(conn, [product_id]).get(product_id)
            neighbours = repository.neighbours_with_vectors(
                conn, product_id, SIMILAR_CANDIDATES, filters or SearchFilters()
            )
    except (psycopg.Error, PoolTimeout) as exc:
        return {"status": "error", "message": f"database unavailable: {type(exc).__name__}", "products": []}
    src = source[0]
    # Near-duplicates (same name) are not "similar products", they are the same one in another size.
    neighbours = [(h, v) for h, v in neighbours if h.name.strip().lower() != (src["name"] or "").strip().lower()]
    if filters and filters.exclude_terms:
        neighbours = [(h, v) for h, v in neighbours if not name_is_excluded(h.name, filters.exclude_terms)]
    if src_vec is None or not neighbours:
        return {"status": "no_results", "message": "no similar products found", "products": [],
                "source": _detail(src)}  # fmt: skip
    picked = _mmr(src_vec, [v for _, v in neighbours], k, mmr_lambda)
    src_words = _words(src["name"] or "")
    products = []
    for i in picked:
        hit = neighbours[i][0]
        why: dict[str, Any] = {"shared_terms": [w for w in dict.fromkeys(_words(hit.name)) if w in src_words][:4]}
        if hit.brand and src.get("brand") and hit.brand.lower() == src["brand"].lower():
            why["same_brand"] = hit.brand
        if hit.price is not None and src.get("price") is not None:
            why["price_vs_source"] = round(float(hit.price) - float(src["price"]), 2)
        products.append(_product(hit, why))
    return {"status": "ok", "message": f"{len(products)} similar products", "source": _detail(src),
            "products": products, "mmr_lambda": mmr_lambda}  # fmt: skip


def make_tools(services: Services, default_k: int = 5) -> list[BaseTool]:
    """The four operations as typed LangChain tools bound to `services` (for `bind_tools`)."""

    def search_products_tool(
        query: str,
        max_price: float | None = None,
        min_price: float | None = None,
        brands: list[str] | None = None,
        colors: list[str] | None = None,
        exclude_terms: list[str] | None = None,
        in_stock: bool | None = None,
        k: int = default_k,
        strategy: StrategyName | None = None,
    ) -> dict[str, Any]:
        """Search the product catalog.

        Args:
            query: what the shopper wants, in English product words (e.g. "toddler water bottle").
            max_price: only products at or below this price (USD).
            min_price: only products at or above this price (USD).
            brands: only these brands (exact brand names).
            colors: only products whose colour contains one of these words.
            exclude_terms: drop products whose name mentions these (e.g. ["straw"] for "without straw").
            in_stock: only products in stock.
            k: how many products to return (1-20).
            strategy: retrieval strategy; leave empty for the default.
        """
        filters = SearchFilters(price_min=min_price, price_max=max_price, brands=tuple(brands or ()),
                                colors=tuple(colors or ()), exclude_terms=tuple(exclude_terms or ()),
                                in_stock=in_stock)  # fmt: skip
        return search_products(services, query, filters, max(1, min(k, 20)), strategy)

    def product_details_tool(product_ids: list[str]) -> dict[str, Any]:
        """Full details (price, brand, rating, colour, category, highlights) of products by their product_id."""
        return product_details(services, product_ids)

    def similar_products_tool(product_id: str, k: int = default_k) -> dict[str, Any]:
        """Products similar to one product (by product_id), diverse, each with why it is similar."""
        return similar_products(services, product_id, max(1, min(k, 20)))

    def compare_products_tool(product_ids: list[str]) -> dict[str, Any]:
        """Compare two or more products by product_id: price, brand, rating, cheapest and best rated."""
        return compare_products(services, product_ids)

    return [
        StructuredTool.from_function(search_products_tool, name="search_products", parse_docstring=True),
        StructuredTool.from_function(product_details_tool, name="product_details"),
        StructuredTool.from_function(similar_products_tool, name="similar_products"),
        StructuredTool.from_function(compare_products_tool, name="compare_products"),
    ]
