"""Prompts and answer templates (English and Spanish), filled at call time.

The offline brain answers from these templates; the LLM brain gets `SYSTEM_PROMPT` and `TURN_PROMPT`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The same for every turn (and first in every request, so a local server's prompt cache keeps it with the tool
# schemas after it: re-reading them costs a minute on a small CPU); what changes per turn is in TURN_PROMPT.
SYSTEM_PROMPT = """You are a shopping assistant for an online catalog. Use the tools to search products, give \
details of products, compare products and find similar ones. Rules:
- For every request for products, call search_products (query in English product words, prices in US dollars).
- Answer ONLY from tool results and the products on screen; never invent products, prices, ids or features. If a \
price is missing, say it is unknown.
- For "the second one", "compare 1 and 3", "more like the first" use the product_id of those numbers on screen.
- For "cheaper", "only <brand>", "without X" search again with the previous query plus the new filters.
- In the answer, list products as "n. name - $price" with the exact names and prices of the results; no product ids.
- If results are marked weak_matches, say they are weaker matches.
- A product with active: false, or listed as unavailable or unknown, has been discontinued: say it is no longer \
available and never recommend it.
- If the request is not about shopping, say politely what you can do."""

# Sent as a system message right before the shopper's latest message ({screen}: SCREEN_PROMPT or nothing).
TURN_PROMPT = "{screen}Reply in {language_name}, briefly."
SCREEN_PROMPT = """Products on screen from the search {search_text!r} {filters} (number. product_id | name | price):
{shown}
"""

LANGUAGE_NAMES = {"en": "English", "es": "Spanish"}

T: dict[str, dict[str, str]] = {
    "en": {
        "greeting": "Hi! I can help you find products: tell me what you're looking for (e.g. \"leather belts "
        'under $30"), then ask me to refine, compare or find similar ones.',
        "help": 'I can: search the catalog ("toddler water bottle without straw"), refine the results '
        '("cheaper", "only UGG", "in black", "without laces"), tell you more about one ("the second one"), '
        'compare ("compare 1 and 3") and find similar products ("more like the first one").',
        "out_of_scope": "Sorry, I can only help with shopping in this catalog: searching products, refining "
        "results, product details, comparisons and similar products. What are you looking for?",
        "search": 'Here is what I found for "{query}"{filters}:',
        "refine": 'Refined "{query}"{filters}:',
        "weak": 'I didn\'t find close matches for "{query}"{filters}; these are weaker matches that may still help:',
        "no_results": 'I couldn\'t find products for "{query}"{filters}. Try other words or fewer filters.',
        "no_results_refine": 'Nothing matches "{query}"{filters}; the previous results are still the ones above.',
        "error": "Product search is unavailable right now; please try again shortly.",
        "need_shown": "There are no products on screen yet; tell me what you're looking for first.",
        "need_ref": 'Which one? Say e.g. "the second one" (1 to {n}).',
        "need_two": 'Tell me which products to compare, e.g. "compare 1 and 3" (1 to {n}).',
        "details": "{n}. {name}{brand} — {price}.",
        "details_extra": "Rating {rating}/5 ({count} reviews). Colour: {color}. Category: {category}.",
        "unavailable": "{n}. {name} is no longer available.",
        "unavailable_short": "no longer available",
        "similar_unavailable": '"{name}" is no longer available; similar products (varied picks):',
        "compare": "Comparison:",
        "compare_row": "{n}. {name}{brand} — {price}, rating {rating}",
        "cheapest": "Cheapest: {name}.",
        "best_rated": "Best rated: {name}.",
        "facet_brand": "{n}. {name} is by {value}.",
        "facet_brand_unknown": "The brand of {n}. {name} is not listed.",
        "facet_price": "{n}. {name} costs {value}.",
        "facet_price_unknown": "The price of {n}. {name} is not listed.",
        "facet_color": "{n}. {name} comes in {value}.",
        "facet_color_unknown": "The colour of {n}. {name} is not listed.",
        "facet_rating": "{n}. {name} is rated {value}/5 ({count} reviews).",
        "facet_rating_unknown": "{n}. {name} has no rating yet.",
        "similar": 'Similar to "{name}" (varied picks):',
        "no_similar": 'I couldn\'t find products similar to "{name}".',
        "price_unknown": "price unknown",
        "colors_relaxed": "(no exact colour match; showing the closest products)",
        "why_terms": "matches {terms}",
        "why_brand": "{brand}",
        "why_under": "under ${value:.2f}",
        "why_over": "over ${value:.2f}",
        "why_excludes": "no {terms}",
        "why_similarity": "similarity {value:.2f}",
        "why_shared": "also {terms}",
        "why_same_brand": "same brand ({brand})",
        "why_cheaper": "${value:.2f} cheaper",
        "why_pricier": "${value:.2f} more",
        "why_close_price": "similar price",
        "filters_price_max": "under ${value:.2f}",
        "filters_price_min": "over ${value:.2f}",
        "filters_brands": "brand {value}",
        "filters_colors": "colour {value}",
        "filters_exclude": "without {value}",
        "filters_exclude_colors": "not {value}",
        "filters_categories": "in {value}",
        "filters_in_stock": "in stock",
        "llm_unavailable": "(The language model is unavailable; I answered with the built-in assistant.)",
        "llm_slow": "(The language model took too long; I answered with the built-in assistant.)",
        "llm_unusable": "(The language model's reply could not be used; I answered with the built-in assistant.)",
        "llm_ungrounded": "(The language model's answer named products or prices that are not in the results, so "
        "the built-in assistant listed the results instead.)",
        "search_degraded": "(The main product database is unavailable right now: these results come from the backup "
        "index and may be less complete.)",
        "memory_unavailable": "(Our conversation's memory is unavailable right now: I can't see your earlier "
        "messages, and this one won't be remembered.)",
    },
    "es": {
        "greeting": '¡Hola! Puedo ayudarte a encontrar productos: dime qué buscas (p. ej. "cinturones de cuero '
        'por menos de $30") y luego pídeme afinar, comparar o buscar parecidos.',
        "help": 'Puedo: buscar en el catálogo ("botella de agua para niños sin pajita"), afinar resultados '
        '("más barato", "solo UGG", "en negro", "sin cordones"), darte detalles ("el segundo"), '
        'comparar ("compara el 1 y el 3") y buscar productos parecidos ("más como el primero").',
        "out_of_scope": "Lo siento, solo puedo ayudarte a comprar en este catálogo: buscar productos, afinar "
        "resultados, ver detalles, comparar y buscar parecidos. ¿Qué estás buscando?",
        "search": 'Esto es lo que encontré para "{query}"{filters}:',
        "refine": 'Resultados afinados de "{query}"{filters}:',
        "weak": 'No encontré coincidencias cercanas para "{query}"{filters}; estas coincidencias más débiles '
        "pueden servirte:",
        "no_results": 'No encontré productos para "{query}"{filters}. Prueba con otras palabras o menos filtros.',
        "no_results_refine": 'Nada coincide con "{query}"{filters}; los resultados anteriores siguen siendo '
        "los de arriba.",
        "error": "La búsqueda de productos no está disponible ahora; inténtalo de nuevo en un momento.",
        "need_shown": "Aún no hay productos en pantalla; primero dime qué buscas.",
        "need_ref": '¿Cuál? Dime p. ej. "el segundo" (del 1 al {n}).',
        "need_two": 'Dime qué productos comparar, p. ej. "compara el 1 y el 3" (del 1 al {n}).',
        "details": "{n}. {name}{brand} — {price}.",
        "details_extra": "Valoración {rating}/5 ({count} opiniones). Color: {color}. Categoría: {category}.",
        "unavailable": "{n}. {name} ya no está disponible.",
        "unavailable_short": "ya no está disponible",
        "similar_unavailable": '"{name}" ya no está disponible; productos parecidos (opciones variadas):',
        "compare": "Comparación:",
        "compare_row": "{n}. {name}{brand} — {price}, valoración {rating}",
        "cheapest": "El más barato: {name}.",
        "best_rated": "El mejor valorado: {name}.",
        "facet_brand": "El {n}, {name}, es de la marca {value}.",
        "facet_brand_unknown": "No tenemos la marca del {n}, {name}.",
        "facet_price": "El {n}, {name}, cuesta {value}.",
        "facet_price_unknown": "No tenemos el precio del {n}, {name}.",
        "facet_color": "El {n}, {name}, es de color {value}.",
        "facet_color_unknown": "No tenemos el color del {n}, {name}.",
        "facet_rating": "El {n}, {name}, tiene {value}/5 ({count} opiniones).",
        "facet_rating_unknown": "El {n}, {name}, aún no tiene valoraciones.",
        "similar": 'Parecidos a "{name}" (opciones variadas):',
        "no_similar": 'No encontré productos parecidos a "{name}".',
        "price_unknown": "precio desconocido",
        "colors_relaxed": "(ningún color coincide exactamente; muestro los más cercanos)",
        "why_terms": "coincide en {terms}",
        "why_brand": "{brand}",
        "why_under": "menos de ${value:.2f}",
        "why_over": "más de ${value:.2f}",
        "why_excludes": "sin {terms}",
        "why_similarity": "similitud {value:.2f}",
        "why_shared": "también {terms}",
        "why_same_brand": "misma marca ({brand})",
        "why_cheaper": "${value:.2f} más barato",
        "why_pricier": "${value:.2f} más caro",
        "why_close_price": "precio parecido",
        "filters_price_max": "por menos de ${value:.2f}",
        "filters_price_min": "por más de ${value:.2f}",
        "filters_brands": "marca {value}",
        "filters_colors": "color {value}",
        "filters_exclude": "sin {value}",
        "filters_exclude_colors": "que no sea {value}",
        "filters_categories": "en {value}",
        "filters_in_stock": "disponibles",
        "llm_unavailable": "(El modelo de lenguaje no está disponible; respondí con el asistente integrado.)",
        "llm_slow": "(El modelo de lenguaje tardó demasiado; respondí con el asistente integrado.)",
        "llm_unusable": "(No se pudo usar la respuesta del modelo de lenguaje; respondí con el asistente integrado.)",
        "llm_ungrounded": "(La respuesta del modelo de lenguaje nombraba productos o precios que no están en los "
        "resultados; el asistente integrado los listó en su lugar.)",
        "search_degraded": "(La base de datos principal de productos no está disponible ahora: estos resultados "
        "vienen del índice de respaldo y pueden ser menos completos.)",
        "memory_unavailable": "(La memoria de nuestra conversación no está disponible ahora: no veo tus mensajes "
        "anteriores y este no se recordará.)",
    },
}


# Filters hold English colour names (the catalog's); Spanish answers say them in Spanish.
_COLOUR_ES = {
    "red": "rojo", "blue": "azul", "black": "negro", "white": "blanco", "green": "verde", "yellow": "amarillo",
    "pink": "rosa", "gray": "gris", "brown": "café", "tan": "beige", "beige": "beige", "purple": "morado",
    "orange": "naranja", "silver": "plateado", "gold": "dorado", "navy": "azul marino",
}  # fmt: skip


# The note an answer carries when the LLM brain's answer was not used, by why (agent.state.FallbackKind).
_FALLBACK_NOTES = {
    "unavailable": "llm_unavailable",
    "timeout": "llm_slow",
    "budget": "llm_slow",
    "malformed_call": "llm_unusable",
    "no_answer": "llm_unusable",
    "no_search": "llm_unusable",
    "ungrounded": "llm_ungrounded",
}


def fixed_texts(lang: str) -> list[str]:
    """The templates of `lang` that take no values (greeting, help, notes): the same words whatever was asked."""
    return [text for text in T[lang].values() if "{" not in text]


def fallback_note(lang: str, kind: str) -> str:
    """What the shopper is told when the offline brain answered instead of the LLM."""
    return t(lang, _FALLBACK_NOTES.get(kind, "llm_unavailable"))


def colour_name(lang: str, colour: str) -> str:
    """An English colour name as the shopper's language says it."""
    return _COLOUR_ES.get(colour, colour) if lang == "es" else colour


def t(lang: str, key: str, **values: Any) -> str:
    """A template in `lang` (English when unknown), filled with `values`."""
    return T.get(lang, T["en"])[key].format(**values)


def price_text(lang: str, price: float | None) -> str:
    """ "$12.99" or "price unknown"."""
    return f"${price:.2f}" if price is not None else t(lang, "price_unknown")


def filters_text(lang: str, filters: Mapping[str, Any]) -> str:
    """ ", under $30, brand ugg" for an answer's first line ("" when there are no filters)."""
    parts = []
    if (v := filters.get("price_max")) is not None:
        parts.append(t(lang, "filters_price_max", value=v))
    if (v := filters.get("price_min")) is not None:
        parts.append(t(lang, "filters_price_min", value=v))
    for key, name in (
        ("brands", "filters_brands"),
        ("colors", "filters_colors"),
        ("exclude_terms", "filters_exclude"),
        ("exclude_colors", "filters_exclude_colors"),
        ("categories", "filters_categories"),
    ):
        if values := filters.get(key):
            shown = [colour_name(lang, v) for v in values] if key.endswith("colors") else values
            parts.append(t(lang, name, value="/".join(shown)))
    if filters.get("in_stock"):
        parts.append(t(lang, "filters_in_stock"))
    return (" (" + ", ".join(parts) + ")") if parts else ""


def reason_text(lang: str, why: Mapping[str, Any], similarity: float | None) -> str:
    """Why a product is listed, in a few words."""
    parts = []
    if why.get("matched_terms"):
        parts.append(t(lang, "why_terms", terms=", ".join(why["matched_terms"][:4])))
    if why.get("shared_terms"):
        parts.append(t(lang, "why_shared", terms=", ".join(why["shared_terms"])))
    if why.get("same_brand"):
        parts.append(t(lang, "why_same_brand", brand=why["same_brand"]))
    elif why.get("brand"):
        parts.append(t(lang, "why_brand", brand=why["brand"]))
    if (v := why.get("price_vs_source")) is not None:
        key = "why_close_price" if abs(v) < 1 else ("why_cheaper" if v < 0 else "why_pricier")
        parts.append(t(lang, key, value=abs(v)))
    if (v := why.get("under")) is not None:
        parts.append(t(lang, "why_under", value=v))
    if (v := why.get("over")) is not None:
        parts.append(t(lang, "why_over", value=v))
    if why.get("excludes"):
        parts.append(t(lang, "why_excludes", terms="/".join(why["excludes"])))
    if similarity is not None:
        parts.append(t(lang, "why_similarity", value=similarity))
    return "; ".join(parts)


def product_line(lang: str, n: int, product: Mapping[str, Any]) -> str:
    """ "1. Name (Brand) — $12.99 — why"."""
    brand = f" ({product['brand']})" if product.get("brand") else ""
    reason = product.get("reason") or ""
    return f"{n}. {product['name']}{brand} — {price_text(lang, product.get('price'))}" + (
        f" — {reason}" if reason else ""
    )
