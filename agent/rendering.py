"""The offline brain's answers: a turn's tool result rendered with the templates of `agent.prompts`, in the
shopper's language, numbering products as they are on screen."""

from __future__ import annotations

from typing import Any

from agent import prompts
from agent.state import State, TurnResult
from shopagent.domain import ProductView


def render(result: TurnResult, state: State, lang: str) -> str:
    """Answer text for a turn's result."""
    kind = result.get("kind", "help")
    n_shown = len(state.get("shown") or [])
    if kind in ("greeting", "help", "out_of_scope"):
        return prompts.t(lang, kind)
    if ask := result.get("ask"):
        return prompts.t(lang, ask, n=n_shown)
    if result.get("status") == "error" and not result.get("products"):
        return prompts.t(lang, "error")
    if kind in ("search", "refine"):
        return _render_search(result, state, lang)
    if kind == "details":
        return _render_details(result, state, lang)
    if kind == "compare":
        return _render_compare(result, state, lang)
    return _render_similar(result, state, lang)


def _render_search(result: TurnResult, state: State, lang: str) -> str:
    """Search/refine answer: header (weaker matches said so) and numbered products with reasons."""
    query, filters = result.get("query", ""), prompts.filters_text(lang, result.get("filters") or {})
    if not result.get("products"):
        key = "no_results_refine" if result.get("kind") == "refine" else "no_results"
        return prompts.t(lang, key, query=query, filters=filters)
    key = "weak" if result.get("weak_matches") else result.get("kind", "search")
    lines = [prompts.t(lang, key, query=query, filters=filters)]
    if result.get("colors_relaxed"):
        lines.append(prompts.t(lang, "colors_relaxed"))
    lines += [prompts.product_line(lang, i, p) for i, p in enumerate(state.get("shown") or [], 1)]
    return "\n".join(lines)


def _number(state: State, product_id: str) -> int:
    """1-based position of a product on screen (0 when not shown)."""
    ids = [p["product_id"] for p in state.get("shown") or []]
    return ids.index(product_id) + 1 if product_id in ids else 0


def _naming(state: State, lang: str, product: ProductView) -> dict[str, Any]:
    """Template values naming a product: its number on screen, name, brand and price."""
    return {
        "n": _number(state, product["product_id"]),
        "name": product["name"],
        "brand": f" ({product['brand']})" if product["brand"] else "",
        "price": prompts.price_text(lang, product["price"]),
    }


def _facet_line(state: State, lang: str, product: ProductView) -> str | None:
    """The direct answer to "what brand / how much / what colour / how is it rated" about one product."""
    name = state.get("facet")
    values = {
        "brand": product["brand"],
        "price": prompts.price_text(lang, product["price"]) if product["price"] is not None else None,
        "color": prompts.colour_name(lang, (product.get("color") or "").lower()) if product.get("color") else None,
        "rating": product.get("rating"),
    }
    if name not in values:
        return None
    n, title = _number(state, product["product_id"]), product["name"]
    if (value := values[name]) is None:
        return prompts.t(lang, f"facet_{name}_unknown", n=n, name=title)
    return prompts.t(lang, f"facet_{name}", n=n, name=title, value=value, count=product.get("rating_count") or 0)


def _render_details(result: TurnResult, state: State, lang: str) -> str:
    """Details of each product: the direct answer to the question asked (if any), headline, rating/colour/category,
    highlights."""
    if not result.get("products"):
        return result.get("message", "")
    blocks = [line for p in result.get("products") or [] if (line := _facet_line(state, lang, p))]
    for p in result.get("products") or []:
        lines = [prompts.t(lang, "details", **_naming(state, lang, p))]
        lines.append(
            prompts.t(
                lang,
                "details_extra",
                rating=p.get("rating") or "–",
                count=p.get("rating_count") or 0,
                color=p.get("color") or "–",
                category=p.get("category") or "–",
            )
        )
        lines += [f"- {h}" for h in p.get("highlights") or []]
        if not p.get("highlights") and p.get("description"):
            lines.append(p.get("description") or "")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _render_compare(result: TurnResult, state: State, lang: str) -> str:
    """One row per product, then the cheapest and the best rated."""
    products = result.get("products") or []
    if len(products) < 2:
        return result.get("message", "")
    names = {p["product_id"]: p["name"] for p in products}
    lines = [prompts.t(lang, "compare")]
    for p in products:
        lines.append(
            prompts.t(
                lang,
                "compare_row",
                **_naming(state, lang, p),
                rating=p.get("rating") or "–",
            )
        )
    verdicts = []
    if cheapest := result.get("cheapest"):
        verdicts.append(prompts.t(lang, "cheapest", name=names[cheapest]))
    if best := result.get("best_rated"):
        verdicts.append(prompts.t(lang, "best_rated", name=names[best]))
    if state.get("facet") == "rating":
        verdicts.reverse()
    # A superlative question ("which one is the cheapest?") is answered first, then the comparison.
    return "\n".join([*verdicts, *lines] if state.get("facet") else [*lines, *verdicts])


def _render_similar(result: TurnResult, state: State, lang: str) -> str:
    """Similar products with why each is similar."""
    source = result["source"]["name"] if result.get("source") else ""
    if not result.get("products"):
        if result.get("status") == "not_found":
            return result.get("message", "")
        return prompts.t(lang, "no_similar", name=source)
    lines = [prompts.t(lang, "similar", name=source)]
    lines += [prompts.product_line(lang, i, p) for i, p in enumerate(state.get("shown") or [], 1)]
    return "\n".join(lines)
