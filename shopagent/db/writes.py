"""Catalog writes: batched upserts that skip unchanged rows (and queue what changed for Chroma in the same
transaction), vectors for existing products, and the clean-up after bulk loads."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from psycopg import sql
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
    active: bool = True  # False: a deletion (deactivates the product)


@dataclass
class UpsertResult:
    """What an upsert changed: counts (`metadata_only`: updated rows that kept their vector), and the ids
    written with whether their vector changed."""

    inserted: int = 0
    updated: int = 0
    metadata_only: int = 0
    changed: dict[str, bool] = field(default_factory=dict)


# The columns the bulk path (`shopagent.db.bulk`) copies, in order: ProductRow's fields but `active` (bulk-loaded
# products are on sale; deactivation is the sync's job).
PRODUCT_COLUMNS = tuple(f for f in ProductRow.__dataclass_fields__ if f != "active")
# A write without a vector keeps the stored one; the rest is compared to decide whether a row changed.
_VECTOR_COLUMNS = ("embedding", "embedding_model", "embedding_version")
_CONTENT_COLUMNS = tuple(c for c in PRODUCT_COLUMNS if c != "id" and c not in _VECTOR_COLUMNS)


def _row(alias: str, columns: Sequence[str]) -> sql.Composable:
    """`(alias.c1, alias.c2, ...)`."""
    return sql.SQL("({})").format(sql.SQL(", ").join(sql.Identifier(alias, c) for c in columns))


def content_changed(new: str, old: str) -> sql.Composable:
    """True when row `new` differs from stored row `old` in anything but the vector."""
    return sql.SQL("{} IS DISTINCT FROM {}").format(_row(old, _CONTENT_COLUMNS), _row(new, _CONTENT_COLUMNS))


def upsert_statement(source: sql.Composable) -> sql.Composed:
    """The bulk path's INSERT INTO products (PRODUCT_COLUMNS) `source` ON CONFLICT: update the row (active again),
    keeping the stored vector when none is given. Unchanged active rows are not rewritten (no dead tuples, no
    trigger, not counted as updated). Returns `id` and `inserted` per written row."""
    updates = sql.SQL(", ").join(
        sql.SQL("{c} = coalesce(EXCLUDED.{c}, products.{c})" if c in _VECTOR_COLUMNS else "{c} = EXCLUDED.{c}").format(
            c=sql.Identifier(c)
        )
        for c in PRODUCT_COLUMNS
        if c != "id"
    )
    return sql.SQL(
        """INSERT INTO products ({columns}) {source}
           ON CONFLICT (id) DO UPDATE SET {updates}, active = true, deactivated_at = NULL
           WHERE EXCLUDED.embedding IS NOT NULL OR NOT products.active OR {changed}
           RETURNING products.id, (xmax = 0) AS inserted"""
    ).format(
        columns=sql.SQL(", ").join(map(sql.Identifier, PRODUCT_COLUMNS)),
        source=source,
        updates=updates,
        changed=content_changed("excluded", "products"),
    )


_UPSERT = """
INSERT INTO products (id, name, description, bullet_points, brand, color, category, price, rating,
    rating_count, in_stock, is_book, image_url, attributes, embedded_text, content_hash,
    embedding, embedding_model, embedding_version, active, deactivated_at, row_hash)
VALUES (%(id)s, %(name)s, %(description)s, %(bullet_points)s, %(brand)s, %(color)s, %(category)s,
    %(price)s, %(rating)s, %(rating_count)s, %(in_stock)s, %(is_book)s, %(image_url)s,
    %(attributes)s, %(embedded_text)s, %(content_hash)s, %(embedding)s, %(embedding_model)s,
    %(embedding_version)s, %(active)s, CASE WHEN %(active)s THEN NULL ELSE now() END, %(row_hash)s)
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
    embedding_version = coalesce(EXCLUDED.embedding_version, products.embedding_version),
    active = EXCLUDED.active,
    deactivated_at = CASE WHEN EXCLUDED.active THEN NULL ELSE coalesce(products.deactivated_at, now()) END,
    row_hash = EXCLUDED.row_hash
-- Unchanged rows are not rewritten (no dead tuples, no trigger, not counted as updated).
WHERE EXCLUDED.embedding IS NOT NULL
   OR products.active IS DISTINCT FROM EXCLUDED.active
   OR products.row_hash IS DISTINCT FROM EXCLUDED.row_hash
RETURNING id, (xmax = 0) AS inserted
"""


# Queue ids for the Chroma mirror from `rows` (id, vector changed). A newer change to a queued id takes a new `seq`,
# so a mirror that read the older entry does not remove it.
def enqueue_statement(rows: str) -> str:
    """INSERT INTO chroma_outbox from the SELECT `rows` (id, whether the vector changed)."""
    return f"""INSERT INTO chroma_outbox (id, vector) {rows}
ON CONFLICT (id) DO UPDATE SET vector = chroma_outbox.vector OR EXCLUDED.vector,
    seq = nextval('chroma_outbox_seq'), queued_at = now()"""


_ENQUEUE = enqueue_statement("SELECT * FROM unnest(%s::text[], %s::boolean[])")


def enqueue_for_chroma(conn: Connection, changed: dict[str, bool]) -> None:
    """Queue ids (-> whether their vector changed) for the Chroma mirror; call inside the writing transaction."""
    if changed:
        conn.execute(_ENQUEUE, (list(changed), list(changed.values())))


_HASHED = (
    "name", "description", "bullet_points", "brand", "color", "category", "price", "rating", "rating_count",
    "in_stock", "is_book", "image_url", "attributes", "embedded_text", "content_hash",
)  # fmt: skip


def row_hash(row: ProductRow) -> str:
    """Hash of every stored field a feed gives (not the vector, not `active`): equal hashes, nothing to write."""
    values = [getattr(row, name) for name in _HASHED]
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


def upsert_products(conn: Connection, rows: Sequence[ProductRow]) -> UpsertResult:
    """Insert or update a batch (unique ids) in one transaction, queueing what changed for Chroma. Unchanged
    rows count as neither inserted nor updated. Raises psycopg errors (nothing is written then)."""
    if not rows:
        return UpsertResult()
    params = []
    for r in rows:
        p = dict(r.__dict__)
        p["attributes"] = Jsonb(r.attributes)
        p["embedding"] = np.asarray(r.embedding, dtype=np.float32) if r.embedding is not None else None
        p["row_hash"] = row_hash(r)
        params.append(p)
    with_vector = {r.id for r in rows if r.embedding is not None}
    result = UpsertResult()
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(_UPSERT, params, returning=True)
        while True:
            if (row := cur.fetchone()) is not None:
                result.inserted += row["inserted"]
                result.updated += not row["inserted"]
                result.metadata_only += not row["inserted"] and row["id"] not in with_vector
                result.changed[row["id"]] = row["id"] in with_vector
            if not cur.nextset():
                break
        enqueue_for_chroma(conn, result.changed)
    return result


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
