"""Grounding: what an answer written by a language model may claim about products.

Every product id, price and product name in an answer must come from the products the turn is about (its tool
results and the products on screen). Pure functions over text, used by the LLM brain (an ungrounded answer is
replaced by the offline rendering of the same results) and by the conversation evaluators.

- ids: Amazon-style product ids (ASINs, ISBN-10s) anywhere in the text must be known;
- prices: every money amount must be a known product's price (whole-dollar roundings allowed), a difference
  between two known prices ("$5 cheaper"), or an amount the shopper or the search filters used ("under $80");
- names: every list item or bold span that looks like a product (it states a price or an id, or has two or
  more capitalised words) must fuzzy-match a known product's name, and a price on it must be that product's.
  Names in running prose are not checked (the ids and prices in it are).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from rapidfuzz import fuzz

# Amazon-style product ids (ASINs, ISBN-10s) as they could appear in an answer's text.
PRODUCT_ID = re.compile(r"\b(?:B0[A-Z0-9]{8}|\d{9}[\dX])\b")
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_MONEY = re.compile(
    rf"(?:US\$|USD\s?|\$)\s?(?P<pre>{_NUMBER})"
    rf"|(?P<post>{_NUMBER})\s?(?:USD|US\$|\$|dollars?|d[oó]lares|bucks|pesos)\b",
    re.IGNORECASE,
)
_BARE_NUMBER = re.compile(_NUMBER)
# List items: "1. ...", "2) ...", "- ...", "* ...", "• ..." at a line start, or numbered items run together on one
# line ("... 1. Foo - $5 2. Bar - $6").
_ITEM_START = re.compile(r"(?:^|\n)\s*(?:\d{1,2}[.)]|[-*•])\s+|(?<=\s)\d{1,2}[.)]\s+(?=[A-Z])")
_BOLD = re.compile(r"\*\*(.+?)\*\*|__(.+?)__")
_CAPITALISED = re.compile(r"\b[A-Z][A-Za-z0-9'&.-]+")
_WORDS = re.compile(r"[^\W_]+", re.UNICODE)
# A name written in an answer matches a product when this similar (0-100, rapidfuzz) to its name.
NAME_MATCH = 75.0
PRICE_TOLERANCE = 0.01


@dataclass(frozen=True)
class KnownProduct:
    """A product an answer may talk about."""

    product_id: str
    name: str
    price: float | None


def known_products(products: Iterable[Mapping[str, Any]]) -> list[KnownProduct]:
    """Products (ProductView dicts) as grounding references, once each."""
    seen: dict[str, KnownProduct] = {}
    for p in products:
        pid = str(p.get("product_id") or "")
        if pid and pid not in seen:
            price = p.get("price")
            seen[pid] = KnownProduct(pid, str(p.get("name") or ""), None if price is None else float(price))
    return list(seen.values())


def _amount(raw: str) -> float:
    """A written amount as a number: "1,299" is 1299, "59,99" (Spanish decimals) is 59.99."""
    if re.fullmatch(r"\d+,\d{1,2}", raw):
        return float(raw.replace(",", "."))
    return float(raw.replace(",", ""))


def money_amounts(text: str) -> list[float]:
    """The money amounts in a text ("$59.99", "80 dollars", "USD 12", "15 dólares")."""
    return [_amount(m.group("pre") or m.group("post")) for m in _MONEY.finditer(text)]


def said_amounts(text: str) -> list[float]:
    """Every number the shopper wrote (a bound like "under 80" may come back as "$80")."""
    return [_amount(m.group(0)) for m in _BARE_NUMBER.finditer(text)]


def allowed_amounts(products: Sequence[KnownProduct], extra: Iterable[float] = ()) -> list[float]:
    """Prices, pairwise price differences, and the extra amounts (filters, the shopper's numbers)."""
    prices = [p.price for p in products if p.price is not None]
    return [*prices, *(abs(a - b) for a, b in combinations(prices, 2)), *extra]


def amount_is_known(amount: float, allowed: Iterable[float]) -> bool:
    """Equal to an allowed amount (to the cent), or a whole-dollar rounding of one."""
    whole = float(amount).is_integer()
    return any(abs(amount - a) < PRICE_TOLERANCE or (whole and abs(amount - a) < 1.0) for a in allowed)


def unsupported_prices(text: str, allowed: Iterable[float]) -> list[float]:
    """Money amounts in `text` that are none of the allowed amounts."""
    allowed = list(allowed)
    return [a for a in money_amounts(text) if not amount_is_known(a, allowed)]


def _normal(text: str) -> str:
    """Lower-case words only (prices, ids and punctuation removed)."""
    text = PRODUCT_ID.sub(" ", _MONEY.sub(" ", text))
    return " ".join(_WORDS.findall(text.lower()))


def name_score(written: str, name: str) -> float:
    """How well a name written in an answer matches a product name (0-100): shortened names and names followed
    by a few words of description score high, other products of the same brand low."""
    a, b = _normal(written), _normal(name)
    if not a or not b:
        return 0.0
    partial = fuzz.partial_ratio(a, b) if min(len(a), len(b)) >= 8 else 0.0
    return max(float(fuzz.token_set_ratio(a, b)), float(partial))


def mentions(text: str) -> list[str]:
    """List items and bold spans of an answer (where small models name products)."""
    starts = [m.end() for m in _ITEM_START.finditer(text)]
    ends = [m.start() for m in _ITEM_START.finditer(text)][1:] + [len(text)]
    items = [text[s:e].split("\n")[0].strip() for s, e in zip(starts, ends, strict=False)]
    bold = [m.group(1) or m.group(2) for m in _BOLD.finditer(text)]
    return [m for m in [*items, *bold] if m]


def looks_like_product(mention: str) -> bool:
    """A mention that states a price or an id, or reads like a name (two or more capitalised words)."""
    if money_amounts(mention) or PRODUCT_ID.search(mention):
        return True
    return len(_CAPITALISED.findall(_MONEY.sub(" ", mention))) >= 2


def best_match(mention: str, products: Sequence[KnownProduct]) -> tuple[KnownProduct | None, float]:
    """The known product a mention names best, and how well."""
    scored = [(p, name_score(mention, p.name)) for p in products if p.name]
    if not scored:
        return None, 0.0
    return max(scored, key=lambda ps: ps[1])


def problems(answer: str, products: Sequence[KnownProduct], extra_amounts: Iterable[float] = ()) -> list[str]:
    """Why `answer` is not grounded in `products` (empty: it is). `extra_amounts` are amounts it may also say."""
    out: list[str] = []
    known_ids = {p.product_id for p in products}
    out += [f"unknown product id {pid}" for pid in dict.fromkeys(PRODUCT_ID.findall(answer)) if pid not in known_ids]
    extra = list(extra_amounts)
    allowed = allowed_amounts(products, extra)
    out += [f"price ${a:.2f} is not in the results" for a in dict.fromkeys(unsupported_prices(answer, allowed))]
    for mention in mentions(answer):
        if not looks_like_product(mention):
            continue
        product, score = best_match(mention, products)
        # A mention carrying only an id is judged by the id check above.
        if PRODUCT_ID.fullmatch(_MONEY.sub("", mention).strip(" -:()")):
            continue
        if product is None or score < NAME_MATCH:
            out.append(f"product not in the results: {mention[:80]!r}")
            continue
        own = [*extra]
        if product.price is not None:
            own += [product.price, *(abs(product.price - q.price) for q in products if q.price is not None)]
        if wrong := [a for a in money_amounts(mention) if not amount_is_known(a, own)]:
            out.append(f"price ${wrong[0]:.2f} is not the price of {product.name[:60]!r}")
    return list(dict.fromkeys(out))
