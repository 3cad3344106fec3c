"""The product tools: ONE LangChain tool set, used by both brains.

`make_tools(services)` returns `search_products`, `product_details`, `similar_products` and `compare_products`
as typed StructuredTools whose docstrings are what an LLM reads. The offline brain invokes the same tools
(so every turn shows `tool` runs in traces), passing what it already understood through injected arguments
(`request`, `options`) that an LLM never sees. Each tool returns a JSON-able `ToolResult` with a `status`
("ok", "weak_matches", "no_results", "not_found", "error") and a readable `message` for expected failures,
so neither the graph nor an LLM ever sees an exception for "unknown id" or "no results".
"""

from __future__ import annotations

import logging
import re
from typing import Annotated, Any, Literal

import numpy as np
from langchain_core.tools import BaseTool, InjectedToolArg, StructuredTool
from typing_extensions import TypedDict

from shopagent.domain import MatchWhy, ProductView, SearchFilters, SearchOptions, SearchRequest, updated
from shopagent.matching import name_is_excluded
from shopagent.services import Services
from shopagent.settings import Backend, Strategy

log = logging.getLogger(__name__)

ToolStatus = Literal["ok", "weak_matches", "no_results", "not_found", "error"]
_STOP = frozenset("a an and the for with of to in on by or from without sin con para de la el los las y".split())
SIMILAR_CANDIDATES = 30
MAX_K = 20


class ToolResult(TypedDict, total=False):
    """What every product tool returns (the keys that apply to it)."""

    status: ToolStatus
    message: str
    products: list[ProductView]
    # search_products: the search as run, and how it was served
    query: str
    filters: dict[str, Any]
    strategy: str
    backend: Backend
    fallback_reason: str | None
    degraded: bool  # the catalog database was unavailable: Chroma alone answered
    weak_matches: bool
    figures: dict[str, Any]
    # product_details / compare_products / similar_products
    missing: list[str]
    unavailable: list[str]  # discontinued products (kept for conversations, never searchable)
    cheapest: str | None
    best_rated: str | None
    same_brand: bool
    source: ProductView
    mmr_lambda: float


def _singular(word: str) -> str:
    """A comparison key: one plural "s" off ("headphones" ~ "headphone"), never from "-ss" ("wireless")."""
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _words(text: str) -> dict[str, str]:
    """Content words, lower-case, once each in the order they appear: comparison key -> the word as written."""
    words = (w for w in re.findall(r"[a-z0-9']+", text.lower()) if w not in _STOP and len(w) > 2)
    out: dict[str, str] = {}
    for w in words:
        out.setdefault(_singular(w), w)
    return out


def match_reason(product: ProductView, query: str, filters: SearchFilters) -> MatchWhy:
    """Why a product matches: query words in its name (as the shopper wrote them), filters it satisfies."""
    name_words = _words(product["name"])
    why = MatchWhy(matched_terms=[w for key, w in _words(query).items() if key in name_words])
    if filters.brands and product["brand"]:
        why["brand"] = product["brand"]
    if filters.price_max is not None and product["price"] is not None:
        why["under"] = filters.price_max
    if filters.price_min is not None and product["price"] is not None:
        why["over"] = filters.price_min
    if filters.exclude_terms:
        why["excludes"] = list(filters.exclude_terms)
    if filters.colors:
        why["colors"] = list(filters.colors)
    return why


def _rounded(product: ProductView, why: MatchWhy) -> ProductView:
    """A product as a tool returns it: scores rounded for readers, and why it is listed."""
    sim = product["similarity"]
    return updated(
        product, score=round(product["score"], 4), similarity=None if sim is None else round(sim, 4), why=why
    )


class ProductTools:
    """The product operations bound to long-lived services."""

    def __init__(self, services: Services, default_k: int = 5):
        """Nothing connects here; every call borrows the services' pool."""
        self.services = services
        self.default_k = default_k

    def search(self, request: SearchRequest, options: SearchOptions) -> ToolResult:
        """Search with an understood request; the result says which backend served it, any fallback, weak matches."""
        result = self.services.search.search(request, options)
        products = [_rounded(p, match_reason(p, request.text, request.filters)) for p in result.products]
        if products:
            status: ToolStatus = "weak_matches" if result.weak_matches else "ok"
            message = f"{len(products)} products" + (" (weaker matches)" if result.weak_matches else "")
        else:
            unanswered = result.backend == "none" and bool(result.errors)  # every backend failed
            status = "error" if unanswered else "no_results"
            message = "search backends unavailable" if unanswered else f"no products match {request.text!r}"
        return ToolResult(
            status=status,
            message=message,
            query=request.text,
            filters=request.filters.as_dict(),
            products=products,
            strategy=result.strategy,
            backend=result.backend,
            fallback_reason=result.fallback_reason,
            degraded=result.degraded,
            weak_matches=result.weak_matches,
            figures=result.figures,
        )

    def details(self, product_ids: list[str]) -> ToolResult:
        """Details of products by id; unknown ids and discontinued products are reported, not raised."""
        products = self.services.search.lookup(product_ids)
        found = {p["product_id"] for p in products}
        missing = [i for i in product_ids if i not in found]
        unavailable = [p["product_id"] for p in products if p.get("active") is False]
        status: ToolStatus = "ok" if products else "not_found"
        notes = [f"{len(products)} products"] if products and not missing else []
        if missing:
            notes.append(f"unknown product id(s): {', '.join(missing)}")
        if unavailable:
            notes.append(f"no longer available: {', '.join(unavailable)}")
        message = "; ".join(notes)
        return ToolResult(status=status, message=message, products=products, missing=missing, unavailable=unavailable)

    def compare(self, product_ids: list[str]) -> ToolResult:
        """Side-by-side facts of 2+ products plus the cheapest and best-rated among them."""
        if len(product_ids) < 2:
            return ToolResult(status="error", message="compare needs at least two product ids", products=[])
        result = self.details(product_ids)
        products = result["products"]
        if len(products) < 2:
            return ToolResult(**{**result, "status": "not_found", "message": result["message"] or "products not found"})
        # A discontinued product is shown (the shopper asked about it) but never recommended.
        offered = [p for p in products if p.get("active") is not False]
        priced = [p for p in offered if p["price"] is not None]
        rated = [p for p in offered if p.get("rating") is not None]
        result["cheapest"] = min(priced, key=lambda p: p["price"] or 0.0)["product_id"] if priced else None
        result["best_rated"] = (
            max(rated, key=lambda p: (p.get("rating") or 0.0, p.get("rating_count") or 0))["product_id"]
            if rated
            else None
        )
        brands = {p["brand"] for p in products}
        result["same_brand"] = len(brands) == 1 and None not in brands
        return result

    def similar(self, product_id: str, k: int, mmr_lambda: float, filters: SearchFilters | None = None) -> ToolResult:
        """Products similar to `product_id`, diversified by MMR, each with a short reason."""
        found = self.services.search.neighbours(product_id, SIMILAR_CANDIDATES, filters or SearchFilters())
        if found is None:
            return ToolResult(status="error", message="similar products need the database", products=[])
        source, src_vec, neighbours = found
        if source is None:
            return ToolResult(status="not_found", message=f"unknown product id: {product_id}", products=[])
        # Near-duplicates (same name) are not "similar products", they are the same one in another size.
        neighbours = [(p, v) for p, v in neighbours if p["name"].strip().lower() != source["name"].strip().lower()]
        if filters and filters.exclude_terms:
            neighbours = [(p, v) for p, v in neighbours if not name_is_excluded(p["name"], filters.exclude_terms)]
        if src_vec is None or not neighbours:
            return ToolResult(status="no_results", message="no similar products found", products=[], source=source)
        picked = mmr(src_vec, [v for _, v in neighbours], k, mmr_lambda)
        src_words = _words(source["name"])
        products = []
        for i in picked:
            p = neighbours[i][0]
            why = MatchWhy(shared_terms=[w for key, w in _words(p["name"]).items() if key in src_words][:4])
            if p["brand"] and source["brand"] and p["brand"].lower() == source["brand"].lower():
                why["same_brand"] = p["brand"]
            if p["price"] is not None and source["price"] is not None:
                why["price_vs_source"] = round(p["price"] - source["price"], 2)
            products.append(_rounded(p, why))
        return ToolResult(
            status="ok",
            message=f"{len(products)} similar products",
            source=source,
            products=products,
            mmr_lambda=mmr_lambda,
        )


def mmr(query: np.ndarray, candidates: list[np.ndarray], k: int, lam: float) -> list[int]:
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


def make_tools(services: Services, default_k: int = 5) -> list[BaseTool]:
    """The four operations as typed LangChain tools bound to `services` (for `bind_tools` and the offline brain)."""
    ops = ProductTools(services, default_k)

    def search_products(
        query: str,
        max_price: float | None = None,
        min_price: float | None = None,
        brands: list[str] | None = None,
        colors: list[str] | None = None,
        exclude_terms: list[str] | None = None,
        in_stock: bool | None = None,
        k: int = default_k,
        strategy: Strategy | None = None,
        request: Annotated[SearchRequest | None, InjectedToolArg] = None,
        options: Annotated[SearchOptions | None, InjectedToolArg] = None,
    ) -> ToolResult:
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
            request: (injected by the offline brain) the already understood search.
            options: (injected) per-run retrieval options.
        """
        if request is None:
            # An LLM's query may still carry price phrases or negations: understand it once.
            parsed = ops.services.parse(query)
            explicit = SearchFilters(
                price_min=min_price,
                price_max=max_price,
                brands=tuple(brands or ()),
                colors=tuple(colors or ()),
                exclude_terms=tuple(exclude_terms or ()),
                in_stock=in_stock,
            )
            request = SearchRequest(parsed.text, parsed.filters.merged(explicit), parsed.language, query)
        return ops.search(request, options or SearchOptions(k=max(1, min(k, MAX_K)), strategy=strategy))

    def product_details(product_ids: list[str]) -> ToolResult:
        """Full details (price, brand, rating, colour, category, highlights) of products by their product_id."""
        return ops.details(product_ids)

    def similar_products(
        product_id: str, k: int = default_k, mmr_lambda: Annotated[float, InjectedToolArg] = 0.6
    ) -> ToolResult:
        """Products similar to one product (by product_id), diverse, each with why it is similar."""
        return ops.similar(product_id, max(1, min(k, MAX_K)), mmr_lambda)

    def compare_products(product_ids: list[str]) -> ToolResult:
        """Compare two or more products by product_id: price, brand, rating, cheapest and best rated."""
        return ops.compare(product_ids)

    return [
        StructuredTool.from_function(search_products, parse_docstring=True, error_on_invalid_docstring=False),
        StructuredTool.from_function(product_details),
        StructuredTool.from_function(similar_products),
        StructuredTool.from_function(compare_products),
    ]
