"""Diagnostics for benchmarks and operators: query plans, settings and sizes that decide search latency."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from psycopg import sql

from shopagent.db import catalog
from shopagent.db.connection import Connection
from shopagent.db.schema import first_value
from shopagent.domain import NO_FILTERS, SearchFilters


def explain_vector_search(conn: Connection, embedding: Sequence[float], k: int, *, no_seqscan: bool = False) -> str:
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
    return "\n".join(first_value(r) for r in rows)


def explain_analyze_vector_search(conn: Connection, embedding: Sequence[float], k: int) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the unfiltered top-k query: the plan actually run, with timings
    and how many index pages came from shared buffers versus disk (benchmarks)."""
    rows = conn.execute(
        "EXPLAIN (ANALYZE, BUFFERS) SELECT id FROM products WHERE embedding IS NOT NULL"
        " ORDER BY embedding <=> %(q)s LIMIT %(k)s",
        {"q": np.asarray(embedding, dtype=np.float32), "k": int(k)},
    ).fetchall()
    return "\n".join(first_value(r) for r in rows)


def storage_facts(conn: Connection) -> dict[str, Any]:
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


def relation_sizes_mb(conn: Connection) -> dict[str, float]:
    """Sizes in MB of products (heap with TOAST, no indexes) and of each of its indexes."""
    rows = conn.execute(
        """SELECT 'table' AS name, pg_table_size('products') AS bytes
           UNION ALL
           SELECT indexrelid::regclass::text, pg_relation_size(indexrelid)
           FROM pg_index WHERE indrelid = 'products'::regclass"""
    ).fetchall()
    return {r["name"]: round(r["bytes"] / (1024 * 1024), 1) for r in rows}


def explain_fulltext_step(
    conn: Connection, text: str, k: int, candidates: int, filters: SearchFilters = NO_FILTERS
) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, FORMAT JSON) of the first (all-terms) step of `catalog.fulltext_search`: the plan run,
    with the rows each node really produced (the bound on ranked rows shows as the inner Limit's rows)."""
    levels = catalog.match_levels(catalog.query_lexemes(conn, text))
    if not levels:
        return {}
    params: dict[str, Any] = {"match": levels[0], "any": levels[-1], "found": [], "candidates": candidates, "k": k}
    query = sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) {}").format(catalog.fulltext_step_query(filters, params))
    row = conn.execute(query, params).fetchone()
    return dict(first_value(row)[0]["Plan"]) if row else {}


def exact_scans(conn: Connection) -> None:
    """Make this session's searches exact references (benchmarks): no index scans, so top-k by distance is a
    sequential scan and an exact sort (full text's GIN bitmap scans stay)."""
    conn.execute("SET enable_indexscan = off")
