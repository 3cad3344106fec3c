"""Misspellings in English messages ("wireles headphnes", "todler water botle"), corrected against the catalog's
own words with `rapidfuzz`. Only words that neither the catalog nor an English dictionary knows (symspellpy's
82,765-word frequency dictionary: "crate" is a word even when the catalog sells none, so it never becomes
"create"), of at least MIN_LENGTH letters, are touched, and only toward a catalog word at least MIN_SCORE similar;
brands and numbers are never changed.
Spanish messages are left alone: against an English catalog, correction turned "piel" into "pixel" (research:
70 of 96 Spanish queries changed, most wrongly), and the multilingual retriever handles them instead.
"""

from __future__ import annotations

import importlib.resources
import re
from functools import lru_cache

from rapidfuzz import fuzz, process

MIN_LENGTH = 4
MIN_SCORE = 85.0
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """The words of symspellpy's English frequency dictionary (read once, ~30 ms)."""
    text = (importlib.resources.files("symspellpy") / "frequency_dictionary_en_82_765.txt").read_text()
    return frozenset(line.split(" ", 1)[0] for line in text.splitlines() if line)


@lru_cache(maxsize=8)
def _choices(words: frozenset[str]) -> list[str]:
    """The catalog words as rapidfuzz's choice list (sorted, so ties resolve the same way every run)."""
    return sorted(words)


@lru_cache(maxsize=4096)
def _closest(word: str, words: frozenset[str]) -> str | None:
    """The catalog word closest to an unknown `word`, if close enough."""
    found = process.extractOne(word, _choices(words), scorer=fuzz.ratio, score_cutoff=MIN_SCORE)
    return str(found[0]) if found else None


def correct(text: str, catalog_words: frozenset[str], protected: frozenset[str] = frozenset()) -> str:
    """`text` with unknown words replaced by their closest catalog word (case kept lower; the rest untouched)."""
    if not catalog_words:
        return text

    def fix(m: re.Match[str]) -> str:
        word = m.group(0)
        low = word.lower()
        known = low in catalog_words or low.rstrip("s") in catalog_words or f"{low}s" in catalog_words
        known = known or low in english_words()
        if len(low) < MIN_LENGTH or known or low in protected:
            return word
        return _closest(low, catalog_words) or word

    return _WORD.sub(fix, text)
