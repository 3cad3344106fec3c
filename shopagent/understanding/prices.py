"""Price phrases (English and Spanish) -> a price range filter, removed from the search text."""

from __future__ import annotations

import re

_NUM = r"(\d{1,3}(?:[,.]\d{3})+|\d+(?:[.,]\d{1,2})?)\s*(k\b)?"
_CUR = r"(?:us\s*)?(?:\$|usd|dollars?|d[oó]lares|eur|€|euros?|pesos?|mxn)?"
_AMOUNT = rf"{_CUR}\s*{_NUM}\s*{_CUR}"

# (pattern, kind): kind is "max", "min" or "range". Order matters: ranges first.
_PRICE_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(rf"\b(?:between|from|entre|de)\s+{_AMOUNT}\s+(?:and|to|y|a|hasta)\s+{_AMOUNT}", re.I), "range"),
    (re.compile(rf"{_CUR}\s*{_NUM}\s*{_CUR}\s*(?:-|–|to)\s*{_AMOUNT}(?=\s|$)", re.I), "range_bare"),
    (
        re.compile(
            rf"(?:\b(?:under|below|less\s+than|cheaper\s+than|at\s+most|max(?:imum)?|up\s+to|no\s+more\s+than|"
            rf"within|menos\s+de|menor\s+(?:a|que)|por\s+debajo\s+de|hasta|m[aá]ximo|no\s+m[aá]s\s+de|"
            rf"m[aá]s\s+barato\s+que)|<=?)\s*{_AMOUNT}",
            re.I,
        ),
        "max",
    ),
    (
        re.compile(
            rf"(?:\b(?:over|above|more\s+than|at\s+least|min(?:imum)?|starting\s+at|m[aá]s\s+de|mayor\s+(?:a|que)|"
            rf"por\s+encima\s+de|m[ií]nimo|desde)|>=?)\s*{_AMOUNT}",
            re.I,
        ),
        "min",
    ),
]
# A bare "$30" with no comparison word is a target, not a filter; we leave it in the text.


def _amount(number: str, k_suffix: str | None) -> float:
    """'1,299.99' / '1.299' / '49,90' / '2k' -> float."""
    n = number
    if re.fullmatch(r"\d{1,3}(?:[,.]\d{3})+", n):
        n = re.sub(r"[,.]", "", n)
    else:
        n = n.replace(",", ".")
    value = float(n)
    return value * 1000 if k_suffix else value


def extract_price(text: str) -> tuple[float | None, float | None, str]:
    """(min, max, text without the price phrase)."""
    lo = hi = None
    for pattern, kind in _PRICE_PATTERNS:
        m = pattern.search(text)
        if not m:
            continue
        g = m.groups()
        if kind in ("range", "range_bare"):
            a, b = _amount(g[0], g[1]), _amount(g[2], g[3])
            lo, hi = min(a, b), max(a, b)
        elif kind == "max":
            hi = _amount(g[0], g[1])
        else:
            lo = _amount(g[0], g[1])
        text = (text[: m.start()] + " " + text[m.end() :]).strip()
        if kind.startswith("range"):
            break
    return lo, hi, text
