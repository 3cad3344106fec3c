"""Diagnostics for benchmarks and operators: query plans, settings and sizes that decide search latency."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from shopagent.db.connection import Connection
from shopagent.db.schema import first_value


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
