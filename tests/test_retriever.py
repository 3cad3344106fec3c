"""`ProductRetriever`, the LangChain face of retrieval: the standard retriever suite of `langchain-tests`
against the embedded Postgres and Chroma, building itself from the settings, and what its documents carry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_tests.integration_tests import RetrieversIntegrationTests

from shopagent import ProductRetriever
from shopagent.domain import SearchFilters
from shopagent.services import Services
from shopagent.settings import Settings, get_settings


class TestProductRetrieverStandard(RetrieversIntegrationTests):
    """LangChain's standard integration tests (k in the constructor and in `invoke`, documents, async)."""

    services: Services | None = None

    @pytest.fixture(autouse=True)
    def _bind_services(self, services: Services) -> None:
        """The session's services over the test catalog slice."""
        type(self).services = services

    @property
    def retriever_constructor(self) -> type[ProductRetriever]:
        """The class under test."""
        return ProductRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        """Constructor arguments (k is added by the suite)."""
        return {"services": self.services}

    @property
    def retriever_query_example(self) -> str:
        """A real shopper query with plenty of matches in the slice."""
        return "ugg slippers for women"


def test_documents_carry_the_product_and_how_it_was_found(services: Services) -> None:
    """Each document is one product: id, name as content, price, brand, cosine similarity, backend, strategy."""
    docs = ProductRetriever(services=services, strategy="pgvector_primary", k=4).invoke("ugg slippers for women")
    assert len(docs) == 4 and len({d.id for d in docs}) == 4
    for doc in docs:
        meta = doc.metadata
        assert doc.id == meta["product_id"] and doc.page_content == meta["name"]
        assert meta["backend"] == "pgvector" and meta["strategy"] == "pgvector_primary"
        assert 0.39 <= meta["similarity"] <= 1 and meta["fallback_reason"] is None
    sims = [d.metadata["similarity"] for d in docs]
    assert sims == sorted(sims, reverse=True)


def test_query_is_understood_and_fields_filter(services: Services) -> None:
    """Price phrases in the query and the `filters` field both apply; `understand_query=False` takes the text as is."""
    docs = ProductRetriever(services=services, k=5).invoke("water bottle under $15")
    assert docs and all(d.metadata["price"] is not None and d.metadata["price"] <= 15 for d in docs)
    only_ugg = ProductRetriever(services=services, k=5, filters=SearchFilters(brands=("UGG",)))
    assert {d.metadata["brand"] for d in only_ugg.invoke("slippers")} == {"UGG"}
    literal = ProductRetriever(services=services, k=5, understand_query=False).invoke("water bottle under $15")
    assert any(d.metadata["price"] is None or d.metadata["price"] > 15 for d in literal)


@pytest.fixture
def settings_env(loaded_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The environment a user would set, pointing at the test database and Chroma collection."""
    monkeypatch.setenv("DATABASE_URL", loaded_settings.database_url.get_secret_value())  # type: ignore[union-attr]
    monkeypatch.setenv("CHROMA_PERSIST_DIR", str(loaded_settings.chroma_persist_dir))
    monkeypatch.setenv("CHROMA_COLLECTION", loaded_settings.chroma_collection)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_no_arguments_builds_from_the_settings(settings_env: None) -> None:
    """`ProductRetriever()` connects, loads the model and opens Chroma from the settings on first use."""
    retriever = ProductRetriever()
    try:
        docs = retriever.invoke("toddler water bottle", k=3)
        assert len(docs) == 3 and all(d.metadata["strategy"] == "hybrid" for d in docs)
    finally:
        retriever.close()
