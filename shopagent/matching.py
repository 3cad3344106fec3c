"""The exclusion rule shared by every backend: when does a product name mention a negated term, and when
does the name itself say it lacks it ("Desk Chair, No Wheels" is what "chair without wheels" wants).

The same regexes run in PostgreSQL (`\\y` word boundaries) and in Python (`\\b`), so pgvector, full text and
Chroma exclude exactly the same products.
"""

from __future__ import annotations

import re

_NEGATORS = r"(?:without|w/o|no|non|not|free\s+of|sin|zero|absent)"


def _term_regex(term: str, boundary: str) -> str:
    """Words of `term` in order (plural/suffix tolerant), each escaped."""
    words = [re.escape(w.lower().rstrip("s") or w.lower()) for w in re.findall(r"[\w'./-]+", term)]
    return r"\W+(?:\w+\W+){0,2}".join(f"{boundary}{w}\\w*" for w in words)


def exclusion_patterns(term: str, boundary: str = r"\b") -> tuple[str, str]:
    """(mentions, negated mention) regexes for a negated term, applied to product names.

    A product is excluded when its name mentions the term, unless the name itself negates it
    ("Belt without Buckle", "Sugar-Free Gum"): those are exactly what the shopper asked for.
    `boundary` is `\\b` for Python and `\\y` for PostgreSQL regexes.
    """
    body = _term_regex(term, boundary)
    negated = rf"{boundary}{_NEGATORS}\W+(?:\w+\W+){{0,2}}?{body}|{body}\W*(?:free|less){boundary}"
    return body, negated


def name_negates(name: str, terms: tuple[str, ...]) -> bool:
    """True when the name itself says it lacks a negated term ("Desk Chair, No Wheels"): an explicit match."""
    return any(re.search(exclusion_patterns(term)[1], name, re.I) for term in terms)


def name_is_excluded(name: str, terms: tuple[str, ...]) -> bool:
    """Python twin of the SQL exclusion (used where filtering happens outside PostgreSQL)."""
    for term in terms:
        mention, negated = exclusion_patterns(term)
        if re.search(mention, name, re.I) and not re.search(negated, name, re.I):
            return True
    return False


def color_is_excluded(name: str, color: str | None, colors: tuple[str, ...]) -> bool:
    """True when a product's colour field or name mentions an excluded colour (Python twin of the SQL)."""
    text = f"{color or ''} {name}".lower()
    return any(re.search(rf"\b{re.escape(c.lower())}\b", text) for c in colors)
