"""Catalog writes: batched upserts that skip unchanged rows, vectors for existing products, and the
clean-up after bulk loads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from psycopg.types.json import Jsonb

from shopagent.db.connection import Connection


@dataclass(frozen=True)
class ProductRow:
    """A product as stored; `embedding` is None when it was not (re-)embedded in this write."""

    id: str
    name: str
    description: str
    bullet_points: list[str]
    brand: str | None
    color: str | None
    category: list[str]
    price: float | None
    rating: float | None
    rating_count: int | None
    in_stock: bool
    is_book: bool
    image_url: str | None
    attributes: dict[str, Any]
    embedded_text: str
    content_hash: str
    embedding: Sequence[float] | None = None
    embedding_model: str | None = None
    embedding_version: str | None = None


_UPSERT = """
INSERT INTO products (id, name, description, bullet_points, brand, color, category, price, rating,
    rating_count, in_stock, is_book, image_url, attributes, embedded_text, content_hash,
    embedding, embedding_model, embedding_version)
VALUES (%(id)s, %(name)s, %(description)s, %(bullet_points)s, %(brand)s, %(color)s, %(category)s,
    %(price)s, %(rating)s, %(rating_count)s, %(in_stock)s, %(is_book)s, %(image_url)s,
    %(attributes)s, %(embedded_text)s, %(content_hash)s, %(embedding)s, %(embedding_model)s,
    %(embedding_version)s)
ON CONFLICT (id) DO UPDATE SET
    name = EXCLUDED.name, description = EXCLUDED.description,
    bullet_points = EXCLUDED.bullet_points, brand = EXCLUDED.brand, color = EXCLUDED.color,
    category = EXCLUDED.category, price = EXCLUDED.price, rating = EXCLUDED.rating,
    rating_count = EXCLUDED.rating_count, in_stock = EXCLUDED.in_stock, is_book = EXCLUDED.is_book,
    image_url = EXCLUDED.image_url, attributes = EXCLUDED.attributes,
    embedded_text = EXCLUDED.embedded_text,
    content_hash = EXCLUDED.content_hash,
    embedding = coalesce(EXCLUDED.embedding, products.embedding),
    embedding_model = coalesce(EXCLUDED.embedding_model, products.embedding_model),
    embedding_version = coalesce(EXCLUDED.embedding_version, products.embedding_version)
-- Unchanged rows are not rewritten (no dead tuples, no trigger, not counted as updated).
WHERE EXCLUDED.embedding IS NOT NULL
   OR (products.name, products.description, products.bullet_points, products.brand, products.color,
       products.category, products.price, products.rating, products.rating_count, products.in_stock,
       products.is_book, products.image_url, products.attributes, products.embedded_text,
       products.content_hash)
      IS DISTINCT FROM
      (EXCLUDED.name, EXCLUDED.description, EXCLUDED.bullet_points, EXCLUDED.brand, EXCLUDED.color,
       EXCLUDED.category, EXCLUDED.price, EXCLUDED.rating, EXCLUDED.rating_count, EXCLUDED.in_stock,
       EXCLUDED.is_book, EXCLUDED.image_url, EXCLUDED.attributes, EXCLUDED.embedded_text,
       EXCLUDED.content_hash)
RETURNING (xmax = 0) AS inserted
"""


def upsert_products(conn: Connection, rows: Sequence[ProductRow]) -> tuple[int, int]:
    """Insert or update a batch in one transaction; return (inserted, updated). Unchanged rows count
    as neither."""
    params = []
    for r in rows:
        p = dict(r.__dict__)
        p["attributes"] = Jsonb(r.attributes)
        p["embedding"] = np.asarray(r.embedding, dtype=np.float32) if r.embedding is not None else None
        params.append(p)
    inserted = updated = 0
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(_UPSERT, params, returning=True)
        while True:
            if (row := cur.fetchone()) is not None:
                inserted += row["inserted"]
                updated += not row["inserted"]
            if not cur.nextset():
                break
    return inserted, updated


def write_embeddings(conn: Connection, items: Sequence[tuple[str, Sequence[float]]], model: str, version: str) -> int:
    """Set vectors for existing products (migration from Chroma); return rows updated."""
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "UPDATE products SET embedding = %s, embedding_model = %s, embedding_version = %s WHERE id = %s",
            [(np.asarray(v, dtype=np.float32), model, version, pid) for pid, v in items],
        )
        return cur.rowcount


def write_multilingual(conn: Connection, items: Sequence[tuple[str, Sequence[float]]]) -> int:
    """Set the multilingual vectors of existing products; return rows updated."""
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "UPDATE products SET embedding_ml = %s WHERE id = %s",
            [(np.asarray(v, dtype=np.float32), pid) for pid, v in items],
        )
        return cur.rowcount


def analyze(conn: Connection) -> None:
    """After a bulk load: reclaim the dead row versions updates leave (they bloat the table and the HNSW
    index, and stale statistics once made the planner choose a sequential scan over the index) and
    refresh statistics. Needs an autocommit connection (VACUUM can't run in a transaction)."""
    conn.execute("VACUUM (ANALYZE) products")
