"""Bulk writes: binary COPY of product rows (straight into an empty `products`, or into a per-transaction staging
table), and applying a staged chunk with the same upsert rules as `writes.upsert_products` while skipping
unchanged rows before they reach the table (an unchanged re-load never computes a tsvector or fires a trigger)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

import numpy as np
from psycopg import sql
from psycopg.types.json import Jsonb

from shopagent.db.connection import Connection
from shopagent.db.writes import PRODUCT_COLUMNS, ProductRow, content_changed, enqueue_statement, upsert_statement

# The rows an upsert wrote (`w`: id) queued for the Chroma mirror, as `writes.enqueue_for_chroma` does.
_ENQUEUE_WRITTEN = enqueue_statement("SELECT id, true FROM w")

STAGE = "products_stage"
# PostgreSQL types of PRODUCT_COLUMNS, in order, for binary COPY.
_COPY_TYPES = {
    "id": "text",
    "name": "text",
    "description": "text",
    "bullet_points": "text[]",
    "brand": "text",
    "color": "text",
    "category": "text[]",
    "price": "numeric",
    "rating": "float4",
    "rating_count": "int4",
    "in_stock": "bool",
    "is_book": "bool",
    "image_url": "text",
    "attributes": "jsonb",
    "embedded_text": "text",
    "content_hash": "text",
    "embedding": "vector",
    "embedding_model": "text",
    "embedding_version": "text",
}
_CENTS = Decimal("0.01")


def _copy_values(r: ProductRow) -> tuple[object, ...]:
    """One row's values in PRODUCT_COLUMNS order, as the binary COPY dumpers want them."""
    return (
        r.id,
        r.name,
        r.description,
        r.bullet_points,
        r.brand,
        r.color,
        r.category,
        None if r.price is None else Decimal(repr(r.price)).quantize(_CENTS),
        r.rating,
        r.rating_count,
        r.in_stock,
        r.is_book,
        r.image_url,
        Jsonb(r.attributes),
        r.embedded_text,
        r.content_hash,
        None if r.embedding is None else np.asarray(r.embedding, dtype=np.float32),
        r.embedding_model,
        r.embedding_version,
    )


def copy_rows(conn: Connection, table: str, rows: Iterable[ProductRow]) -> int:
    """Binary COPY of `rows` into `table` (`products` or the staging table); return rows copied. Runs in the
    caller's transaction. Raises psycopg errors as they come (a duplicate id into `products`, for example)."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, PRODUCT_COLUMNS))
    )
    n = 0
    with conn.cursor() as cur, cur.copy(statement) as copy:
        copy.set_types([_COPY_TYPES[c] for c in PRODUCT_COLUMNS])
        for r in rows:
            copy.write_row(_copy_values(r))
            n += 1
    return n


def create_stage(conn: Connection) -> None:
    """A temporary staging table with products' written columns, dropped at the end of the transaction."""
    conn.execute(
        sql.SQL("CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {columns} FROM products WITH NO DATA").format(
            stage=sql.Identifier(STAGE), columns=sql.SQL(", ").join(map(sql.Identifier, PRODUCT_COLUMNS))
        )
    )


def _changed_rows(columns: sql.Composable) -> sql.Composed:
    """SELECT `columns` of staged rows that are new, changed, or carry a vector different from the stored one."""
    return sql.SQL(
        """SELECT {columns} FROM {stage} s LEFT JOIN products p ON p.id = s.id
           WHERE p.id IS NULL OR NOT p.active OR {changed}
              OR (s.embedding IS NOT NULL AND s.embedding IS DISTINCT FROM p.embedding)"""
    ).format(columns=columns, stage=sql.Identifier(STAGE), changed=content_changed("s", "p"))


def count_staged_changes(conn: Connection) -> int:
    """How many staged rows would be written (new, changed, or a new vector)."""
    row = conn.execute(sql.SQL("SELECT count(*) AS n FROM ({}) c").format(_changed_rows(sql.SQL("s.id")))).fetchone()
    return int(row["n"]) if row else 0


def apply_stage(conn: Connection) -> tuple[int, int]:
    """Upsert the staged rows that changed (unchanged ones never reach `products`), queueing them for the Chroma
    mirror in the same statement; return (inserted, updated)."""
    columns = sql.SQL(", ").join(sql.Identifier("s", c) for c in PRODUCT_COLUMNS)
    statement = sql.SQL(
        f"""WITH w AS ({{}}),
           q AS ({_ENQUEUE_WRITTEN})
           SELECT count(*) FILTER (WHERE inserted) AS inserted, count(*) AS n FROM w"""
    )
    row = conn.execute(statement.format(upsert_statement(_changed_rows(columns)))).fetchone()
    inserted, written = (int(row["inserted"]), int(row["n"])) if row else (0, 0)
    return inserted, written - inserted
