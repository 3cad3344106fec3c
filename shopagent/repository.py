"""All catalog SQL in one place. Every value is a bound parameter; filters map a closed set of
fields to fixed SQL fragments."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from shopagent.models import NO_FILTERS, Hit, SearchFilters
from shopagent.query import exclusion_patterns

PRODUCT_COLUMNS = (
    "id", "name", "description", "bullet_points", "brand", "color", "category", "price",
    "rating", "rating_count", "in_stock", "is_book", "image_url", "attributes",
)  # fmt: skip


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


def _like_patterns(values: Iterable[str]) -> list[str]:
    """Case-insensitive substring LIKE patterns with LIKE metacharacters escaped."""
    out = []
    for v in values:
        escaped = v.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        out.append(f"%{escaped}%")
    return out


def filter_clause(filters: SearchFilters, params: dict[str, Any]) -> sql.Composable:
    """WHERE fragments for `filters` (AND-ed), adding their bound values to `params`."""
    parts: list[sql.Composable] = []
    if filters.price_min is not None:
        params["price_min"] = filters.price_min
        parts.append(sql.SQL("price >= %(price_min)s"))
    if filters.price_max is not None:
        params["price_max"] = filters.price_max
        parts.append(sql.SQL("price <= %(price_max)s"))
    if filters.brands:
        params["brands"] = [b.lower() for b in filters.brands]
        parts.append(sql.SQL("lower(brand) = ANY(%(brands)s)"))
    if filters.categories:
        params["categories"] = _like_patterns(filters.categories)
        parts.append(sql.SQL("lower(array_to_string(category, ' > ')) LIKE ANY(%(categories)s)"))
    if filters.colors:
        params["colors"] = _like_patterns(filters.colors)
        parts.append(sql.SQL("lower(color) LIKE ANY(%(colors)s)"))
    if filters.in_stock is not None:
        params["in_stock"] = filters.in_stock
        parts.append(sql.SQL("in_stock = %(in_stock)s"))
    for i, term in enumerate(filters.exclude_terms):
        # Excluded when the *name* mentions the negated term, unless the name negates it too
        # ("Belt without Buckle" is what "belt without buckle" wants). Twin: query.name_is_excluded.
        mention, negated = exclusion_patterns(term, boundary=r"\y")
        params[f"ex_m{i}"], params[f"ex_n{i}"] = mention, negated
        parts.append(
            sql.SQL("NOT (name ~* {m} AND name !~* {n})").format(
                m=sql.Placeholder(f"ex_m{i}"), n=sql.Placeholder(f"ex_n{i}")
            )
        )
    if filters.exclude_ids:
        params["exclude_ids"] = list(filters.exclude_ids)
        parts.append(sql.SQL("id <> ALL(%(exclude_ids)s)"))
    if not parts:
        return sql.SQL("TRUE")
    return sql.SQL(" AND ").join(parts)


# ---------------------------------------------------------------- schema facts


def embedding_column_dimension(conn: psycopg.Connection) -> int | None:
    """The dimension of products.embedding, or None before migrations."""
    row = conn.execute(
        """SELECT atttypmod FROM pg_attribute
           WHERE attrelid = to_regclass('products') AND attname = 'embedding' AND NOT attisdropped"""
    ).fetchone()
    return int(_first(row)) if row and _first(row) > 0 else None


# Same definition as migration 0004 (migrations stay static SQL); used to rebuild the index.
_HNSW_INDEX_DDL = (
    "CREATE INDEX IF NOT EXISTS products_embedding_hnsw ON products USING hnsw (embedding vector_cosine_ops)"
    " WITH (m = 16, ef_construction = 64)"
)


def product_count(conn: psycopg.Connection) -> int:
    """Rows in products."""
    return int(_first(conn.execute("SELECT count(*) FROM products").fetchone()))


def drop_vector_index(conn: psycopg.Connection) -> None:
    """Drop the HNSW index (before an initial bulk load: building it once afterwards took 1 s for the
    sample, against ~4 s of per-row index maintenance during the load)."""
    conn.execute("DROP INDEX IF EXISTS products_embedding_hnsw")


def ensure_vector_index(conn: psycopg.Connection) -> None:
    """(Re)build the HNSW index if it is missing (after a bulk load, or a load killed before its end)."""
    conn.execute(_HNSW_INDEX_DDL)


def reset_embedding_column(conn: psycopg.Connection, dim: int) -> None:
    """Re-create products.embedding as vector(dim): drops stored vectors and the HNSW index, rebuilds it."""
    with conn.transaction():
        drop_vector_index(conn)
        conn.execute(
            sql.SQL("ALTER TABLE products ALTER COLUMN embedding TYPE vector({}) USING NULL").format(
                sql.Literal(int(dim))
            )
        )
        conn.execute("UPDATE products SET content_hash = '', embedding_model = NULL")
        ensure_vector_index(conn)


def _first(row: Any) -> Any:
    """First value of a dict or tuple row."""
    return next(iter(row.values())) if isinstance(row, dict) else row[0]


# ---------------------------------------------------------------- writes


def stored_hashes(conn: psycopg.Connection, ids: Sequence[str]) -> dict[str, tuple[str, bool]]:
    """id -> (content hash, has a fresh embedding) for the ids that exist."""
    rows = conn.execute(
        "SELECT id, content_hash, (embedding IS NOT NULL AND NOT embedding_stale) AS fresh"
        " FROM products WHERE id = ANY(%s)",
        (list(ids),),
    ).fetchall()
    return {r["id"]: (r["content_hash"], r["fresh"]) for r in rows}


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


def upsert_products(conn: psycopg.Connection, rows: Sequence[ProductRow]) -> tuple[int, int]:
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


def write_embeddings(
    conn: psycopg.Connection, items: Sequence[tuple[str, Sequence[float]]], model: str, version: str
) -> int:
    """Set vectors for existing products (migration from Chroma); return rows updated."""
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "UPDATE products SET embedding = %s, embedding_model = %s, embedding_version = %s WHERE id = %s",
            [(np.asarray(v, dtype=np.float32), model, version, pid) for pid, v in items],
        )
        return cur.rowcount


def coverage(conn: psycopg.Connection) -> dict[str, Any]:
    """The embedding_coverage view as a dict."""
    row = conn.execute("SELECT * FROM embedding_coverage").fetchone()
    return dict(row) if row else {}


# ---------------------------------------------------------------- reads


def vector_search(
    conn: psycopg.Connection,
    embedding: Sequence[float],
    k: int,
    filters: SearchFilters = NO_FILTERS,
    threshold: float | None = None,
) -> list[Hit]:
    """Top-k products by cosine similarity (HNSW, iterative scan), at or above `threshold`."""
    params: dict[str, Any] = {"q": np.asarray(embedding, dtype=np.float32), "k": int(k)}
    params["threshold"] = -1.0 if threshold is None else float(threshold)
    # The inner ORDER BY ... LIMIT is the index scan; relaxed_order can return slightly out of
    # order, so the outer query re-sorts (pgvector's documented pattern).
    query = sql.SQL(
        """WITH nearest AS MATERIALIZED (
               SELECT id, name, price, brand, embedding <=> %(q)s AS distance
               FROM products
               WHERE embedding IS NOT NULL AND {where}
               ORDER BY embedding <=> %(q)s
               LIMIT %(k)s)
           SELECT id, name, price, brand, 1 - distance AS similarity
           FROM nearest WHERE 1 - distance >= %(threshold)s
           ORDER BY distance, id"""
    ).format(where=filter_clause(filters, params))
    rows = conn.execute(query, params).fetchall()
    return [
        Hit(
            r["id"],
            float(r["similarity"]),
            "pgvector",
            i + 1,
            r["name"],
            r["price"],
            r["brand"],
            float(r["similarity"]),
        )
        for i, r in enumerate(rows)
    ]


def explain_vector_search(
    conn: psycopg.Connection, embedding: Sequence[float], k: int, *, no_seqscan: bool = False
) -> str:
    """EXPLAIN of the top-k query. On a small table the planner rightly prefers a sequential scan;
    `no_seqscan` shows the plan it takes when the table is large enough for the index to pay."""
    params: dict[str, Any] = {"q": np.asarray(embedding, dtype=np.float32), "k": int(k)}
    with conn.transaction():
        if no_seqscan:
            conn.execute("SET LOCAL enable_seqscan = off")
        rows = conn.execute(
            "EXPLAIN SELECT id FROM products WHERE embedding IS NOT NULL ORDER BY embedding <=> %(q)s LIMIT %(k)s",
            params,
        ).fetchall()
    return "\n".join(_first(r) for r in rows)


def analyze(conn: psycopg.Connection) -> None:
    """After a bulk load: reclaim the dead row versions updates leave (they bloat the table and the HNSW
    index, and stale statistics once made the planner choose a sequential scan over the index) and
    refresh statistics. Needs an autocommit connection (VACUUM can't run in a transaction)."""
    conn.execute("VACUUM (ANALYZE) products")


def fulltext_search(conn: psycopg.Connection, text: str, k: int, filters: SearchFilters = NO_FILTERS) -> list[Hit]:
    """Top-k by weighted full-text rank (ts_rank, no length normalisation: measured best on the
    sample queries); any query term may match (OR), more matched terms and fields rank higher."""
    params: dict[str, Any] = {"text": text, "k": int(k)}
    query = sql.SQL(
        """WITH q AS (
               SELECT to_tsquery('simple', string_agg(quote_literal(lexeme), ' | ')) AS tsq
               FROM unnest(to_tsvector('english', %(text)s)))
           SELECT p.id, p.name, p.price, p.brand,
                  ts_rank('{{0.1, 0.3, 0.5, 1.0}}', p.search_tsv, q.tsq) AS rank_score
           FROM products p, q
           WHERE q.tsq IS NOT NULL AND p.search_tsv @@ q.tsq AND {where}
           ORDER BY rank_score DESC, p.id
           LIMIT %(k)s"""
    ).format(where=filter_clause(filters, params))
    rows = conn.execute(query, params).fetchall()
    return [
        Hit(r["id"], float(r["rank_score"]), "fulltext", i + 1, r["name"], r["price"], r["brand"])
        for i, r in enumerate(rows)
    ]


def get_products(conn: psycopg.Connection, ids: Sequence[str]) -> list[dict[str, Any]]:
    """Full product rows for `ids`, in the order given; unknown ids are skipped."""
    rows = conn.execute(
        """SELECT id, name, description, bullet_points, brand, color, category, price, rating,
                  rating_count, in_stock, is_book, image_url, attributes
           FROM products WHERE id = ANY(%s)""",
        (list(ids),),
    ).fetchall()
    by_id = {r["id"]: r for r in rows}
    return [dict(by_id[i]) for i in ids if i in by_id]


def get_embeddings(conn: psycopg.Connection, ids: Sequence[str]) -> dict[str, np.ndarray]:
    """Stored vectors for `ids` (those that have one)."""
    rows = conn.execute(
        "SELECT id, embedding FROM products WHERE id = ANY(%s) AND embedding IS NOT NULL", (list(ids),)
    ).fetchall()
    return {r["id"]: np.asarray(r["embedding"], dtype=np.float32) for r in rows}


def neighbours_with_vectors(
    conn: psycopg.Connection, product_id: str, k: int, filters: SearchFilters = NO_FILTERS
) -> list[tuple[Hit, np.ndarray]]:
    """Nearest products to a stored product (itself excluded), with their vectors (for MMR)."""
    params: dict[str, Any] = {"pid": product_id, "k": int(k)}
    query = sql.SQL(
        """WITH src AS (SELECT embedding FROM products WHERE id = %(pid)s AND embedding IS NOT NULL),
           nearest AS MATERIALIZED (
               SELECT p.id, p.name, p.price, p.brand, p.embedding, p.embedding <=> src.embedding AS distance
               FROM products p, src
               WHERE p.id <> %(pid)s AND p.embedding IS NOT NULL AND {where}
               ORDER BY p.embedding <=> src.embedding
               LIMIT %(k)s)
           SELECT * FROM nearest ORDER BY distance, id"""
    ).format(where=filter_clause(filters, params))
    rows = conn.execute(query, params).fetchall()
    return [
        (
            Hit(
                r["id"],
                1 - float(r["distance"]),
                "pgvector",
                i + 1,
                r["name"],
                r["price"],
                r["brand"],
                1 - float(r["distance"]),
            ),
            np.asarray(r["embedding"], dtype=np.float32),
        )
        for i, r in enumerate(rows)
    ]


def brand_counts(conn: psycopg.Connection, min_products: int = 1) -> dict[str, int]:
    """Catalog brands (lower-case) with their product counts, for query understanding."""
    rows = conn.execute(
        "SELECT lower(brand) AS brand, count(*) AS n FROM products WHERE coalesce(brand, '') <> ''"
        " GROUP BY 1 HAVING count(*) >= %s",
        (min_products,),
    ).fetchall()
    return {r["brand"]: r["n"] for r in rows}


def category_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Every category path element (lower-case) with its product count."""
    rows = conn.execute(
        "SELECT lower(c) AS category, count(*) AS n FROM products, unnest(category) c GROUP BY 1"
    ).fetchall()
    return {r["category"]: r["n"] for r in rows}


def all_product_ids(conn: psycopg.Connection) -> list[str]:
    """Every product id (ordered)."""
    return [r["id"] for r in conn.execute("SELECT id FROM products ORDER BY id").fetchall()]


def products_for_export(conn: psycopg.Connection, ids: Sequence[str]) -> list[dict[str, Any]]:
    """Rows with vector, text and filterable fields, for keeping Chroma in step."""
    rows = conn.execute(
        """SELECT id, name, brand, color, category, price, in_stock, embedded_text, embedding, embedding_model
           FROM products WHERE id = ANY(%s) AND embedding IS NOT NULL""",
        (list(ids),),
    ).fetchall()
    return [dict(r) for r in rows]


def ping(conn: psycopg.Connection) -> bool:
    """True if the database answers."""
    return conn.execute("SELECT 1 AS ok").fetchone() is not None


# ---------------------------------------------------------------- Chroma -> pgvector migration


def extension_status(conn: psycopg.Connection, name: str) -> tuple[str | None, bool]:
    """(installed version or None, whether the server can install it) of a PostgreSQL extension."""
    row = conn.execute(
        "SELECT installed_version, true AS available FROM pg_available_extensions WHERE name = %s", (name,)
    ).fetchone()
    return (row["installed_version"], True) if row else (None, False)


def migration_states(conn: psycopg.Connection, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """id -> {embedding (array or None), embedding_model, embedding_stale, embedded_text} for existing ids."""
    rows = conn.execute(
        "SELECT id, embedding, embedding_model, embedding_stale, embedded_text FROM products WHERE id = ANY(%s)",
        (list(ids),),
    ).fetchall()
    return {
        r["id"]: {**r, "embedding": None if r["embedding"] is None else np.asarray(r["embedding"], dtype=np.float32)}
        for r in rows
    }


# ---------------------------------------------------------------- chat sessions


def claim_session(conn: psycopg.Connection, session_id: str, user_id: str) -> str:
    """Register `session_id` for `user_id` if it is new; return its owner (who may be someone else)."""
    row = conn.execute(
        """INSERT INTO chat_sessions (session_id, user_id) VALUES (%s, %s)
           ON CONFLICT (session_id) DO UPDATE SET last_seen = now()
           RETURNING user_id""",
        (session_id, user_id),
    ).fetchone()
    return _first(row)


def session_owner(conn: psycopg.Connection, session_id: str) -> str | None:
    """The user who owns `session_id`, or None if unknown."""
    row = conn.execute("SELECT user_id FROM chat_sessions WHERE session_id = %s", (session_id,)).fetchone()
    return None if row is None else _first(row)


def delete_session(conn: psycopg.Connection, session_id: str, user_id: str) -> bool:
    """Forget `user_id`'s session; True if it existed."""
    cur = conn.execute("DELETE FROM chat_sessions WHERE session_id = %s AND user_id = %s", (session_id, user_id))
    return cur.rowcount > 0


def explain_analyze_vector_search(conn: psycopg.Connection, embedding: Sequence[float], k: int) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the unfiltered top-k query: the plan actually run, with timings
    and how many index pages came from shared buffers versus disk (benchmarks)."""
    rows = conn.execute(
        "EXPLAIN (ANALYZE, BUFFERS) SELECT id FROM products WHERE embedding IS NOT NULL"
        " ORDER BY embedding <=> %(q)s LIMIT %(k)s",
        {"q": np.asarray(embedding, dtype=np.float32), "k": int(k)},
    ).fetchall()
    return "\n".join(_first(r) for r in rows)


def storage_facts(conn: psycopg.Connection) -> dict[str, Any]:
    """Settings and sizes that decide vector-search latency: buffers, ef_search, table and index size."""
    row = conn.execute(
        """SELECT current_setting('shared_buffers') AS shared_buffers,
                  current_setting('hnsw.ef_search', true) AS hnsw_ef_search,
                  current_setting('hnsw.iterative_scan', true) AS hnsw_iterative_scan,
                  pg_size_pretty(pg_table_size('products')) AS table_size,
                  pg_size_pretty(pg_relation_size(to_regclass('products_embedding_hnsw'))) AS hnsw_index_size,
                  (SELECT count(*) FROM products) AS products"""
    ).fetchone()
    return dict(row) if row else {}
