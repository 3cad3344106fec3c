"""Bulk loads of products with precomputed vectors (binary COPY) on fresh databases: the initial load builds the
indexes once, an unchanged re-load writes nothing, changes and new vectors are applied, a catalog-wide vector
change defers the indexes, parallel streams and repeated ids, and `shopagent reindex` to a halfvec index."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from conftest import read_products, run_cli

from shopagent.db import catalog, schema
from shopagent.db.connection import connect
from shopagent.db.writes import ProductRow
from shopagent.ingest import bulk
from shopagent.ingest.reader import normalise
from shopagent.settings import get_settings

N = 300
DIM = 384


def _rows(records: list[dict[str, Any]], seed: int = 0) -> list[ProductRow]:
    """Rows with deterministic random unit vectors (loading does not care what they mean)."""
    vectors = np.random.default_rng(seed).standard_normal((len(records), DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [
        replace(normalise(r, "test-model"), embedding=v, embedding_model="test-model", embedding_version="t")
        for r, v in zip(records, vectors, strict=True)
    ]


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    """N real sample products."""
    return read_products()[:N]


def _versions(conn: psycopg.Connection) -> dict[str, str]:
    """id -> row version (xmin), to see which rows a load rewrote."""
    return {r["id"]: r["v"] for r in conn.execute("SELECT id, xmin::text AS v FROM products").fetchall()}


def _indexes(conn: psycopg.Connection) -> set[str]:
    """The search indexes that exist."""
    rows = conn.execute(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'products' AND indexname = ANY(%s)",
        ([schema.VECTOR_INDEX, schema.FULLTEXT_INDEX],),
    ).fetchall()
    return {r["indexname"] for r in rows}


def test_initial_load_then_unchanged_reload(fresh, records) -> None:
    """Empty table: COPY in chunks, indexes dropped and built once, every row searchable by text and vector. The
    same rows again: nothing written, no row rewritten, indexes kept."""
    _, conn = fresh
    rows = _rows(records)
    first = bulk.load(conn, rows, chunk_rows=128)
    assert (first.read, first.inserted, first.updated, first.initial, first.indexes_deferred) == (N, N, 0, True, True)
    assert set(first.index_build_s) == {schema.VECTOR_INDEX, schema.FULLTEXT_INDEX} and first.coverage_pct == 100.0
    assert _indexes(conn) == {schema.VECTOR_INDEX, schema.FULLTEXT_INDEX}
    assert catalog.fulltext_search(conn, records[5]["name"], 3)[0]["product_id"] == records[5]["product_id"]
    assert catalog.vector_search(conn, rows[7].embedding, 1)[0]["product_id"] == rows[7].id
    before = _versions(conn)

    again = bulk.load(conn, rows, chunk_rows=128)
    assert (again.inserted, again.updated, again.unchanged, again.initial, again.indexes_deferred) == (
        0,
        0,
        N,
        False,
        False,
    )
    assert again.index_build_s == {} and _versions(conn) == before


def test_changes_and_new_vectors_are_applied(fresh, records) -> None:
    """A renamed product, a new vector for another, a new product: exactly those are written."""
    _, conn = fresh
    rows = _rows(records)
    bulk.load(conn, rows)
    before = _versions(conn)
    changed = list(rows)
    changed[3] = replace(rows[3], name="Renamed bulk product", embedding=None)
    changed[4] = replace(rows[4], embedding=np.roll(np.asarray(rows[4].embedding), 1))
    extra = _rows([{**records[0], "product_id": "bulk-new"}], seed=1)
    summary = bulk.load(conn, changed + extra)
    assert (summary.inserted, summary.updated, summary.unchanged, summary.indexes_deferred) == (1, 2, N - 2, False)
    after = _versions(conn)
    assert {p for p in before if after[p] != before[p]} == {rows[3].id, rows[4].id}
    stored = catalog.get_products(conn, [rows[3].id])[0]
    vectors = catalog.get_embeddings(conn, [rows[3].id, rows[4].id])
    assert stored["name"] == "Renamed bulk product" and np.array_equal(vectors[rows[3].id], rows[3].embedding)
    assert np.array_equal(vectors[rows[4].id], changed[4].embedding)


def test_new_vectors_for_the_catalog_defer_the_indexes(fresh, records) -> None:
    """Re-indexing with new vectors for most products drops the search indexes and builds them once at the end."""
    _, conn = fresh
    bulk.load(conn, _rows(records))
    summary = bulk.load(conn, _rows(records, seed=2), chunk_rows=100)
    assert (summary.updated, summary.indexes_deferred) == (N, True)
    assert set(summary.index_build_s) == {schema.VECTOR_INDEX, schema.FULLTEXT_INDEX}
    assert _indexes(conn) == {schema.VECTOR_INDEX, schema.FULLTEXT_INDEX}


def test_parallel_streams_and_repeated_ids(fresh, records) -> None:
    """An initial load over three connections, with ids repeated across chunks (the last one wins)."""
    settings, conn = fresh
    rows = _rows(records)
    repeated = [replace(rows[0], name="Repeated, last version"), replace(rows[1], price=1.25)]
    streams = [connect(settings) for _ in range(2)]
    try:
        summary = bulk.load(conn, rows + repeated, chunk_rows=64, streams=streams)
    finally:
        for s in streams:
            s.close()
    assert catalog.product_count(conn) == N and summary.read == N + 2
    assert summary.inserted + summary.updated == N + 2
    got = {p["id"]: p for p in catalog.get_products(conn, [rows[0].id, rows[1].id])}
    assert got[rows[0].id]["name"] == "Repeated, last version" and got[rows[1].id]["price"] == 1.25


def test_reindex_to_halfvec(fresh, records, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`shopagent reindex` with HNSW_HALFVEC and a smaller graph: the index is rebuilt on embedding::halfvec with the
    new m, halfvec queries use it, and the similarities reported are still the full-precision ones."""
    settings, conn = fresh
    rows = _rows(records)
    bulk.load(conn, rows)
    for name, value in {"HNSW_HALFVEC": "true", "HNSW_M": "8", "HNSW_EF_CONSTRUCTION": "32"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DATABASE_URL", settings.database_url.get_secret_value())
    monkeypatch.chdir(tmp_path)  # no stray .env
    get_settings.cache_clear()
    try:
        code, out = run_cli("reindex", "--json")
    finally:
        get_settings.cache_clear()
    definition = json.loads(out)["index"]
    assert code == 0 and definition == schema.vector_index_definition(conn)
    assert "halfvec(384)" in definition and "halfvec_cosine_ops" in definition and "m='8'" in definition
    q = np.asarray(rows[9].embedding)
    with conn.transaction():
        conn.execute("SET LOCAL enable_seqscan = off")
        conn.execute("SET LOCAL enable_sort = off")
        hits = catalog.vector_search(conn, q, 5, halfvec=True)
        plan = conn.execute(
            "EXPLAIN SELECT id FROM products p ORDER BY p.embedding::halfvec(384) <=> %s::halfvec(384) LIMIT 5", (q,)
        ).fetchall()
    assert schema.VECTOR_INDEX in "\n".join(r["QUERY PLAN"] for r in plan)
    assert hits[0]["product_id"] == rows[9].id and hits[0]["similarity"] == pytest.approx(1.0, abs=1e-6)
