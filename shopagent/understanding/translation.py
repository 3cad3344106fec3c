"""Spanish words -> the catalog's English words, for exclusions and full text ("sin perlas de vidrio" must drop
"... Glass Beads"; "cobija pesada" should full-text search "blanket"), without a hand-kept dictionary for every
word: the small shop glossary first, then the nearest word of the catalog's own vocabulary under the
multilingual encoder (USE multilingual v3), when it is close enough.

Measured on 27 Spanish product words: at cosine >= 0.85 the nearest catalog word was right every time it was
taken (vidrio -> glass 0.92, ruedas -> wheels 0.90, bolsillos -> pockets 0.93, pollo -> chicken 0.88) and the
wrong neighbours stayed below (tallo -> tall 0.81, capucha -> cap 0.81, perlas -> class 0.72): such words are
kept in Spanish. Embedding the ~5,300 catalog words takes ~4 s, once per process.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cached_property

import numpy as np
from langchain_core.embeddings import Embeddings

from shopagent.understanding.glossary import ES_EN

MIN_SIMILARITY = 0.85
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
# Spanish words that are not product words: never looked up.
_KEEP = frozenset(
    "de del la las el los un una unos unas y o con sin para por en al que muy más mas menos tipo color talla "
    "marca modelo".split()
)


class TermTranslator:
    """Word-level Spanish -> English against the catalog's words (callable: `translator("perlas de vidrio")`)."""

    def __init__(self, model: Embeddings, catalog_words: Iterable[str], min_similarity: float = MIN_SIMILARITY):
        """`catalog_words`: the catalog's own (English) words; only alphabetic ones of 3+ letters are candidates."""
        self._model = model
        self._words = sorted(w for w in set(catalog_words) if w.isalpha() and len(w) >= 3)
        self._min = min_similarity
        self._cache: dict[str, str] = {}

    @cached_property
    def _matrix(self) -> np.ndarray:
        """The candidates' unit vectors (one row per word)."""
        return np.asarray(self._model.embed_documents(self._words), dtype=np.float32)

    def warm_up(self) -> None:
        """Embed the vocabulary now (service start-up)."""
        _ = self._matrix

    def word(self, word: str) -> str:
        """One Spanish word as the catalog would say it (the word itself when nothing is close enough)."""
        if not self._words:
            return word
        if word not in self._cache:
            scores = self._matrix @ np.asarray(self._model.embed_query(word), dtype=np.float32)
            best = int(np.argmax(scores))
            self._cache[word] = self._words[best] if float(scores[best]) >= self._min else word
        return self._cache[word]

    def __call__(self, text: str) -> str:
        """Every word of `text` translated where the glossary or the catalog's vocabulary knows it."""

        def one(m: re.Match[str]) -> str:
            word = m.group(0)
            low = word.lower()
            if low in ES_EN:
                return ES_EN[low]
            if low in _KEEP or len(low) < 3:
                return word
            return self.word(low)

        return _WORD.sub(one, text)
