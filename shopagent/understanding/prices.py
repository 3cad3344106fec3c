"""Price phrases (English and Spanish) -> a price range, removed from the search text with their currency words.

A number is a price only with evidence: a currency symbol, word or code next to it ("$45", "25 bucks",
"500 pesos", "100 usd"), or a price comparator before or after it ("under 50", "menos de 500", "50 or less",
"500 para abajo", "between 20 and 40"). Never when a unit or a size/age/count word makes it a quantity
("more than 128GB", "3-5 years", "pack of 24"), nor an age for kids ("toys for kids under 5"). A bare range
("lamp 20-40") needs a currency to be a price. "around $50" is 40-60; a lone "$30" ("a $30 gift") is a target,
not a filter, but leaves the search text all the same. Number words and multipliers are read by `numbers`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shopagent.understanding.numbers import AMOUNT_NUMBER, parse_amount, words_to_digits
from shopagent.understanding.quantities import AGE_CONTEXT, MAX_AGE, overlaps, quantity_spans

CURRENCY = (
    r"(?:us\s*\$|\$|usd|us\s+dollars?|dollars?|d[oó]lares?|bucks?|pesos?(?:\s+mexicanos)?|mxn|varos|"
    r"eur|euros?|€|£|gbp)"
)
_AMOUNT = rf"(?:(?P<{{c}}1>{CURRENCY})\s*)?(?P<{{c}}>{AMOUNT_NUMBER})(?:\s*(?P<{{c}}2>{CURRENCY}))?"
_A = _AMOUNT.format(c="a")
_B = _AMOUNT.format(c="b")
_MAX_BEFORE = (
    r"under|below|less\s+than|cheaper\s+than|at\s+most|max(?:imum)?|up\s+to|no\s+more\s+than|not\s+more\s+than|"
    r"within|for\s+less\s+than|menos\s+de|menor\s+(?:a|que)|por\s+debajo\s+de|debajo\s+de|hasta|m[aá]ximo\s+de|"
    r"m[aá]ximo|no\s+m[aá]s\s+de|m[aá]s\s+barat[oa]s?\s+que|que\s+no\s+pase\s+de|que\s+cueste\s+menos\s+de|<=?"
)
_MIN_BEFORE = (
    r"over|above|more\s+than|at\s+least|min(?:imum)?|starting\s+at|m[aá]s\s+de|mayor\s+(?:a|que)|"
    r"por\s+encima\s+de|arriba\s+de|m[ií]nimo\s+de|m[ií]nimo|desde|>=?"
)
# Words that bound an amount from above or below: with a currency a price filter; before a quantity ("with more than
# 128GB") a bound that request.py leaves out of the search text.
BOUND_BEFORE = rf"{_MAX_BEFORE}|{_MIN_BEFORE}"
_MAX_AFTER = r"or\s+less|or\s+under|or\s+below|max(?:imum)?|tops|o\s+menos|para\s+abajo|como\s+m[aá]ximo|m[aá]x(?:imo)?"
_MIN_AFTER = r"or\s+more|or\s+above|and\s+up|and\s+above|\+|o\s+m[aá]s|para\s+arriba|en\s+adelante|como\s+m[ií]nimo"
_AROUND = r"around|about|approximately|roughly|alrededor\s+de|aproximadamente|cerca\s+de|como\s+de|unos"
# "around $50": the shopper's target, give or take this share.
AROUND_TOLERANCE = 0.2

# (pattern, kind); the first that matches with evidence wins, so ranges come first.
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(rf"\b(?:between|from|entre|de)\s+{_A}\s+(?:and|to|y|a|hasta)\s+{_B}", re.I), "range"),
    (re.compile(rf"(?<![\w.,]){_A}\s*(?:-|–|to|a)\s*{_B}", re.I), "bare_range"),
    (re.compile(rf"(?:\b(?:{_MAX_BEFORE})\b|<=?)\s*{_A}", re.I), "max"),
    (re.compile(rf"(?:\b(?:{_MIN_BEFORE})\b|>=?)\s*{_A}", re.I), "min"),
    (re.compile(rf"(?<![\w.,]){_A}\s*(?:\b(?:{_MAX_AFTER})\b)", re.I), "max"),
    (re.compile(rf"(?<![\w.,]){_A}\s*(?:(?:{_MIN_AFTER})(?!\w))", re.I), "min"),
    (re.compile(rf"\b(?:{_AROUND})\s+{_A}", re.I), "around"),
    (re.compile(rf"(?<![\w.,]){_A}", re.I), "target"),
]
_ORPHAN_CURRENCY = re.compile(rf"(?<!\w){CURRENCY}(?!\w)", re.I)


@dataclass(frozen=True)
class PriceRange:
    """What a message says about price; `text` is the message without the price phrase."""

    price_min: float | None
    price_max: float | None
    text: str


def _has_currency(m: re.Match[str], names: tuple[str, ...]) -> bool:
    """Whether a currency was written next to one of the amounts."""
    return any(m.group(f"{n}{side}") for n in names for side in ("1", "2"))


def _is_age(text: str, m: re.Match[str], values: list[float]) -> bool:
    """'toys for kids under 5': a small number after a comparator, for people of an age, is an age."""
    return max(values) <= MAX_AGE and bool(AGE_CONTEXT.search(text[max(0, m.start() - 40) : m.start()]))


def extract_price(text: str, language: str = "en") -> PriceRange:
    """The price range a message asks for (None where unbounded) and the message without it."""
    text = words_to_digits(text, language)
    quantities = quantity_spans(text)
    for pattern, kind in _PATTERNS:
        for m in pattern.finditer(text):
            names = ("a", "b") if "b" in m.groupdict() else ("a",)
            spans = [m.span(n) for n in names]
            if overlaps((spans[0][0], spans[-1][1]), quantities):
                continue  # "more than 128GB", "3-5 years", "pack of 24"
            values = [parse_amount(m.group(n)) for n in names]
            if any(v is None for v in values):
                continue
            amounts = [v for v in values if v is not None]
            currency = _has_currency(m, names)
            if kind in ("bare_range", "around", "target") and not currency:
                continue  # "lamp 20-40", "set of 6": no evidence it is money
            if not currency and _is_age(text, m, amounts):
                continue
            rest = (
                _ORPHAN_CURRENCY.sub(" ", text[: m.start()] + " " + text[m.end() :])
                if currency
                else (text[: m.start()] + " " + text[m.end() :])
            )
            rest = re.sub(r"\s+", " ", rest).strip()
            if kind in ("range", "bare_range"):
                return PriceRange(min(amounts), max(amounts), rest)
            if kind == "min":
                return PriceRange(amounts[0], None, rest)
            if kind == "around":
                low, high = amounts[0] * (1 - AROUND_TOLERANCE), amounts[0] * (1 + AROUND_TOLERANCE)
                return PriceRange(round(low, 2), round(high, 2), rest)
            if kind == "target":
                return PriceRange(None, None, rest)  # "a $30 gift": a target, not a filter; no money words in the text
            return PriceRange(None, amounts[0], rest)
    return PriceRange(None, None, text)
