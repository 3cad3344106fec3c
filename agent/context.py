"""Per-run choices (editable in LangGraph Studio): retrieval strategy, k, thresholds, LLM use."""

from __future__ import annotations

from dataclasses import dataclass, field

from shopagent.settings import Strategy


@dataclass(kw_only=True)
class Context:
    """Run context; None means "the process settings' default"."""

    strategy: Strategy | None = field(
        default=None, metadata={"description": "Retrieval strategy (default: PRODUCT_SEARCH_STRATEGY)."}
    )
    k: int = field(default=5, metadata={"description": "Products listed per answer."})
    pgvector_threshold: float | None = field(
        default=None, metadata={"description": "Minimum cosine similarity for pgvector hits."}
    )
    chroma_threshold: float | None = field(
        default=None, metadata={"description": "Minimum cosine similarity for Chroma hits."}
    )
    mmr_lambda: float = field(
        default=0.6, metadata={"description": "Similar products: 1 = pure similarity, 0 = pure diversity."}
    )
    use_llm: bool = field(default=True, metadata={"description": "Use the LLM brain when a chat model is configured."})
    memory: bool = field(
        default=True,
        metadata={
            "description": "False when the conversation's memory (PostgreSQL) is unavailable: the answer says so."
        },
    )
