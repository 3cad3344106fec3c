"""Understanding shoppers (English and Spanish), in one place and once per message.

`understand(message, vocabulary, shown, previous_language)` -> `Understanding`: the intent, the language,
references to the products on screen ("the second one", "1 and 3") and the `SearchRequest` (search words +
filters). `parse_search(query)` is the retrieval-only part, for raw queries (scripts, the LangChain retriever,
the LLM's tool calls). Rules live in `intent`, `language`, `prices`, `negation`, `glossary`; the catalog's
brands and categories in `vocabulary`. No network, no model calls (the off-topic check takes a callable).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shopagent.domain import SearchFilters, SearchRequest
from shopagent.settings import Language
from shopagent.understanding.glossary import COLOR_WORDS, translate_es
from shopagent.understanding.intent import (
    CATEGORY_CUE,
    CHEAPER,
    FOLLOWUP_FILLER,
    NEW_SEARCH,
    ONLY,
    PRICIER,
    REFINE_CUE,
    Intent,
    classify,
    facet,
    looks_like_question,
    references,
)
from shopagent.understanding.language import detect_language
from shopagent.understanding.negation import extract_negations
from shopagent.understanding.prices import extract_price
from shopagent.understanding.request import catalog_term, parse_search
from shopagent.understanding.vocabulary import Vocabulary

__all__ = ["Understanding", "Vocabulary", "parse_search", "understand"]

_COLOR_RE = re.compile(r"\b(" + "|".join(sorted(COLOR_WORDS, key=len, reverse=True)) + r")\b", re.I)


@dataclass
class Understanding:
    """What one message asks for. For `refine`, `request` holds only what the message adds to the previous
    search (its words and filters); for `search`, the whole new search."""

    intent: Intent
    language: Language
    refs: list[int] = field(default_factory=list)  # 0-based positions of shown products ("the second one" -> [1])
    request: SearchRequest = field(default_factory=lambda: SearchRequest(""))
    notes: list[str] = field(default_factory=list)
    facet: str | None = None  # what a question about shown products asks: "brand", "price", "color", "rating"


def median_price(shown: Sequence[Mapping[str, Any]]) -> float | None:
    """Median known price of the shown products."""
    prices = [float(p["price"]) for p in shown if p.get("price") is not None]
    return statistics.median(prices) if prices else None


def _follow_up_filters(
    text: str,
    language: str,
    vocab: Vocabulary,
    shown: Sequence[Mapping[str, Any]],
    notes: list[str],
    translate: Callable[[str], str],
) -> tuple[SearchFilters, str]:
    """Filters a follow-up adds (cheaper, only <brand>, in <colour>, without X, under $N) and its leftover words."""
    price = extract_price(text, language)
    negated = extract_negations(price.text)
    f = SearchFilters(
        price_min=price.price_min,
        price_max=price.price_max,
        exclude_terms=tuple(catalog_term(translate(t), vocab) if language == "es" else t for t in negated.terms),
        exclude_colors=tuple(negated.colors),
    )
    rest = translate_es(negated.text)
    median = median_price(shown)
    if CHEAPER.search(text) and f.price_max is None:
        if median is not None:
            f = SearchFilters(price_max=round(median * 0.99, 2)).merged(f)
        else:
            notes.append("no_prices")
    if PRICIER.search(text) and f.price_min is None and median is not None:
        f = SearchFilters(price_min=round(median * 1.01, 2)).merged(f)
    colors = tuple(dict.fromkeys(COLOR_WORDS[c.lower()] for c in _COLOR_RE.findall(negated.text)))
    if colors:
        f = f.merged(SearchFilters(colors=colors))
        rest = _COLOR_RE.sub(" ", rest)
    if m := ONLY.search(text):
        target = m.group(1)
        if brand := vocab.find_brand(target):
            f = f.merged(SearchFilters(brands=(brand,)))
            rest = re.sub(re.escape(brand), " ", rest, flags=re.I)
        elif category := vocab.find_category(target):
            f = f.merged(SearchFilters(categories=(category,)))
            rest = re.sub(re.escape(category.rstrip("s")) + r"\w*", " ", rest, flags=re.I)
    elif (brand := vocab.find_brand(text)) and len(text.split()) <= 3:
        f = f.merged(SearchFilters(brands=(brand,)))  # "Nike?" / "UGG ones"
        rest = re.sub(re.escape(brand), " ", rest, flags=re.I)
    rest = FOLLOWUP_FILLER.sub(" ", rest)
    return f, " ".join(w for w in re.findall(r"[\w'-]+", rest) if not w.isdigit())


def understand(
    text: str,
    vocab: Vocabulary,
    shown: Sequence[Mapping[str, Any]] = (),
    previous_language: str | None = None,
    off_topic: Callable[[str], bool] | None = None,
    translate: Callable[[str], str] | None = None,
) -> Understanding:
    """Intent, language, references and search request of one message, given what is on screen.

    `off_topic(text)` (an embedding check) is asked only about questions the rules took for a search;
    `translate` turns Spanish words into the catalog's English ones (default: the shop glossary)."""
    brand = vocab.find_brand(text)
    # Brand names ("TRESemmé") say nothing about the shopper's language.
    unbranded = re.sub(re.escape(brand), " ", text, flags=re.I) if brand else text
    language = detect_language(unbranded, vocab.words, previous_language)
    intent = classify(text, len(shown))
    u = Understanding(intent=intent, language=language)
    if intent in ("compare", "similar", "details"):
        u.refs = [i for i in references(text, len(shown)) if i < len(shown)]
        u.facet = facet(text)
        return u
    if intent != "search":
        return u
    if shown:
        filters, leftover = _follow_up_filters(text, language, vocab, shown, u.notes, translate or translate_es)
        cue = bool(CHEAPER.search(text) or PRICIER.search(text) or REFINE_CUE.search(text))
        # "quiero ver los de menos de 100 pesos": a new-search cue with nothing new to search for refines.
        new_search = bool(NEW_SEARCH.search(text)) and bool(leftover)
        if not new_search and (cue or not filters.is_empty) and (not leftover or (cue and len(leftover.split()) <= 3)):
            u.intent, u.request = "refine", SearchRequest(leftover, filters, language, text, leftover)
            return u
    if off_topic is not None and looks_like_question(text) and off_topic(text):
        u.intent = "out_of_scope"
        return u
    parsed = parse_search(text, language, vocab, translate)
    filters = parsed.filters
    if (m := ONLY.search(text)) and (brand := vocab.find_brand(m.group(1))):
        filters = filters.merged(SearchFilters(brands=(brand,)))
    if (m := CATEGORY_CUE.search(text)) and (category := vocab.find_category(m.group(1))):
        filters = filters.merged(SearchFilters(categories=(category,)))
    u.request = SearchRequest(parsed.text, filters, language, text, parsed.native)
    return u
