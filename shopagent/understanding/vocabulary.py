"""The catalog's own vocabulary: brands, category names and the words of product names, for recognising
brands and categories in messages, telling English catalog words from Spanish, and correcting misspellings."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# A brand must name at least this many products to be recognised as a filter ("only Nike").
MIN_BRAND_PRODUCTS = 2
# A name word must appear in this many products to count as a catalog word (filters one-off typos in names).
MIN_WORD_PRODUCTS = 2
_WORD = re.compile(r"[a-z][a-z0-9'-]*[a-z0-9]|[a-z]")


def name_words(text: str) -> list[str]:
    """Lower-case words of a product name or message (letters first; numbers and punctuation dropped)."""
    return _WORD.findall(text.lower())


@dataclass(frozen=True)
class Vocabulary:
    """Brands, category names and product-name words of the catalog (all lower-case)."""

    brands: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    words: frozenset[str] = frozenset()

    @classmethod
    def from_counts(cls, brands: Mapping[str, int], categories: Iterable[str], words: Mapping[str, int]) -> Vocabulary:
        """From product counts per brand and per name word (what the catalog SQL returns)."""
        return cls(
            frozenset(b for b, n in brands.items() if n >= MIN_BRAND_PRODUCTS and len(b) >= 2),
            frozenset(categories),
            frozenset(w for w, n in words.items() if n >= MIN_WORD_PRODUCTS and len(w) >= 2),
        )

    @classmethod
    def from_products(cls, products: Iterable[Mapping[str, Any]]) -> Vocabulary:
        """From raw catalog records (evaluation and tests; the service reads the counts from PostgreSQL)."""
        brands: Counter[str] = Counter()
        categories: set[str] = set()
        words: Counter[str] = Counter()
        for p in products:
            if brand := str(p.get("brand") or "").strip().lower():
                brands[brand] += 1
            categories.update(str(c).strip().lower() for c in p.get("category") or [] if str(c).strip())
            words.update(set(name_words(str(p.get("name") or ""))))
        return cls.from_counts(brands, categories, words)

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
