"""The `products` table through langchain-postgres' PGVectorStore agrees with our own SQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from langchain_postgres import PGVectorStore

from shopagent.db import catalog
from shopagent.retrieval.vectorstore import close_pg_vectorstore, make_pg_vectorstore, sqlalchemy_url
from shopagent.services import Services


@pytest.fixture(scope="module")
def store(services: Services) -> Iterator[PGVectorStore]:
    """A PGVectorStore over the loaded slice's products table."""
    vs = make_pg_vectorstore(services.settings, services.embeddings, services.dsn)
    yield vs
    close_pg_vectorstore(vs)


def test_sqlalchemy_url_forms() -> None:
    """Unix-socket DSNs (the embedded server) keep the socket dir as a query parameter; TCP DSNs
    keep host, port and options; the password is never rendered by default."""
    socket = sqlalchemy_url("postgresql://postgres:@/shop?host=/srv/pg")
    assert (socket.drivername, socket.host, socket.database, socket.query["host"]) == (
        "postgresql+psycopg",
        None,
        "shop",
        "/srv/pg",
    )
    tcp = sqlalchemy_url("host=db.example port=5433 dbname=shop user=u password=s3cret sslmode=require")
    assert (tcp.host, tcp.port, tcp.username, tcp.password, tcp.query["sslmode"]) == (
        "db.example",
        5433,
        "u",
        "s3cret",
        "require",
    )
    assert "s3cret" not in str(tcp)


@pytest.mark.parametrize("qid", ["q024", "q013", "q018"])
def test_same_top_ids_as_repository(
    store: PGVectorStore, services: Services, queries: dict[str, str], qid: str
) -> None:
    """similarity_search_with_relevance_scores returns our vector_search's top ids, with the
    same cosine similarity (relevance = similarity, per STACK-NOTES), and product fields as metadata."""
    text = queries[qid]
    docs = store.similarity_search_with_relevance_scores(text, k=10)
    with services.pool.connection() as conn:
        hits = catalog.vector_search(conn, services.embeddings.embed_query(text), 10)
    assert [d.id for d, _ in docs] == [h["product_id"] for h in hits]
    for (doc, score), hit in zip(docs, hits, strict=True):
        assert score == pytest.approx(hit["similarity"], abs=1e-5)
        assert doc.metadata["name"] == hit["name"] and doc.metadata["brand"] == hit["brand"]
        assert set(doc.metadata) == {"name", "brand", "price", "in_stock"}
        assert doc.page_content  # the embedded text


def test_distance_and_filters(store: PGVectorStore, services: Services) -> None:
    """with_score gives cosine distance (1 - similarity); metadata filters work on real columns."""
    text = "ugg slippers women"
    by_distance = store.similarity_search_with_score(text, k=5)
    by_relevance = store.similarity_search_with_relevance_scores(text, k=5)
    for (_, distance), (_, relevance) in zip(by_distance, by_relevance, strict=True):
        assert distance == pytest.approx(1 - relevance, abs=1e-6)
    docs = store.similarity_search(text, k=5, filter={"brand": {"$eq": "TRESemmé"}})
    assert len(docs) == 5 and all(d.metadata["brand"] == "TRESemmé" for d in docs)
