"""Negated phrases ("without straw", "sin cordones") -> exclusion terms, removed from the search text."""

from __future__ import annotations

import re

_NEGATION = re.compile(
    r"\b(?:without|w/o|sin|excluding|except|not|no|but\s+not|free\s+of|minus)\s+"
    r"((?:(?!\b(?:and|with|for|in|y|con|para|en|but|under|below|over|menos|m[aá]s)\b)[\w'./-]+\s*){1,2})",
    re.I,
)
# "libre de azúcar" is "sugar free": kept as positive text, since products say so in their names.
_LIBRE_DE = re.compile(r"\blibres?\s+de\s+([\w'-]+)", re.I)
_NOT_NEGATIONS = {"no": {"more", "less", "matter", "longer", "tax"}}  # "no more than $50" is a price


def extract_negations(text: str) -> tuple[list[str], str]:
    """(negated phrases, text without them)."""
    terms: list[str] = []

    def keep(m: re.Match[str]) -> str:
        word = m.group(0).split()[0].lower()
        phrase = m.group(1).strip(" ,.;")
        words = phrase.split()
        if word in _NOT_NEGATIONS and words[0].lower() in _NOT_NEGATIONS[word]:
            return m.group(0)
        # Two words are negated only at the end of the query ("without glass beads"); with more
        # words after them the second starts what is wanted ("without prejudice shirt" -> "shirt").
        if len(words) == 2 and re.search(r"\w", m.string[m.end() :]):
            terms.append(words[0])
            return f" {words[1]} "
        terms.append(phrase)
        return " "

    rest = _NEGATION.sub(keep, text)
    # "listen without prejudice shirt": when a two-word negation would leave a single word to
    # search for, its last word is what is wanted (a product type), not part of the negation.
    if len(terms) == 1 and len(terms[0].split()) == 2 and len(rest.split()) <= 1:
        negated, wanted = terms[0].split()
        terms[0] = negated
        rest = f"{rest} {wanted}"
    text = rest
    text = _LIBRE_DE.sub(lambda m: f"{m.group(1)} free", text)
    return [t for t in terms if t], text
