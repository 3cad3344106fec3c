"""Catalog writes: batched upserts that skip unchanged rows, vectors for existing products, and the
clean-up after bulk loads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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


# The columns a write sets, in order (ProductRow's fields); the bulk path copies them too.
PRODUCT_COLUMNS = tuple(ProductRow.__dataclass_fields__)
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
    """INSERT INTO products (PRODUCT_COLUMNS) `source` ON CONFLICT: update the row, keeping the stored vector
    when none is given. Unchanged rows are not rewritten (no dead tuples, no trigger, not counted as updated).
    Returns `inserted` per written row."""
    updates = sql.SQL(", ").join(
        sql.SQL("{c} = coalesce(EXCLUDED.{c}, products.{c})" if c in _VECTOR_COLUMNS else "{c} = EXCLUDED.{c}").format(
            c=sql.Identifier(c)
        )
        for c in PRODUCT_COLUMNS
        if c != "id"
    )
    return sql.SQL(
        """INSERT INTO products ({columns}) {source}
           ON CONFLICT (id) DO UPDATE SET {updates}
           WHERE EXCLUDED.embedding IS NOT NULL OR {changed}
           RETURNING (xmax = 0) AS inserted"""
    ).format(
        columns=sql.SQL(", ").join(map(sql.Identifier, PRODUCT_COLUMNS)),
        source=source,
        updates=updates,
        changed=content_changed("excluded", "products"),
    )


_UPSERT = upsert_statement(
    sql.SQL("VALUES ({})").format(sql.SQL(", ").join(sql.Placeholder(c) for c in PRODUCT_COLUMNS))
)


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
