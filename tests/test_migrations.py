"""Migrations on a fresh database: idempotent, recorded, every index/trigger/view in place, and the
staleness trigger keeps embedding bookkeeping honest whatever writes the row."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest
from conftest import make_settings

from shopagent.db import catalog, schema, writes
from shopagent.db.connection import connect
from shopagent.db.schema import migration_files

DIM = 384


@pytest.fixture(scope="module")
def migrated(
    make_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[psycopg.Connection, list[str]]]:
    """A fresh database migrated once: (connection, versions applied by the first run)."""
    dsn = make_database()
    conn = connect(make_settings(dsn, tmp_path_factory.mktemp("chroma")), dsn)
    applied = schema.migrate(conn, DIM)
    yield conn, applied
    conn.close()


def test_second_run_is_a_no_op(migrated: tuple[psycopg.Connection, list[str]]) -> None:
    """The first run applies every file in order; the second applies nothing."""
    conn, applied = migrated
    versions = [v for v, _ in migration_files()]
    assert applied == versions and len(versions) >= 6
    assert schema.migrate(conn, DIM) == []
    recorded = [r["version"] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert recorded == versions


def test_changed_migration_is_not_rerun(
    migrated: tuple[psycopg.Connection, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    """An applied migration whose file changed is reported, not silently re-run."""
    conn, _ = migrated
    version = migration_files()[-1][0]
    old = conn.execute("SELECT checksum FROM schema_migrations WHERE version = %s", (version,)).fetchone()["checksum"]
    conn.execute("UPDATE schema_migrations SET checksum = 'x' WHERE version = %s", (version,))
    try:
        with caplog.at_level(logging.WARNING, logger="shopagent.db.schema"):
            assert schema.migrate(conn, DIM) == []
        assert f"migration {version} changed" in caplog.text
    finally:
        conn.execute("UPDATE schema_migrations SET checksum = %s WHERE version = %s", (old, version))


def test_bad_dimension_is_refused(migrated: tuple[psycopg.Connection, list[str]]) -> None:
    """The dimension is the only value substituted into SQL, so it must be a positive int."""
    conn, _ = migrated
    for bad in (0, -3, "384; DROP TABLE products", 3.5):
        with pytest.raises(ValueError, match="embedding_dim"):
            schema.migrate(conn, bad)  # type: ignore[arg-type]
    assert schema.embedding_column_dimension(conn) == DIM


def test_indexes_trigger_view_exist(migrated: tuple[psycopg.Connection, list[str]]) -> None:
    """HNSW (cosine) on the embedding, GIN on the tsvector and categories, btree on the filters;
    the touch trigger; the coverage view; a generated weighted tsvector column."""
    conn, _ = migrated
    indexes = {
        r["indexname"]: r["indexdef"]
        for r in conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'products'")
    }
    assert "USING hnsw (embedding vector_cosine_ops)" in indexes["products_embedding_hnsw"]
    assert "USING gin (search_tsv)" in indexes["products_search_tsv_gin"]
    assert "USING gin (category)" in indexes["products_category_gin"]
    for name in ("products_price_idx", "products_lower_brand_idx", "products_in_stock_idx", "products_color_idx"):
        assert "USING btree" in indexes[name], name
    assert "WHERE embedding_stale" in indexes["products_stale_idx"]
    trigger = conn.execute(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = 'products'::regclass AND NOT tgisinternal"
    ).fetchall()
    assert sorted(r["tgname"] for r in trigger) == ["products_clear_ml", "products_touch"]
    assert "USING hnsw (embedding_ml vector_cosine_ops)" in indexes["products_embedding_ml_hnsw"]
    assert conn.execute("SELECT to_regclass('embedding_coverage') IS NOT NULL AS ok").fetchone()["ok"]
    col = conn.execute(
        "SELECT data_type, is_generated FROM information_schema.columns"
        " WHERE table_name = 'products' AND column_name = 'search_tsv'"
    ).fetchone()
    assert col == {"data_type": "tsvector", "is_generated": "ALWAYS"}
    assert schema.embedding_column_dimension(conn) == DIM
    extensions = {r["extname"] for r in conn.execute("SELECT extname FROM pg_extension")}
    assert "vector" in extensions


def _state(conn: psycopg.Connection, pid: str) -> dict:
    """The bookkeeping columns of one product."""
    return conn.execute(
        "SELECT embedding IS NOT NULL AS has_vec, embedding_stale, last_embedding_update FROM products WHERE id = %s",
        (pid,),
    ).fetchone()


def test_staleness_trigger(migrated: tuple[psycopg.Connection, list[str]]) -> None:
    """Text/hash changes without a vector mark the row stale; writing a vector clears it; other
    columns (price) leave it alone; a row inserted without a vector starts stale."""
    conn, _ = migrated
    vec = np.ones(DIM, dtype=np.float32) / np.sqrt(DIM)
    conn.execute(
        "INSERT INTO products (id, name, embedded_text, content_hash, embedding) VALUES ('t1', 'Mug', 'Mug', 'h1', %s)",
        (vec,),
    )
    conn.execute("INSERT INTO products (id, name, embedded_text, content_hash) VALUES ('t2', 'Cup', 'Cup', 'h2')")
    fresh = _state(conn, "t1")
    assert fresh["has_vec"] and not fresh["embedding_stale"] and fresh["last_embedding_update"] is not None
    assert _state(conn, "t2")["embedding_stale"]

    conn.execute("UPDATE products SET price = 9.99 WHERE id = 't1'")
    assert not _state(conn, "t1")["embedding_stale"]

    conn.execute("UPDATE products SET embedded_text = 'Big mug' WHERE id = 't1'")
    assert _state(conn, "t1")["embedding_stale"]
    assert catalog.coverage(conn)["stale"] >= 1

    writes.write_embeddings(conn, [("t1", (-vec).tolist())], "test-model", "1")
    cleared = _state(conn, "t1")
    assert not cleared["embedding_stale"] and cleared["last_embedding_update"] > fresh["last_embedding_update"]

    conn.execute("UPDATE products SET content_hash = 'h1b' WHERE id = 't1'")
    assert _state(conn, "t1")["embedding_stale"]
    # A new vector written together with the new text is fresh at once.
    conn.execute("UPDATE products SET embedded_text = 'Mug 2', embedding = %s WHERE id = 't1'", (vec,))
    assert not _state(conn, "t1")["embedding_stale"]
    # Removing the vector leaves the row stale (it must be re-embedded).
    conn.execute("UPDATE products SET embedding = NULL WHERE id = 't1'")
    assert _state(conn, "t1")["embedding_stale"]

    cov = catalog.coverage(conn)
    assert cov["total"] == 2 and cov["missing"] == 2 and cov["embedded"] == 0
    conn.execute("DELETE FROM products WHERE id IN ('t1', 't2')")


def test_migration_files_are_ordered_and_idempotent_sql() -> None:
    """Files are NNNN_name.sql, numbered without gaps; DDL guards against re-runs."""
    folder = Path(schema.__file__).parent / "migrations"
    names = sorted(p.name for p in folder.glob("*.sql"))
    assert [int(n[:4]) for n in names] == list(range(1, len(names) + 1))
    for name in names:
        text = (folder / name).read_text(encoding="utf-8")
        for stmt in ("CREATE TABLE ", "CREATE INDEX ", "CREATE EXTENSION "):
            assert stmt not in text.replace(f"{stmt}IF NOT EXISTS", ""), f"{name}: {stmt.strip()} without IF NOT EXISTS"


def test_multilingual_vector_is_cleared_when_name_or_brand_changes(
    migrated: tuple[psycopg.Connection, list[str]],
) -> None:
    """The multilingual vector describes name + brand: changing either clears it (the next ingest re-embeds it);
    a price change or writing the vector itself keeps it."""
    conn, _ = migrated
    vec = np.full(512, 0.04, dtype=np.float32)
    conn.execute("INSERT INTO products (id, name, brand, embedding_ml) VALUES ('m1', 'Mug', 'Acme', %s)", (vec,))
    has = lambda: conn.execute("SELECT embedding_ml IS NOT NULL AS has FROM products WHERE id = 'm1'").fetchone()["has"]  # noqa: E731
    conn.execute("UPDATE products SET price = 3 WHERE id = 'm1'")
    assert has()
    conn.execute("UPDATE products SET brand = 'Other' WHERE id = 'm1'")
    assert not has()
    conn.execute("UPDATE products SET name = 'Cup', embedding_ml = %s WHERE id = 'm1'", (vec,))
    assert has()
    conn.execute("DELETE FROM products WHERE id = 'm1'")
