"""Catalog reads: vector and full-text search, product rows, vocabulary. Every value is a bound parameter;
filters map a closed set of fields to fixed SQL fragments. Search rows come back already in the one
product shape (`ProductView`)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from itertools import combinations
from typing import Any, Literal, cast

import numpy as np
from psycopg import sql

from shopagent.db.connection import Connection
from shopagent.db.schema import first_value
from shopagent.domain import NO_FILTERS, ProductView, SearchFilters
from shopagent.matching import exclusion_patterns

# The columns of a ProductView, for a table aliased `p`; each query appends its score and similarity.
_VIEW = "p.id AS product_id, p.name, p.brand, p.price::float8 AS price, p.image_url"
# Full text: rows ranked per widening step (the FULLTEXT_CANDIDATES setting's default), and the largest "at least
# m of n terms" level written out as conjunctions (long queries skip the levels that would need more).
FULLTEXT_CANDIDATES = 1000
MAX_CONJUNCTIONS = 64
_DETAIL_COLUMNS = """id, name, description, bullet_points, brand, color, category, price::float8 AS price, rating,
                     rating_count, in_stock, is_book, image_url, attributes"""


def _like_patterns(values: Iterable[str]) -> list[str]:
    """Case-insensitive substring LIKE patterns with LIKE metacharacters escaped."""
    out = []
    for v in values:
        escaped = v.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        out.append(f"%{escaped}%")
    return out


def filter_clause(filters: SearchFilters, params: dict[str, Any]) -> sql.Composable:
    """WHERE fragments for `filters` (AND-ed) over a table aliased `p`, adding their bound values to `params`."""
    parts: list[sql.Composable] = []
    if filters.price_min is not None:
        params["price_min"] = filters.price_min
        parts.append(sql.SQL("p.price >= %(price_min)s"))
    if filters.price_max is not None:
        params["price_max"] = filters.price_max
        parts.append(sql.SQL("p.price <= %(price_max)s"))
    if filters.brands:
        params["brands"] = [b.lower() for b in filters.brands]
        parts.append(sql.SQL("lower(p.brand) = ANY(%(brands)s)"))
    if filters.categories:
        params["categories"] = _like_patterns(filters.categories)
        parts.append(sql.SQL("lower(array_to_string(p.category, ' > ')) LIKE ANY(%(categories)s)"))
    if filters.colors:
        params["colors"] = _like_patterns(filters.colors)
        parts.append(sql.SQL("lower(p.color) LIKE ANY(%(colors)s)"))
    if filters.in_stock is not None:
        params["in_stock"] = filters.in_stock
        parts.append(sql.SQL("p.in_stock = %(in_stock)s"))
    for i, term in enumerate(filters.exclude_terms):
        # Excluded when the *name* mentions the negated term, unless the name negates it too
        # ("Belt without Buckle" is what "belt without buckle" wants). Twin: matching.name_is_excluded.
        mention, negated = exclusion_patterns(term, boundary=r"\y")
        params[f"ex_m{i}"], params[f"ex_n{i}"] = mention, negated
        parts.append(
            sql.SQL("NOT (p.name ~* {m} AND p.name !~* {n})").format(
                m=sql.Placeholder(f"ex_m{i}"), n=sql.Placeholder(f"ex_n{i}")
            )
        )
    if filters.exclude_colors:
        # Twin: matching.color_is_excluded (colour field or name).
        params["ex_colors"] = [rf"\y{c.lower()}\y" for c in filters.exclude_colors]
        parts.append(sql.SQL("NOT (coalesce(p.color, '') || ' ' || p.name) ~* ANY(%(ex_colors)s)"))
    if filters.exclude_ids:
        params["exclude_ids"] = list(filters.exclude_ids)
        parts.append(sql.SQL("p.id <> ALL(%(exclude_ids)s)"))
    if not parts:
        return sql.SQL("TRUE")
    return sql.SQL(" AND ").join(parts)


VectorColumn = Literal["embedding", "embedding_ml"]
# Which backend a vector column's hits are labelled with.
_COLUMN_BACKEND: dict[str, str] = {"embedding": "pgvector", "embedding_ml": "multilingual"}


def nearest_order(column: VectorColumn, halfvec: bool, dim: int) -> sql.Composable:
    """The ORDER BY expression that the HNSW index serves (`%(q)s` is the query vector, table aliased `p`):
    the index's own expression, so a halfvec index (MiniLM column only) needs `::halfvec(dim)` on both sides."""
    if not halfvec or column != "embedding":
        return sql.SQL("p.{col} <=> %(q)s").format(col=sql.Identifier(column))
    return sql.SQL("p.embedding::halfvec({d}) <=> %(q)s::halfvec({d})").format(d=sql.Literal(int(dim)))


def vector_search(
    conn: Connection,
    embedding: Sequence[float],
    k: int,
    filters: SearchFilters = NO_FILTERS,
    threshold: float | None = None,
    column: VectorColumn = "embedding",
    *,
    halfvec: bool = False,
) -> list[ProductView]:
    """Top-k products by cosine similarity (HNSW, iterative scan), at or above `threshold`. `column` is the
    MiniLM vector (`embedding`) or the multilingual one (`embedding_ml`). With `halfvec` the index's
    half-precision order picks the k; similarities are computed on the full vectors either way. Best first; never a
    NaN similarity (a zero vector, stored or asked for, has no cosine distance)."""
    if column not in _COLUMN_BACKEND:
        raise ValueError(f"unknown vector column {column!r}")
    params: dict[str, Any] = {
        "q": np.asarray(embedding, dtype=np.float32),
        "k": int(k),
        "backend": _COLUMN_BACKEND[column],
    }
    params["threshold"] = -1.0 if threshold is None else float(threshold)
    # The inner ORDER BY ... LIMIT is the index scan; relaxed_order can return slightly out of order, so the outer
    # query re-sorts (pgvector's documented pattern). It sorts by the similarity, not by `distance`: PostgreSQL 17+
    # knows the CTE's rows come "ordered by distance" and would keep that order (an incremental sort at most).
    # NaN passes `>= threshold` in PostgreSQL (NaN sorts above every number), hence the explicit test.
    query = sql.SQL(
        """WITH nearest AS MATERIALIZED (
               SELECT {view}, p.{col} <=> %(q)s AS distance
               FROM products p
               WHERE p.{col} IS NOT NULL AND {where}
               ORDER BY {order}
               LIMIT %(k)s)
           SELECT product_id, name, brand, price, image_url, 1 - distance AS score, 1 - distance AS similarity,
                  %(backend)s AS backend
           FROM nearest WHERE distance <> 'NaN'::float8 AND 1 - distance >= %(threshold)s
           ORDER BY similarity DESC, product_id"""
    ).format(
        view=sql.SQL(_VIEW),
        col=sql.Identifier(column),
        where=filter_clause(filters, params),
        order=nearest_order(column, halfvec, len(params["q"])),
    )
    return cast(list[ProductView], conn.execute(query, params).fetchall())


def query_lexemes(conn: Connection, text: str) -> list[str]:
    """The lexemes of `text` as the documents' `search_tsv` holds them (English stemming, stop words dropped)."""
    row = conn.execute(
        "SELECT coalesce(array_agg(lexeme), '{}') AS lexemes FROM unnest(to_tsvector('english', %s))", (text,)
    ).fetchone()
    return list(row["lexemes"]) if row else []


def _tsquery_literal(lexeme: str) -> str:
    """A lexeme quoted for tsquery input (taken as it is, no parsing or stemming)."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def match_levels(lexemes: Sequence[str], max_conjunctions: int = MAX_CONJUNCTIONS) -> list[str]:
    """tsquery texts from strictest to widest: every lexeme, then at least n-1 of the n, ... then any of them.
    "At least m of n" is the OR of every m-lexeme conjunction; a level needing more than `max_conjunctions`
    of them (long queries) is skipped. Empty for no lexemes."""
    quoted = [_tsquery_literal(x) for x in dict.fromkeys(lexemes)]
    levels = []
    for m in range(len(quoted), 0, -1):
        if m == 1:
            levels.append(" | ".join(quoted))
        elif m == len(quoted):
            levels.append(" & ".join(quoted))
        elif math.comb(len(quoted), m) <= max_conjunctions:
            levels.append(" | ".join("(" + " & ".join(c) + ")" for c in combinations(quoted, m)))
    return levels


def fulltext_step_query(filters: SearchFilters, params: dict[str, Any]) -> sql.Composed:
    """One widening step of `fulltext_search`: at most `%(candidates)s` rows matching `%(match)s` (not already
    found, within the filters) are ranked by weighted `ts_rank` against `%(any)s`; the best `%(k)s` come back.
    The LIMIT inside bounds the rows fetched and ranked, whatever the catalog's size."""
    return sql.SQL(
        """SELECT c.product_id, c.name, c.brand, c.price, c.image_url,
                  ts_rank('{{0.1, 0.3, 0.5, 1.0}}', c.search_tsv, %(any)s::tsquery)::float8 AS score,
                  NULL::float8 AS similarity, 'fulltext' AS backend
           FROM (SELECT {view}, p.search_tsv FROM products p
                 WHERE p.search_tsv @@ %(match)s::tsquery AND p.id <> ALL(%(found)s) AND {where}
                 LIMIT %(candidates)s) c
           ORDER BY score DESC, c.product_id
           LIMIT %(k)s"""
    ).format(view=sql.SQL(_VIEW), where=filter_clause(filters, params))


def fulltext_search(
    conn: Connection,
    text: str,
    k: int,
    filters: SearchFilters = NO_FILTERS,
    candidates: int | None = FULLTEXT_CANDIDATES,
) -> list[ProductView]:
    """Top-k by full text, in a cost that does not grow with the catalog: products matching every query term
    come first (a selective, GIN-served match), and only while fewer than k have been found does the match
    widen to one term fewer, and so on down to any term (`match_levels`). Each step ranks at most `candidates`
    rows (None: all, for exact references) by weighted `ts_rank`: name A 1.0, brand/category B 0.5,
    colour/bullets C 0.3, description D 0.1, no length normalisation (measured best on the sample queries).
    `similarity` is None here: full text knows no vectors (the hybrid fusion fills it in)."""
    lexemes = query_lexemes(conn, text)
    levels = match_levels(lexemes)
    if not levels:
        return []
    found: list[ProductView] = []
    for match in levels:
        params: dict[str, Any] = {
            "match": match,
            "any": levels[-1],
            "found": [p["product_id"] for p in found],
            "candidates": candidates,
            "k": int(k) - len(found),
        }
        found += cast(list[ProductView], conn.execute(fulltext_step_query(filters, params), params).fetchall())
        if len(found) >= k:
            break
    return found


def neighbours_with_vectors(
    conn: Connection,
    product_id: str,
    embedding: Sequence[float] | np.ndarray,
    k: int,
    filters: SearchFilters = NO_FILTERS,
    *,
    halfvec: bool = False,
) -> list[tuple[ProductView, np.ndarray]]:
    """Nearest products to a stored product whose vector is `embedding` (itself excluded), with their vectors
    (for MMR), best first; none with a NaN similarity (see `vector_search`)."""
    params: dict[str, Any] = {"pid": product_id, "q": np.asarray(embedding, dtype=np.float32), "k": int(k)}
    query = sql.SQL(
        """WITH nearest AS MATERIALIZED (
               SELECT {view}, p.embedding, p.embedding <=> %(q)s AS distance
               FROM products p
               WHERE p.id <> %(pid)s AND p.embedding IS NOT NULL AND {where}
               ORDER BY {order}
               LIMIT %(k)s)
           SELECT product_id, name, brand, price, image_url, 1 - distance AS score, 1 - distance AS similarity,
                  'pgvector' AS backend, embedding
           FROM nearest WHERE distance <> 'NaN'::float8
           ORDER BY similarity DESC, product_id"""
    ).format(
        view=sql.SQL(_VIEW),
        where=filter_clause(filters, params),
        order=nearest_order("embedding", halfvec, len(params["q"])),
    )
    out = []
    for row in conn.execute(query, params).fetchall():
        vector = np.asarray(row.pop("embedding"), dtype=np.float32)
        out.append((cast(ProductView, row), vector))
    return out


def product_views(conn: Connection, ids: Sequence[str]) -> list[ProductView]:
    """Products by id with their detail fields (rating, colour, category path, first highlights, description
    excerpt), in the order given; unknown ids are skipped."""
    rows = conn.execute(
        """SELECT p.id AS product_id, p.name, p.brand, p.price::float8 AS price, p.image_url, 0.0::float8 AS score,
                  NULL::float8 AS similarity, 'pgvector' AS backend, p.rating, p.rating_count,
                  p.color, nullif(array_to_string(p.category, ' > '), '') AS category, p.in_stock,
                  ARRAY(SELECT left(b, 200) FROM unnest(p.bullet_points[1:3]) b WHERE b <> '') AS highlights,
                  left(p.description, 300) AS description
           FROM products p WHERE p.id = ANY(%s)""",
        (list(ids),),
    ).fetchall()
    by_id = {r["product_id"]: r for r in rows}
    return [cast(ProductView, by_id[i]) for i in ids if i in by_id]


def rerank_texts(conn: Connection, ids: Sequence[str]) -> dict[str, str]:
    """id -> "name. brand. first bullet" for the reranker (products that exist)."""
    rows = conn.execute(
        """SELECT id, concat_ws('. ', nullif(name, ''), nullif(brand, ''), nullif(bullet_points[1], '')) AS text
           FROM products WHERE id = ANY(%s)""",
        (list(ids),),
    ).fetchall()
    return {r["id"]: r["text"] for r in rows}


def get_products(conn: Connection, ids: Sequence[str]) -> list[dict[str, Any]]:
    """Full product rows for `ids`, in the order given; unknown ids are skipped."""
    rows = conn.execute(
        sql.SQL("SELECT {} FROM products WHERE id = ANY(%s)").format(sql.SQL(_DETAIL_COLUMNS)), (list(ids),)
    ).fetchall()
    by_id = {r["id"]: r for r in rows}
    return [dict(by_id[i]) for i in ids if i in by_id]


def get_embeddings(conn: Connection, ids: Sequence[str]) -> dict[str, np.ndarray]:
    """Stored vectors for `ids` (those that have one)."""
    rows = conn.execute(
        "SELECT id, embedding FROM products WHERE id = ANY(%s) AND embedding IS NOT NULL", (list(ids),)
    ).fetchall()
    return {r["id"]: np.asarray(r["embedding"], dtype=np.float32) for r in rows}


def stored_hashes(conn: Connection, ids: Sequence[str]) -> dict[str, tuple[str, bool]]:
    """id -> (content hash, has a fresh embedding) for the ids that exist."""
    rows = conn.execute(
        "SELECT id, content_hash, (embedding IS NOT NULL AND NOT embedding_stale) AS fresh"
        " FROM products WHERE id = ANY(%s)",
        (list(ids),),
    ).fetchall()
    return {r["id"]: (r["content_hash"], r["fresh"]) for r in rows}


def vector_states(conn: Connection, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """id -> {embedding (array or None), embedding_model, embedding_stale, embedded_text} for existing ids."""
    rows = conn.execute(
        "SELECT id, embedding, embedding_model, embedding_stale, embedded_text FROM products WHERE id = ANY(%s)",
        (list(ids),),
    ).fetchall()
    return {
        r["id"]: {**r, "embedding": None if r["embedding"] is None else np.asarray(r["embedding"], dtype=np.float32)}
        for r in rows
    }


def products_for_export(conn: Connection, ids: Sequence[str]) -> list[dict[str, Any]]:
    """Rows with vector, text and filterable fields, for keeping Chroma in step."""
    rows = conn.execute(
        """SELECT id, name, brand, color, category, price::float8 AS price, in_stock, embedded_text, embedding,
                  embedding_model
           FROM products WHERE id = ANY(%s) AND embedding IS NOT NULL""",
        (list(ids),),
    ).fetchall()
    return [dict(r) for r in rows]


def brand_counts(conn: Connection, min_products: int = 1) -> dict[str, int]:
    """Catalog brands (lower-case) with their product counts, for query understanding."""
    rows = conn.execute(
        "SELECT lower(brand) AS brand, count(*) AS n FROM products WHERE coalesce(brand, '') <> ''"
        " GROUP BY 1 HAVING count(*) >= %s",
        (min_products,),
    ).fetchall()
    return {r["brand"]: r["n"] for r in rows}


def category_counts(conn: Connection) -> dict[str, int]:
    """Every category path element (lower-case) with its product count."""
    rows = conn.execute(
        "SELECT lower(c) AS category, count(*) AS n FROM products, unnest(category) c GROUP BY 1"
    ).fetchall()
    return {r["category"]: r["n"] for r in rows}


def missing_multilingual(conn: Connection, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` products (id, name, brand) whose multilingual vector is missing."""
    return conn.execute(
        "SELECT id, name, brand FROM products WHERE embedding_ml IS NULL ORDER BY id LIMIT %s", (limit,)
    ).fetchall()


def name_word_counts(conn: Connection, min_products: int = 2) -> dict[str, int]:
    """Words of product names (lower-case, starting with a letter) with the number of products using them: the
    catalog's own vocabulary, for language detection and spelling correction. One scan of the table."""
    rows = conn.execute(
        """SELECT w AS word, count(DISTINCT p.id) AS n
           FROM products p, regexp_split_to_table(lower(p.name), '[^a-z0-9''-]+') AS w
           WHERE w ~ '^[a-z]' AND length(w) >= 2
           GROUP BY 1 HAVING count(DISTINCT p.id) >= %s""",
        (min_products,),
    ).fetchall()
    return {r["word"]: r["n"] for r in rows}


def all_product_ids(conn: Connection) -> list[str]:
    """Every product id (ordered)."""
    return [r["id"] for r in conn.execute("SELECT id FROM products ORDER BY id").fetchall()]


def product_count(conn: Connection) -> int:
    """Rows in products."""
    return int(first_value(conn.execute("SELECT count(*) FROM products").fetchone()))


def coverage(conn: Connection) -> dict[str, Any]:
    """The embedding_coverage view as a dict."""
    row = conn.execute("SELECT * FROM embedding_coverage").fetchone()
    return dict(row) if row else {}


def ping(conn: Connection) -> bool:
    """True if the database answers."""
    return conn.execute("SELECT 1 AS ok").fetchone() is not None
