"""Bulk loads of products that already carry their vectors (exports, migrations, re-indexing with vectors computed
elsewhere, the scale benchmark): binary COPY in chunks, the search indexes dropped and built once afterwards when
most rows are written, and unchanged rows skipped before they reach the table.

- Initial load (empty table): the GIN and HNSW indexes are dropped, each chunk is COPied straight into `products`
  (its own transaction, so a killed load keeps what committed; several connections at once when given: the
  generated full-text document, ~0.3 ms of CPU a product, is computed by the server process that receives the
  row), then both indexes are built once with INDEX_BUILD_MAINTENANCE_WORK_MEM and INDEX_BUILD_PARALLEL_WORKERS.
- Later loads: each chunk is COPied into a staging table and only new or changed rows (content, or a vector
  different from the stored one) are upserted; when a chunk rewrites more than DEFER_FRACTION of its rows (new
  vectors for the catalog, say) the indexes are dropped for the rest of the load and built once at its end.
- `deferred_search_indexes` is the same index handling for the embedding pipeline's initial loads.
"""

from __future__ import annotations

import logging
import queue
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import psycopg

from shopagent.db import bulk as bulk_sql
from shopagent.db import catalog, schema, writes
from shopagent.db.connection import Connection
from shopagent.db.schema import DEFAULT_BUILD, DEFAULT_INDEX, IndexBuild, VectorIndexSpec
from shopagent.db.writes import ProductRow
from shopagent.ingest.summary import RunSummary

log = logging.getLogger(__name__)

# A chunk that writes more than this share of its rows is a bulk rewrite: building the indexes once afterwards
# beats maintaining them row by row.
DEFER_FRACTION = 0.2
CHUNK_ROWS = 20_000


@dataclass
class BulkSummary(RunSummary):
    """What a bulk load did; times in seconds."""

    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    initial: bool = False
    indexes_deferred: bool = False
    load_s: float = 0.0
    index_build_s: dict[str, float] = field(default_factory=dict)
    vacuum_s: float = 0.0

    @property
    def rows_per_s(self) -> float:
        """Rows read per second of writing them (index builds and VACUUM excluded)."""
        return self.read / self.load_s if self.load_s else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly summary."""
        return {
            **super().as_dict(),
            "load_s": round(self.load_s, 2),
            "index_build_s": {k: round(v, 2) for k, v in self.index_build_s.items()},
            "vacuum_s": round(self.vacuum_s, 2),
            "rows_per_s": round(self.rows_per_s, 1),
        }


class SearchIndexes:
    """The GIN and HNSW indexes of one load: dropped at most once (`defer`), built when the load ends."""

    def __init__(self, conn: Connection, spec: VectorIndexSpec, build: IndexBuild):
        """Nothing is dropped yet."""
        self.conn, self.spec, self.build = conn, spec, build
        self.deferred = False
        self.build_s: dict[str, float] = {}

    def defer(self) -> None:
        """Drop both indexes (in the caller's transaction, if any) until the load ends."""
        if not self.deferred:
            schema.drop_fulltext_index(self.conn)
            schema.drop_vector_index(self.conn)
            self.deferred = True
            log.info("search indexes dropped: they are built once when the load ends")


@contextmanager
def deferred_search_indexes(
    conn: Connection, spec: VectorIndexSpec, build: IndexBuild, *, defer: bool
) -> Iterator[SearchIndexes]:
    """Drop the search indexes now when `defer`, and build whichever is missing on the way out, also after an
    error (and so after a load killed earlier, on the next run)."""
    indexes = SearchIndexes(conn, spec, build)
    if defer:
        indexes.defer()
    try:
        yield indexes
    finally:
        indexes.build_s = schema.build_search_indexes(conn, spec, build)


def _chunks(rows: Iterable[ProductRow], size: int) -> Iterator[list[ProductRow]]:
    """Consecutive lists of at most `size` rows."""
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def _write_chunk(conn: Connection, rows: list[ProductRow], initial: bool, indexes: SearchIndexes) -> tuple[int, int]:
    """One chunk in one transaction; (inserted, updated)."""
    with conn.transaction():
        if initial:
            try:
                with conn.transaction():  # a savepoint: ids an earlier chunk loaded fall back to the upsert
                    return bulk_sql.copy_rows(conn, "products", rows), 0
            except (psycopg.errors.UniqueViolation, psycopg.errors.DeadlockDetected):
                log.info("chunk repeats ids already loaded: upserting it instead")
        bulk_sql.create_stage(conn)
        bulk_sql.copy_rows(conn, bulk_sql.STAGE, rows)
        if not indexes.deferred and bulk_sql.count_staged_changes(conn) > DEFER_FRACTION * len(rows):
            indexes.defer()
        return bulk_sql.apply_stage(conn)


def _write_parallel(
    conns: list[Connection], chunks: Iterator[list[ProductRow]], indexes: SearchIndexes
) -> Iterator[tuple[int, int, int]]:
    """Initial-load chunks over several connections at once (the per-row full-text work runs in each server
    process, so streams use more cores); yields (rows, inserted, updated) per chunk as they finish."""
    free: queue.Queue[Connection] = queue.Queue()
    for c in conns:
        free.put(c)

    def task(rows: list[ProductRow]) -> tuple[int, int, int]:
        conn = free.get()
        try:
            return len(rows), *_write_chunk(conn, rows, True, indexes)
        finally:
            free.put(conn)

    with ThreadPoolExecutor(len(conns)) as pool:
        pending: deque[Future[tuple[int, int, int]]] = deque()
        for chunk in chunks:
            if len(pending) >= 2 * len(conns):  # bound the chunks held in memory
                yield pending.popleft().result()
            pending.append(pool.submit(task, chunk))
        while pending:
            yield pending.popleft().result()


def load(
    conn: Connection,
    rows: Iterable[ProductRow],
    *,
    spec: VectorIndexSpec = DEFAULT_INDEX,
    build: IndexBuild = DEFAULT_BUILD,
    chunk_rows: int = CHUNK_ROWS,
    streams: Sequence[Connection] = (),
    progress: Callable[[int], object] | None = None,
) -> BulkSummary:
    """Write `rows` (with their vectors, or None to keep the stored one) into `products` by binary COPY.

    An initial load also uses the extra autocommit connections in `streams` (COPY in parallel). A duplicate id
    within a chunk keeps the last row, as the pipeline does. `conn` must be autocommit (each chunk is its own
    transaction; VACUUM runs at the end). Raises psycopg errors (a row the table refuses)."""
    summary = BulkSummary()
    started = time.perf_counter()
    summary.initial = catalog.product_count(conn) == 0
    chunks = (list({r.id: r for r in chunk}.values()) for chunk in _chunks(rows, chunk_rows))
    with deferred_search_indexes(conn, spec, build, defer=summary.initial) as indexes:
        if summary.initial and streams:
            written = _write_parallel([conn, *streams], chunks, indexes)
        else:
            written = ((len(c), *_write_chunk(conn, c, summary.initial, indexes)) for c in chunks)
        for n, inserted, updated in written:
            summary.read += n
            summary.inserted += inserted
            summary.updated += updated
            summary.unchanged += n - inserted - updated
            if progress is not None:
                progress(n)
        summary.load_s = time.perf_counter() - started
    summary.index_build_s = indexes.build_s
    summary.indexes_deferred = indexes.deferred
    if summary.inserted or summary.updated:
        vacuum_started = time.perf_counter()
        writes.analyze(conn)
        summary.vacuum_s = time.perf_counter() - vacuum_started
    summary.seconds = time.perf_counter() - started
    summary.coverage_pct = float(catalog.coverage(conn).get("coverage_pct") or 0.0)
    return summary
