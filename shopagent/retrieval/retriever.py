"""`ProductRetriever`: the whole strategy switch as a standard LangChain retriever.

    from shopagent import ProductRetriever
    retriever = ProductRetriever()                 # from the settings: DATABASE_URL or the embedded server
    docs = retriever.invoke("velvet sofa under $800", k=5)

Each `Document` is one product: `page_content` is its name, `id` its product id, and `metadata` carries
product_id, name, brand, price, image_url, similarity (cosine), score (the serving backend's), backend,
strategy, fallback_reason and weak_matches. Price phrases and negations in the query become filters
(`understand_query=True`, the default), as in the agent.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, PrivateAttr

from shopagent.domain import NO_FILTERS, SearchFilters, SearchOptions, SearchRequest, SearchResult
from shopagent.services import Services, build_services
from shopagent.settings import Strategy, get_settings


class ProductRetriever(BaseRetriever):
    """Products for a shopper query through the configured strategy (pgvector_primary, chroma_primary, hybrid).

    Fields: `strategy` (None: PRODUCT_SEARCH_STRATEGY), `k` (None: SEARCH_K; also an `invoke(..., k=N)`
    keyword), `filters` (always applied, merged with what the query says), per-backend thresholds (None: the
    calibrated settings), `understand_query`. `services` may be given (tests, the agent); otherwise they are
    built from the settings on first use and closed by `close()`.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    strategy: Strategy | None = None
    k: int | None = Field(default=None, ge=1, le=100)
    filters: SearchFilters = NO_FILTERS
    pgvector_threshold: float | None = None
    chroma_threshold: float | None = None
    understand_query: bool = True
    services: Services | None = Field(default=None, exclude=True)
    _owned: Services | None = PrivateAttr(default=None)

    def _services(self) -> Services:
        """The given services, or ones built from the settings once."""
        if self.services is not None:
            return self.services
        if self._owned is None:
            self._owned = build_services(get_settings())
        return self._owned

    def search(self, query: str, k: int | None = None) -> SearchResult:
        """The full `SearchResult` (products, backend, fallbacks) for `query`."""
        request = self._services().parse(query) if self.understand_query else SearchRequest(query)
        if not self.filters.is_empty:
            request = SearchRequest(request.text, request.filters.merged(self.filters), request.language, query)
        options = SearchOptions(
            k=k or self.k,
            strategy=self.strategy,
            pgvector_threshold=self.pgvector_threshold,
            chroma_threshold=self.chroma_threshold,
        )
        return self._services().search.search(request, options)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None, **kwargs: Any
    ) -> list[Document]:
        """Documents for the products of `search` (best first)."""
        result = self.search(query, k)
        meta = {
            "strategy": result.strategy,
            "fallback_reason": result.fallback_reason,
            "weak_matches": result.weak_matches,
        }
        return [
            Document(
                page_content=p["name"],
                id=p["product_id"],
                metadata={
                    "product_id": p["product_id"],
                    "name": p["name"],
                    "brand": p["brand"],
                    "price": p["price"],
                    "image_url": p["image_url"],
                    "similarity": p["similarity"],
                    "score": p["score"],
                    "backend": p["backend"],
                    **meta,
                },
            )
            for p in result.products
        ]

    def close(self) -> None:
        """Close services this retriever built itself (given ones belong to the caller)."""
        if self._owned is not None:
            self._owned.close()
            self._owned = None
