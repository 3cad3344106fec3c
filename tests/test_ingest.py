"""Ingest on fresh databases with real products and the real model: counts, incremental re-embedding,
patchy records, CSV input, model failures, dimension mismatches, hostile text, and kill-and-resume."""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from conftest import read_products, run_cli
from langchain_core.embeddings import Embeddings

from shopagent.db import catalog
from shopagent.domain import SearchFilters
from shopagent.embeddings import EmbeddingDimensionError
from shopagent.embeddings.sbert import LocalMiniLMEmbeddings
from shopagent.ingest.pipeline import IngestSummary, ingest
from shopagent.ingest.reader import read_catalog
from shopagent.retrieval.chroma import ChromaStore
from shopagent.services import prepare_database
from shopagent.settings import PROJECT_ROOT, get_settings

MODEL = "test-model"


@pytest.fixture(scope="module")
def products() -> list[dict[str, Any]]:
    """The sample catalog's raw records (read once per module)."""
    return read_products()


def _run(conn: psycopg.Connection, emb: Embeddings, records: list[dict[str, Any]], **kw: Any) -> IngestSummary:
    """Ingest `records` with the model name the real model reports."""
    return ingest(conn, emb, getattr(emb, "model_name", MODEL), records, **kw)


def _count(conn: psycopg.Connection, where: str = "TRUE") -> int:
    """Rows of products matching a fixed predicate written in this test file."""
    return conn.execute(f"SELECT count(*) AS n FROM products WHERE {where}").fetchone()["n"]  # noqa: S608


def test_incremental_reingest(fresh, embeddings, products) -> None:
    """120 real products in; a re-run embeds nothing; a renamed product (only it) is re-embedded;
    a price-only change updates the row without re-embedding."""
    _, conn = fresh
    records = copy.deepcopy(products[:120])
    first = _run(conn, embeddings, records, batch_size=64)
    assert (first.read, first.inserted, first.updated, first.embedded, first.errors) == (120, 120, 0, 120, 0)
    assert first.coverage_pct == 100.0 and _count(conn) == 120

    again = _run(conn, embeddings, records, batch_size=64)
    assert (again.embedded, again.inserted, again.updated, again.skipped, again.errors) == (0, 0, 0, 120, 0)

    target = records[17]
    before = catalog.get_embeddings(conn, [target["product_id"]])[target["product_id"]]
    others = catalog.get_embeddings(conn, [r["product_id"] for r in records[:40]])
    target["name"] = "Renamed: stainless steel insulated camping mug"
    renamed = _run(conn, embeddings, records, batch_size=64)
    assert (renamed.embedded, renamed.updated, renamed.inserted, renamed.skipped) == (1, 1, 0, 119)
    after = catalog.get_embeddings(conn, [r["product_id"] for r in records[:40]])
    assert not np.allclose(after[target["product_id"]], before)
    assert all(np.array_equal(after[p], v) for p, v in others.items() if p != target["product_id"])
    row = conn.execute(
        "SELECT name, embedded_text, embedding_stale FROM products WHERE id = %s", (target["product_id"],)
    ).fetchone()
    assert (
        row["name"] == target["name"] and row["embedded_text"].startswith(target["name"]) and not row["embedding_stale"]
    )

    priced = records[33]
    priced["price"] = 12.34
    stamp = conn.execute("SELECT last_embedding_update FROM products WHERE id = %s", (priced["product_id"],)).fetchone()
    price_only = _run(conn, embeddings, records, batch_size=64)
    assert (price_only.embedded, price_only.updated, price_only.inserted) == (0, 1, 0)
    row = conn.execute(
        "SELECT price, embedding_stale, last_embedding_update FROM products WHERE id = %s", (priced["product_id"],)
    ).fetchone()
    assert float(row["price"]) == 12.34 and not row["embedding_stale"]
    assert row["last_embedding_update"] == stamp["last_embedding_update"]
    assert catalog.coverage(conn)["coverage_pct"] == 100


def test_force_reembeds_everything(fresh, embeddings, products) -> None:
    """--force embeds every product again, unchanged or not."""
    _, conn = fresh
    _run(conn, embeddings, products[:10])
    forced = _run(conn, embeddings, products[:10], force=True)
    assert forced.embedded == 10 and forced.errors == 0 and _count(conn) == 10


def test_nulls_and_empties_never_drop_a_product(fresh, embeddings, products) -> None:
    """Patchy records (nulls, blanks, junk numbers, NaN) are all stored: count in == rows out."""
    _, conn = fresh
    patchy: list[dict[str, Any]] = [
        {"product_id": "only-id"},
        {
            "product_id": "nulls",
            "name": None,
            "description": None,
            "bullet_points": None,
            "brand": None,
            "color": None,
            "category": None,
            "price": None,
            "rating": None,
            "rating_count": None,
            "image": None,
        },
        {
            "product_id": "blanks",
            "name": "",
            "brand": "   ",
            "category": [],
            "bullet_points": ["", "  "],
            "price": "",
            "rating": "",
            "in_stock": "",
        },
        {
            "product_id": "junk",
            "name": "Lamp",
            "price": "call us",
            "rating": float("nan"),
            "rating_count": "n/a",
            "category": "Home|Lighting",
            "extra_field": "kept in attributes",
        },
        {"product_id": 12345, "title": "Numeric id, title instead of name", "price": "$1,299.50"},
    ]
    real = products[:20]
    assert sum(p.get("price") is None for p in real) > 5  # the real catalog has many null prices
    summary = _run(conn, embeddings, real + patchy, batch_size=16)
    assert summary.errors == 0 and summary.read == len(real) + len(patchy)
    assert _count(conn) == len(real) + len(patchy) and _count(conn, "embedding IS NULL") == 0
    rows = {r["id"]: r for r in catalog.get_products(conn, ["only-id", "nulls", "blanks", "junk", "12345"])}
    assert rows["nulls"]["price"] is None and rows["nulls"]["brand"] is None and rows["nulls"]["category"] == []
    assert rows["blanks"]["brand"] is None and rows["blanks"]["bullet_points"] == [] and rows["blanks"]["in_stock"]
    assert rows["junk"]["price"] is None and rows["junk"]["category"] == ["Home", "Lighting"]
    assert rows["junk"]["attributes"] == {"extra_field": "kept in attributes"}
    assert rows["12345"]["name"] == "Numeric id, title instead of name" and float(rows["12345"]["price"]) == 1299.5


def test_record_without_id_is_an_error_not_a_crash(fresh, embeddings, products) -> None:
    """A record with no id can't be stored: it is counted as an error and the rest still load."""
    _, conn = fresh
    summary = _run(conn, embeddings, products[:5] + [{"name": "no id"}, {"product_id": "  "}])
    assert summary.errors == 2 and _count(conn) == 5
    assert any("without product_id" in m for m in summary.error_samples)


def test_csv_catalog(fresh, embeddings, tmp_path) -> None:
    """CSV input: '|' or JSON-array lists, '$' prices, yes/no booleans."""
    _, conn = fresh
    path = tmp_path / "catalog.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(
            fh, fieldnames=["product_id", "name", "brand", "category", "bullet_points", "price", "in_stock", "color"]
        )
        writer.writeheader()
        writer.writerow(
            {
                "product_id": "c1",
                "name": "Trail running shoes",
                "brand": "Salomon",
                "category": "Shoes|Running",
                "bullet_points": '["Grippy sole", "Light"]',
                "price": "$89.90",
                "in_stock": "no",
                "color": "Blue",
            }
        )
        writer.writerow(
            {
                "product_id": "c2",
                "name": "Espresso machine, 15 bar",
                "brand": "",
                "category": "",
                "bullet_points": "",
                "price": "",
                "in_stock": "yes",
                "color": "",
            }
        )
    records = list(read_catalog(path))
    summary = _run(conn, embeddings, records)
    assert (summary.inserted, summary.embedded, summary.errors) == (2, 2, 0)
    c1, c2 = catalog.get_products(conn, ["c1", "c2"])
    assert c1["category"] == ["Shoes", "Running"] and c1["bullet_points"] == ["Grippy sole", "Light"]
    assert float(c1["price"]) == 89.9 and c1["in_stock"] is False and c1["color"] == "Blue"
    assert c2["price"] is None and c2["brand"] is None and c2["in_stock"] is True


class FlakyEmbeddings(Embeddings):
    """The real model, except that any batch containing `poison` fails (as a model server might)."""

    def __init__(self, inner: LocalMiniLMEmbeddings, poison: str):
        """Wrap the real model."""
        self.inner, self.poison = inner, poison
        self.model_name, self.dimension = inner.model_name, inner.dimension

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Fail the whole batch if it holds the poison text."""
        if any(self.poison in t for t in texts):
            raise ConnectionError("model server went away")
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        """Queries always work."""
        return self.inner.embed_query(text)


def test_embedding_failure_is_counted_and_never_a_zero_vector(fresh, embeddings, products) -> None:
    """A failing batch counts as errors; its rows are stored without a vector (stale, hash blank so
    they retry), other batches are fine, and a later good run embeds exactly the failed ones."""
    _, conn = fresh
    records = copy.deepcopy(products[:40])
    records[20]["name"] = "POISON " + records[20]["name"]
    flaky = FlakyEmbeddings(embeddings, "POISON")
    summary = _run(conn, flaky, records, batch_size=16)
    assert summary.errors == 16 and summary.embedded == 24 and summary.inserted == 40
    assert "model server went away" in summary.error_samples[0]
    failed_ids = [r["product_id"] for r in records[16:32]]
    rows = conn.execute(
        "SELECT id, embedding, embedding_stale, content_hash FROM products WHERE id = ANY(%s)", (failed_ids,)
    ).fetchall()
    assert len(rows) == 16 and all(
        r["embedding"] is None and r["embedding_stale"] and r["content_hash"] == "" for r in rows
    )
    assert catalog.coverage(conn)["missing"] == 16 and summary.coverage_pct == 60.0

    retry = _run(conn, embeddings, records, batch_size=16)
    assert retry.errors == 0 and retry.embedded == 16 and retry.skipped == 24
    assert catalog.coverage(conn)["coverage_pct"] == 100


@pytest.fixture
def cli_env(make_database: Callable[[], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Environment for running scripts/ingest.py in-process against a fresh database; returns the DSN."""
    dsn = make_database()
    monkeypatch.setenv("DATABASE_URL", dsn)
    monkeypatch.setenv("CHROMA_PERSIST_DIR", str(tmp_path / "chroma"))
    monkeypatch.setenv("CHROMA_COLLECTION", "cli_test")
    monkeypatch.chdir(tmp_path)  # no stray .env
    get_settings.cache_clear()
    yield dsn
    get_settings.cache_clear()


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    """Write records as JSONL."""
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_cli_exits_nonzero_on_embedding_errors(cli_env, tmp_path, embeddings, products, monkeypatch, capsys) -> None:
    """The ingest CLI reports the failed products and exits 1; a clean run exits 0."""
    records = copy.deepcopy(products[:12])
    records[3]["name"] = "POISON " + records[3]["name"]
    feed = _write_jsonl(tmp_path / "c.jsonl", records)
    monkeypatch.setattr("shopagent.ingest.make_embeddings", lambda s: FlakyEmbeddings(embeddings, "POISON"))
    code, out = run_cli("ingest", "--catalog", str(feed), "--batch-size", "8", "--json", "--quiet")
    assert code == 1
    assert json.loads(out)["errors"] == 8 and json.loads(out)["embedded"] == 4
    monkeypatch.setattr("shopagent.ingest.make_embeddings", lambda s: embeddings)
    code, out = run_cli("ingest", "--catalog", str(feed), "--batch-size", "8", "--json", "--quiet")
    assert code == 0
    summary = json.loads(out)
    assert summary["errors"] == 0 and summary["embedded"] == 8 and summary["coverage_pct"] == 100.0


class Fake768(Embeddings):
    """A deterministic 768-dim model (hash-seeded unit vectors), standing in for nomic-embed-text."""

    model_name = "fake-768"
    dimension = 768

    def _vec(self, text: str) -> list[float]:
        """A unit vector seeded by the text."""
        rng = np.random.default_rng(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little"))
        v = rng.standard_normal(self.dimension)
        return (v / np.linalg.norm(v)).tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Vectors for documents."""
        return [self._vec(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        """Vector for a query."""
        return self._vec(text)


def test_dimension_mismatch_is_a_clear_error(fresh, cli_env, tmp_path, monkeypatch) -> None:
    """A 384-dim column and a 768-dim model: a clear error naming both numbers and the fix, from
    the library and from the CLI (exit 2), before anything is written."""
    settings, conn = fresh
    with pytest.raises(EmbeddingDimensionError) as err:
        prepare_database(settings, Fake768(), settings.database_url.get_secret_value())
    message = str(err.value)
    assert "768" in message and "vector(384)" in message and "--reset-embeddings" in message and "fake-768" in message

    monkeypatch.setenv("DATABASE_URL", settings.database_url.get_secret_value())
    get_settings.cache_clear()
    monkeypatch.setattr("shopagent.ingest.make_embeddings", lambda s: Fake768())
    feed = _write_jsonl(tmp_path / "one.jsonl", [{"product_id": "x", "name": "Mug"}])
    assert run_cli("ingest", "--catalog", str(feed), "--quiet")[0] == 2
    assert _count(conn) == 0


HOSTILE = [
    {
        "product_id": "'; DROP TABLE products; --",
        "name": "Robert'); DROP TABLE products; -- mug",
        "brand": "'; DROP TABLE products; --",
        "category": ["Kitchen", "100% _Mugs_"],
        "color": "50% grey",
        "price": 9.5,
    },
    {
        "product_id": 'O\'Brien "x" \\ % _',
        "name": 'O\'Brien "x" \\ % _ leather wallet',
        "brand": 'O\'Brien "x" \\ % _',
        "category": ["Wallets"],
        "color": "Brown",
        "price": 25,
    },
    {
        "product_id": "ünï-日本-🧦",
        "name": "Calcetines de lana ñandú 日本 🧦",
        "brand": "Ñandú",
        "category": ["Ropa"],
        "color": "Rojo",
        "price": 7,
    },
    {
        "product_id": "cpp-book",
        "name": "Learning C++ (x) Programming book",
        "brand": "Books & Co",
        "category": ["Books"],
        "price": 30,
    },
    {
        "product_id": "plain-book",
        "name": "Learning Python Programming book",
        "brand": "Books & Co",
        "category": ["Books"],
        "price": 31,
    },
]


def test_hostile_text_is_stored_and_searched_safely(fresh, embeddings, products, tmp_path) -> None:
    """Ids, names, brands and categories full of quotes, SQL, LIKE and regex metacharacters and
    unicode are stored verbatim and searched by every path without errors or injection."""
    settings, conn = fresh
    chroma = ChromaStore.from_settings(settings, embeddings)
    records = products[:20] + copy.deepcopy(HOSTILE)
    summary = _run(conn, embeddings, records, on_batch=chroma.upsert_rows)
    assert summary.errors == 0 and _count(conn) == 25 and chroma.count() == 25
    ids = [h["product_id"] for h in HOSTILE]
    stored = catalog.get_products(conn, ids)
    assert [r["id"] for r in stored] == ids and [r["name"] for r in stored] == [h["name"] for h in HOSTILE]

    for text in ("'; DROP TABLE products; --", 'O\'Brien "x" \\ % _', "日本 🧦 ñandú", "c++ (x)", "%", "\\"):
        qvec = embeddings.embed_query(text)
        assert len(catalog.vector_search(conn, qvec, 5)) == 5
        catalog.fulltext_search(conn, text, 5)
        assert len(chroma.search(qvec, 5)) == 5
    assert catalog.fulltext_search(conn, "O'Brien wallet", 3)[0]["product_id"] == 'O\'Brien "x" \\ % _'
    top = catalog.vector_search(conn, embeddings.embed_query('O\'Brien "x" leather wallet'), 1)
    assert top[0]["product_id"] == 'O\'Brien "x" \\ % _'

    qvec = embeddings.embed_query("mug wallet socks book")
    brand = SearchFilters(brands=('O\'Brien "x" \\ % _',))
    for backend in (lambda f: catalog.vector_search(conn, qvec, 10, f), lambda f: chroma.search(qvec, 10, f)):
        assert [h["product_id"] for h in backend(brand)] == ['O\'Brien "x" \\ % _']
        assert [h["product_id"] for h in backend(SearchFilters(brands=("'; DROP TABLE products; --",)))] == [ids[0]]
        # LIKE metacharacters are literal: '%' and '_' match only categories/colours containing them.
        assert [h["product_id"] for h in backend(SearchFilters(categories=("100% _mugs_",)))] == [ids[0]]
        assert [h["product_id"] for h in backend(SearchFilters(categories=("%",)))] == [ids[0]]
        assert [h["product_id"] for h in backend(SearchFilters(colors=("50% grey",)))] == [ids[0]]
        assert {h["product_id"] for h in backend(SearchFilters(brands=("Ñandú",)))} == {ids[2]}
        # Regex metacharacters in an exclusion are literal: 'c++ (x)' excludes only that book.
        kept = {h["product_id"] for h in backend(SearchFilters(brands=("books & co",), exclude_terms=("c++ (x)",)))}
        assert kept == {"plain-book"}
        assert ids[0] not in {h["product_id"] for h in backend(SearchFilters(exclude_ids=(ids[0],)))}
    assert _count(conn) == 25  # the table is still there, with everything in it
    assert (
        catalog.fulltext_search(conn, "'; DROP TABLE products; --", 5, SearchFilters(brands=("x') OR 1=1 --",))) == []
    )


@pytest.mark.slow
def test_killed_ingest_resumes_without_duplicates(
    cli_env, tmp_path: Path, embeddings, products, monkeypatch, capsys
) -> None:
    """SIGKILL `scripts/ingest.py` after its first batches commit, run it again: 120 distinct rows,
    full coverage in both stores, and the second run embedded only what the first didn't finish.
    (The re-run is in-process with the session's model, to save a second model load.)"""
    dsn = cli_env
    feed = _write_jsonl(tmp_path / "catalog.jsonl", products[1000:1150])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LANGSMITH_TRACING": "false"}
    args = [
        "--catalog",
        str(feed),
        "--batch-size",
        "16",
        "--limit",
        "120",
        "--stores",
        "pgvector,chroma",
        "--json",
        "--quiet",
    ]
    first = subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "ingest.py"), *args],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 150
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline and first.poll() is None:
            exists = conn.execute("SELECT to_regclass('products') IS NOT NULL").fetchone()[0]
            if exists and conn.execute("SELECT count(*) FROM products").fetchone()[0] >= 16:
                break
            time.sleep(0.02)
        assert first.poll() is None, f"the first run ended before it could be killed: {first.stderr.read()[-2000:]!r}"
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        first.stderr.close()
        assert first.returncode == -signal.SIGKILL
        done_before = conn.execute("SELECT count(*) FROM products").fetchone()[0]
        assert 16 <= done_before < 120 and done_before % 16 == 0  # whole batches only

        monkeypatch.setattr("shopagent.ingest.make_embeddings", lambda s: embeddings)
        code, out = run_cli("ingest", *args)
        assert code == 0
        summary = json.loads(out)
        assert summary["embedded"] == 120 - done_before and summary["skipped"] == done_before
        assert summary["inserted"] == 120 - done_before and summary["errors"] == 0
        total, distinct = conn.execute("SELECT count(*), count(DISTINCT id) FROM products").fetchone()
        assert total == distinct == 120
        cov = conn.execute("SELECT coverage_pct, stale, missing FROM embedding_coverage").fetchone()
        assert (float(cov[0]), cov[1], cov[2]) == (100.0, 0, 0)
        expected = sorted(str(p["product_id"]) for p in products[1000:1120])
        assert sorted(r[0] for r in conn.execute("SELECT id FROM products")) == expected
        # The killed initial load had dropped the HNSW index to build it once at the end; the resumed
        # run rebuilt it.
        assert conn.execute("SELECT to_regclass('products_embedding_hnsw') IS NOT NULL").fetchone()[0]
    assert sorted(ChromaStore(tmp_path / "chroma", "cli_test").iter_ids()) == expected


def test_crash_between_stores_leaves_them_in_step(fresh, embeddings, products) -> None:
    """A run that dies between the two writes of a batch (here: as it hands the second batch to
    Chroma) is completed by the next run: both stores end with the same products. Were PostgreSQL
    committed first, the re-run would skip that batch and Chroma would never get it."""
    settings, conn = fresh
    chroma = ChromaStore.from_settings(settings, embeddings)
    calls = 0

    def dies_on_second_batch(rows: list) -> None:
        """Write to Chroma, except on the second batch, where the process 'dies'."""
        nonlocal calls
        calls += 1
        if calls == 2:
            raise KeyboardInterrupt("killed")
        chroma.upsert_rows(rows)

    with pytest.raises(KeyboardInterrupt):
        _run(conn, embeddings, products[:48], batch_size=16, on_batch=dies_on_second_batch)
    assert _count(conn) == 16 and chroma.count() == 16
    resumed = _run(conn, embeddings, products[:48], batch_size=16, on_batch=chroma.upsert_rows)
    assert resumed.embedded == 32 and resumed.skipped == 16
    assert sorted(chroma.iter_ids()) == catalog.all_product_ids(conn) and _count(conn) == 48
