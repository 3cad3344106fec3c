"""The catalog's own vocabulary (brands and category names), for recognising them in messages."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Vocabulary:
    """Brands and category names of the catalog (lower-case), for recognising them in messages."""

    brands: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()

    def find_brand(self, text: str) -> str | None:
        """The longest catalog brand that `text` names as a whole word (case-insensitive)."""
        return _longest_known(text, self.brands)

    def find_category(self, text: str) -> str | None:
        """The longest catalog category that `text` names as a whole phrase."""
        return _longest_known(text, self.categories)


def _longest_known(text: str, known: frozenset[str]) -> str | None:
    """Longest 1-3 word n-gram of `text` (singular or plural) that is in `known`."""
    words = re.findall(r"[\w'&.-]+", text.lower())
    best: str | None = None
    for n in (3, 2, 1):
        for i in range(len(words) - n + 1):
            gram = " ".join(words[i : i + n])
            for cand in (gram, gram + "s", gram.rstrip("s")):
                if len(cand) >= 2 and cand in known and (best is None or len(cand) > len(best)):
                    best = cand
    return best
