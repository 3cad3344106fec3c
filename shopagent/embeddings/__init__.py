"""Embeddings: one factory over the configured provider and runtime (each imported lazily), the model's name
and dimension, and the start-up check that the database column fits the model.

Every embeddings object this factory returns has `model_name` (stored and hashed with each vector, and
reported by /health and traces) and `dimension`.
"""

from __future__ import annotations

from langchain_core.embeddings import Embeddings

from shopagent.embeddings.text import EMBEDDING_VERSION, content_hash, product_text
from shopagent.settings import Settings

__all__ = [
    "EMBEDDING_VERSION",
    "EmbeddingDimensionError",
    "check_dimension",
    "content_hash",
    "embedding_dimension",
    "embedding_model_name",
    "make_embeddings",
    "product_text",
]


class EmbeddingDimensionError(RuntimeError):
    """The embedding model's dimension differs from the database column's."""


def make_embeddings(settings: Settings) -> Embeddings:
    """The configured embedding model: the packaged MiniLM (`onnx-int8` or `torch` runtime) or Ollama."""
    match settings.embedding_provider, settings.embedding_runtime:
        case "local", "onnx-int8":
            from shopagent.embeddings.onnx import OnnxMiniLMEmbeddings

            return OnnxMiniLMEmbeddings(
                cache_dir=settings.model_cache_dir,
                max_seq_length=settings.embedding_max_seq_length,
                batch_size=settings.embedding_batch_size,
            )
        case "local", "torch":
            from shopagent.embeddings.sbert import LocalMiniLMEmbeddings

            return LocalMiniLMEmbeddings(
                max_seq_length=settings.embedding_max_seq_length, batch_size=settings.embedding_batch_size
            )
        case "ollama", _:
            from langchain_ollama import OllamaEmbeddings

            if not settings.ollama_base_url:
                raise ValueError("EMBEDDING_PROVIDER=ollama needs OLLAMA_BASE_URL")
            return OllamaEmbeddings(
                model=settings.embedding_model_id,
                base_url=settings.ollama_base_url,
                client_kwargs={"timeout": settings.ollama_timeout_s},
            )
        case provider, runtime:
            raise ValueError(
                f"unknown embedding provider/runtime {provider!r}/{runtime!r}; valid: local (onnx-int8, torch), ollama"
            )


def embedding_model_name(embeddings: Embeddings) -> str:
    """The name stored beside each vector: the runtime's exact name (e.g. `all-MiniLM-L6-v2-onnx-int8@64`),
    or the Ollama model's."""
    name = getattr(embeddings, "model_name", None) or getattr(embeddings, "model", None)
    if not name:
        raise ValueError(f"{type(embeddings).__name__} does not say its model name")
    return str(name)


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
            f"(EMBEDDING_PROVIDER/EMBEDDING_MODEL), or re-create the column for the new model with "
            f"`shopagent ingest --catalog PATH --reset-embeddings` (drops the stored vectors and re-embeds)."
        )
