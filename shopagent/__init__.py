"""shopagent: product search for online shops over PostgreSQL + pgvector (and Chroma), with a LangGraph agent.

`from shopagent import ProductRetriever` gives the whole strategy switch as a LangChain retriever.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"
__all__ = ["ProductRetriever", "__version__"]

if TYPE_CHECKING:
    from shopagent.retrieval.retriever import ProductRetriever


def __getattr__(name: str) -> Any:
    """Import the retriever on first use: importing the package does no work."""
    if name == "ProductRetriever":
        from shopagent.retrieval.retriever import ProductRetriever

        return ProductRetriever
    raise AttributeError(f"module 'shopagent' has no attribute {name!r}")
