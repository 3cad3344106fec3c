"""Catalog lifecycle (issue 14) with a real PostgreSQL, a real Chroma and the real model: the issue's example end
to end, the full-sync guard, explicit deletions, purge, a source that is another database, drift repaired by
`shopagent doctor`, the sync lock, and the agent on a discontinued product."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from conftest import CLI_COLLECTION, chroma_mirror, make_settings, run_cli
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from agent.context import Context
from agent.deps import AgentDeps
from agent.graph import build_graph
from shopagent.db import catalog, lifecycle
from shopagent.domain import SearchFilters, SearchOptions, SearchRequest
from shopagent.retrieval.chroma import ChromaStore
from shopagent.retrieval.vectorstore import close_pg_vectorstore, make_pg_vectorstore
from shopagent.services import build_services
from shopagent.settings import Settings

MUGS = [
    {"product_id": "S1", "name": "Blue ceramic mug", "brand": "Potter", "color": "Blue", "price": 10},
    {"product_id": "S2", "name": "Red ceramic mug", "brand": "Potter", "color": "Red", "price": 12},
    {"product_id": "S3", "name": "Green ceramic mug", "brand": "Potter", "color": "Green", "price": 14},
]


class Shop:
    """A fresh database and Chroma collection driven through the CLI (the session's model, in process)."""

    def __init__(self, dsn: str, tmp: Path, embeddings: Any):
        """Remember where things are."""
        self.dsn, self.tmp, self.embeddings = dsn, tmp, embeddings
        self.settings = make_settings(dsn, tmp / "chroma").model_copy(update={"chroma_collection": CLI_COLLECTION})

    def feed(self, records: list[dict[str, Any]], name: str = "feed.jsonl") -> Path:
        """Write a JSONL feed."""
        path = self.tmp / name
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        return path

    def ingest(self, *args: str) -> tuple[int, dict[str, Any]]:
        """`shopagent ingest ARGS --stores pgvector,chroma --json --quiet`: (exit code, summary)."""
        code, out = run_cli("ingest", *args, "--stores", "pgvector,chroma", "--json", "--quiet")
        return code, json.loads(out) if out.strip() else {}

    def sync(self, records: list[dict[str, Any]], *args: str) -> tuple[int, dict[str, Any]]:
        """Ingest `records` as a feed file."""
        return self.ingest("--catalog", str(self.feed(records)), *args)

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of a query on the shop's database (fixed test SQL)."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            cur = conn.execute(query.encode() if not params else query, params or None)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    @property
    def chroma(self) -> ChromaStore:
        """The shop's Chroma collection."""
        return chroma_mirror(self.settings, self.embeddings).store


@pytest.fixture
def shop(cli_env: str, tmp_path: Path, embeddings) -> Shop:
    """A fresh shop wired into the CLI's settings."""
    return Shop(cli_env, tmp_path, embeddings)


def _searches(settings: Settings, embeddings: Any, text: str, filters: SearchFilters) -> dict[str, list[str]]:
    """Ids found for `text` by every backend and strategy, and by the langchain-postgres store."""
    services = build_services(settings, embeddings)
    try:
        request = SearchRequest(text, filters)
        vector = embeddings.embed_query(text)
        found = {
            name: [p["product_id"] for p in services.search.search(request, SearchOptions(strategy=name)).products]
            for name in ("pgvector_primary", "chroma_primary", "hybrid")
        }
        assert services.chroma is not None and services.pool is not None
        found["chroma"] = [p["product_id"] for p in services.chroma.search(vector, 10, filters)]
        with services.pool.connection() as conn:
            found["fulltext"] = [p["product_id"] for p in catalog.fulltext_search(conn, text, 10, filters)]
            s1 = catalog.get_embeddings(conn, ["S1"])["S1"]
            found["neighbours"] = [p["product_id"] for p, _ in catalog.neighbours_with_vectors(conn, "S1", s1, 10)]
        store = make_pg_vectorstore(settings, embeddings, services.dsn)
        try:
            found["pgvectorstore"] = [d.id or "" for d in store.similarity_search(text, k=10)]
        finally:
            close_pg_vectorstore(store)
        return found
    finally:
        services.close()


def test_issue_example_end_to_end(shop: Shop) -> None:
    """Issue 14's example: feed 2 changes S1's price and S2's stock without re-embedding, and both reach Chroma;
    as a full feed it drops S3, which the guard refuses (1 of 3 > 20%) until forced; S3 is then inactive in both
    stores and no backend shows it, while a lookup still finds it, marked inactive."""
    code, first = shop.sync(MUGS)
    assert code == 0 and first["embedded"] == 3 and first["chroma"]["vectors"] == 3
    feed2 = [{**MUGS[0], "price": 8.5}, {**MUGS[1], "in_stock": False}]
    code, refused = shop.sync(feed2, "--mode", "full")
    assert code == 4 and refused["deactivation"]["refused"] and refused["deactivated"] == 0
    assert (refused["updated"], refused["metadata_only"], refused["embedded"]) == (2, 2, 0)
    assert refused["chroma"] == {"vectors": 0, "metadata": 2, "deleted": 0, "invalid": []}
    meta = {pid: item["metadata"] for pid, item in shop.chroma.get(["S1", "S2", "S3"]).items()}
    assert meta["S1"]["price"] == 8.5 and meta["S2"]["in_stock"] is False and meta["S3"]["active"] is True

    code, forced = shop.sync(feed2, "--mode", "full", "--force")
    assert code == 0 and forced["deactivated"] == 1 and forced["deactivation"]["applied"]
    assert forced["chroma"]["metadata"] == 1 and forced["skipped"] == 2
    assert shop.sql("SELECT id, active FROM products ORDER BY id") == [("S1", True), ("S2", True), ("S3", False)]
    assert shop.chroma.get(["S3"])["S3"]["metadata"]["active"] is False
    cov = shop.sql("SELECT active, inactive, coverage_pct, chroma_pending FROM embedding_coverage")[0]
    assert (cov[0], cov[1], float(cov[2]), cov[3]) == (2, 1, 100.0, 0)

    found = _searches(shop.settings, shop.embeddings, "green ceramic mug", SearchFilters())
    assert all("S3" not in ids for ids in found.values()), found
    assert all(ids for name, ids in found.items()), found
    cheap = _searches(shop.settings, shop.embeddings, "ceramic mug", SearchFilters(price_max=9, in_stock=True))
    assert cheap["chroma"] == cheap["pgvector_primary"] == ["S1"]
    services = build_services(shop.settings, shop.embeddings)
    try:
        assert [(p["product_id"], p.get("active")) for p in services.search.lookup(["S3"])] == [("S3", False)]
    finally:
        services.close()


def test_full_sync_dropping_30_percent_is_refused_without_force(shop: Shop) -> None:
    """A truncated feed (7 of 10 products) must not empty the shop: refused (exit 4, nothing deactivated);
    a larger --max-deactivate-share allows it."""
    catalog10 = [{"product_id": f"P{i}", "name": f"Wooden toy number {i}", "price": i + 1} for i in range(10)]
    assert shop.sync(catalog10)[0] == 0
    code, summary = shop.sync(catalog10[:7], "--mode", "full", "--summary-json", str(shop.tmp / "s.json"))
    assert code == 4 and summary["deactivation"]["share"] == 0.3 and summary["deactivated"] == 0
    assert json.loads((shop.tmp / "s.json").read_text())["status"] == "guard_refused"
    assert shop.sql("SELECT count(*) FROM products WHERE active")[0][0] == 10
    code, summary = shop.sync(catalog10[:7], "--mode", "full", "--max-deactivate-share", "0.3")
    assert code == 0 and summary["deactivated"] == 3
    assert shop.sql("SELECT count(*) FROM products WHERE active")[0][0] == 7
    assert shop.ingest("--catalog", str(shop.feed(catalog10)), "--mode", "full", "--limit", "5")[0] == 2


def test_incremental_deletions_reactivation_and_purge(shop: Shop) -> None:
    """`deleted: true` in the feed and an ids file deactivate (nothing else changes in incremental mode); a
    product that comes back is active again; --purge-after removes long-inactive ones from both stores."""
    assert shop.sync(MUGS)[0] == 0
    ids_file = shop.tmp / "gone.txt"
    ids_file.write_text("# discontinued\nS2\n\nunknown-id\n", encoding="utf-8")
    code, summary = shop.sync([{"product_id": "S1", "deleted": True}], "--delete-ids", str(ids_file))
    assert code == 0 and summary["deactivated"] == 2 and summary["deletions_requested"] == 2
    assert shop.sql("SELECT id FROM products WHERE active") == [("S3",)]
    assert {pid: i["metadata"]["active"] for pid, i in shop.chroma.get(["S1", "S2", "S3"]).items()} == {
        "S1": False,
        "S2": False,
        "S3": True,
    }
    code, back = shop.sync([MUGS[0]])
    assert code == 0 and back["updated"] == 1 and back["embedded"] == 0
    shop.sql("UPDATE products SET price = 1 WHERE id = 'S3'")  # by hand: the next sync puts the feed's back
    code, same = shop.sync(MUGS[2:])
    assert code == 0 and same["updated"] == 1 and shop.chroma.get(["S3"])["S3"]["metadata"]["price"] == 14.0
    assert shop.sync(MUGS[2:])[1]["skipped"] == 1
    assert shop.sql("SELECT active, deactivated_at FROM products WHERE id = 'S1'") == [(True, None)]
    shop.sql("UPDATE products SET deactivated_at = now() - interval '40 days' WHERE id = 'S2'")
    code, purged = shop.sync([], "--purge-after", "30")
    assert code == 0 and purged["purged"] == 1 and purged["chroma"]["deleted"] == 1
    assert shop.sql("SELECT id FROM products ORDER BY id") == [("S1",), ("S3",)]
    assert sorted(shop.chroma.iter_ids()) == ["S1", "S3"]


def test_source_sql_from_a_second_database(shop: Shop, make_database) -> None:
    """The shop's own table in another database, with its own column names, read in batches of 2 by a
    server-side cursor: mapped by a TOML file and a --map option; a second full sync picks up a price change
    (metadata only) and a deleted row. The query runs read-only."""
    source = make_database()
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE shop_items (sku text PRIMARY KEY, title text, unit_price numeric(10, 2), maker text,"
            " tags text[], available boolean, warehouse text)"
        )
        conn.execute(
            "INSERT INTO shop_items VALUES"
            " ('K1', 'Chef knife 8 inch', 39.90, 'Edge', '{Kitchen,Knives}', true, 'north'),"
            " ('K2', 'Paring knife', 12.50, 'Edge', '{Kitchen,Knives}', false, 'south'),"
            " ('K3', 'Bread knife', 24.00, 'Crust', '{Kitchen}', true, 'north'),"
            " ('K4', 'Knife block', NULL, 'Crust', '{}', true, 'east'),"
            " ('K5', 'Honing steel', 19.99, 'Edge', '{Kitchen,Tools}', true, 'north')"
        )
    mapping = shop.tmp / "mapping.toml"
    mapping.write_text(
        '[columns]\nproduct_id = "sku"\nname = "title"\nprice = "unit_price"\nbrand = "maker"\ncategory = "tags"\n',
        encoding="utf-8",
    )
    query = "SELECT sku, title, unit_price, maker, tags, available, warehouse FROM shop_items ORDER BY sku"
    args = ["--source-url", source, "--mapping", str(mapping), "--map", "in_stock=available", "--batch-size", "2"]
    code, summary = shop.ingest("--source-sql", query, *args)
    assert code == 0 and summary["inserted"] == 5 and summary["embedded"] == 5, summary
    rows = {r["id"]: r for r in _products(shop)}
    assert float(rows["K1"]["price"]) == 39.9 and rows["K4"]["price"] is None and rows["K2"]["in_stock"] is False
    assert rows["K1"]["category"] == ["Kitchen", "Knives"] and rows["K3"]["brand"] == "Crust"
    assert rows["K5"]["attributes"] == {"warehouse": "north"}

    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("UPDATE shop_items SET unit_price = 34.90 WHERE sku = 'K1'")
        conn.execute("DELETE FROM shop_items WHERE sku = 'K4'")
    code, again = shop.ingest("--source-sql", query, *args, "--mode", "full", "--max-deactivate-share", "0.25")
    assert code == 0 and (again["metadata_only"], again["embedded"], again["deactivated"]) == (1, 0, 1)
    assert shop.chroma.get(["K1"])["K1"]["metadata"]["price"] == 34.9

    code, _ = shop.ingest("--source-sql", "INSERT INTO shop_items (sku) VALUES ('X') RETURNING *", *args)
    assert code == 2  # read-only: the source is never written
    with psycopg.connect(source) as conn:
        assert conn.execute("SELECT count(*) FROM shop_items").fetchone() == (4,)


def _products(shop: Shop) -> list[dict[str, Any]]:
    """Every product row."""
    with psycopg.connect(shop.dsn, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute("SELECT * FROM products ORDER BY id").fetchall()


def test_doctor_finds_and_repairs_drift(shop: Shop) -> None:
    """Drift injected into Chroma (a changed price, a missing id, an extra id, a flipped active flag, another
    model's name) and a zero vector in PostgreSQL are all reported; the repair fixes them without embedding (the
    zero vector is dropped, and the next sync embeds that product again), and a second check finds the stores in
    step."""
    toys = [{"product_id": f"T{i}", "name": f"Plush animal {i}", "price": 5 + i} for i in range(6)]
    assert shop.sync(toys)[0] == 0
    store = shop.chroma
    store.collection.update(ids=["T0"], metadatas=[{"price": 99.0}])
    store.collection.update(ids=["T2"], metadatas=[{"active": False}])
    store.collection.update(ids=["T3"], metadatas=[{"embedding_model": "old-model"}])
    store.delete(["T1"])
    rng = np.random.default_rng(0)
    store.collection.add(ids=["ghost"], embeddings=rng.normal(size=(1, 384)).astype(np.float32), documents=["x"])
    shop.sql("UPDATE products SET embedding = %s::vector WHERE id = 'T4'", ("[" + ",".join(["0"] * 384) + "]",))

    code, out = run_cli("doctor", "--check-only", "--json")
    report = json.loads(out)
    assert code == 1 and not report["in_step"]
    assert report["drift"] == {
        "missing_in_chroma": 1,
        "extra_in_chroma": 1,
        "model": 1,
        "vector": 0,
        "text": 0,
        "metadata": 2,
        "invalid_vector": 1,
    }
    assert report["drift_ids"]["missing_in_chroma"] == ["T1"] and report["drift_ids"]["extra_in_chroma"] == ["ghost"]
    assert report["metadata_fields"] == {"price": 1, "active": 1}

    code, out = run_cli("doctor", "--json")
    repaired = json.loads(out)["repaired"]
    assert code == 0 and repaired == {"vectors": 2, "metadata": 2, "deleted": 2, "invalid": ["T4"]}
    code, out = run_cli("doctor", "--check-only", "--json")
    assert code == 0 and json.loads(out)["in_step"], out
    meta = store.get(["T0", "T2", "T3"])
    assert meta["T0"]["metadata"]["price"] == 5.0 and meta["T2"]["metadata"]["active"] is True
    assert sorted(store.iter_ids()) == ["T0", "T1", "T2", "T3", "T5"]  # T4's zero vector is not mirrored
    code, resync = shop.sync(toys)
    assert code == 0 and resync["embedded"] == 1 and resync["chroma"]["vectors"] == 1
    assert len(store.iter_ids()) == 6


def test_two_syncs_never_overlap(shop: Shop) -> None:
    """While another session holds the sync lock, ingest and doctor exit 3 and change nothing."""
    with psycopg.connect(shop.dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (lifecycle.SYNC_LOCK_ID,))
        code, _ = shop.sync(MUGS, "--summary-json", str(shop.tmp / "locked.json"))
        assert code == 3 and json.loads((shop.tmp / "locked.json").read_text())["status"] == "locked"
        assert run_cli("doctor")[0] == 3
        assert shop.sql("SELECT count(*) FROM products") == [(0,)]
    assert shop.sync(MUGS)[0] == 0


@pytest.mark.parametrize(
    ("search", "details", "expected"),
    [
        ("I need a ceramic mug", "tell me more about the second one", "2. {name} is no longer available."),
        ("busco una taza de cerámica", "cuéntame más del segundo", "2. {name} ya no está disponible."),
    ],
)
def test_agent_says_a_discontinued_product_is_no_longer_available(
    shop: Shop, search: str, details: str, expected: str
) -> None:
    """After a search, the second product shown is discontinued by a sync; "tell me more about the second one"
    answers that it is no longer available (in the shopper's language), and a new search no longer shows it."""
    assert shop.sync([*MUGS, {"product_id": "S4", "name": "White ceramic mug", "price": 9}])[0] == 0
    services = build_services(shop.settings, shop.embeddings)
    graph = build_graph(InMemorySaver(), AgentDeps(services, use_settings_llm=False))
    thread = {"configurable": {"thread_id": uuid.uuid4().hex}}

    def turn(message: str) -> dict[str, Any]:
        """One turn of the conversation."""
        return graph.invoke({"messages": [HumanMessage(message)]}, thread, context=Context())

    try:
        shown = turn(search)["shown"]
        assert len(shown) >= 2
        gone = shown[1]
        ids = shop.tmp / "gone.txt"
        ids.write_text(gone["product_id"] + "\n", encoding="utf-8")
        assert shop.sync([], "--delete-ids", str(ids))[0] == 0
        answer = turn(details)["answer"]
        assert answer == expected.format(name=gone["name"]), answer
        assert gone["product_id"] not in [p["product_id"] for p in turn(search)["shown"]]
    finally:
        services.close()
