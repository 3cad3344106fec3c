"""The ingest pipeline: embed only new or changed products, upsert in batches (each batch commits, so a
killed run resumes where it stopped), keep other stores in step through a per-batch hook."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from itertools import islice
from typing import Any

from langchain_core.embeddings import Embeddings

from shopagent.db import catalog, writes
from shopagent.db.connection import Connection
from shopagent.db.schema import DEFAULT_BUILD, DEFAULT_INDEX, IndexBuild, VectorIndexSpec
from shopagent.db.writes import ProductRow
from shopagent.embeddings.text import EMBEDDING_VERSION
from shopagent.ingest.bulk import deferred_search_indexes
from shopagent.ingest.reader import CatalogError, normalise
from shopagent.ingest.summary import RunSummary

log = logging.getLogger(__name__)


@dataclass
class IngestSummary(RunSummary):
    """What an ingest run did."""

    read: int = 0
    inserted: int = 0
    updated: int = 0
    embedded: int = 0
    skipped: int = 0
    multilingual_embedded: int = 0

    @property
    def products_per_s(self) -> float:
        """Throughput over the whole run (reading, embedding and writing)."""
        return self.read / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly summary."""
        return {**super().as_dict(), "products_per_s": round(self.products_per_s, 1)}


def _batches(items: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    """Consecutive lists of at most `size` items."""
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


BatchHook = Callable[[list[ProductRow]], None]


def ingest(
    conn: Connection,
    embeddings: Embeddings,
    model_name: str,
    records: Iterable[dict[str, Any]],
    *,
    batch_size: int = 256,
    force: bool = False,
    on_batch: BatchHook | None = None,
    progress: Callable[[int], object] | None = None,
    index: VectorIndexSpec = DEFAULT_INDEX,
    build: IndexBuild = DEFAULT_BUILD,
) -> IngestSummary:
    """Upsert `records`, embedding only new or changed products (all of them with `force`).

    `on_batch` receives each batch's newly embedded rows just before the batch commits (to keep other
    stores in step). `index` and `build` say how the search indexes are rebuilt after an initial load.
    """
    summary = IngestSummary()
    started = time.perf_counter()
    # Initial load: the search indexes are built once at the end, not row by row (and rebuilt after a killed one).
    with deferred_search_indexes(conn, index, build, defer=catalog.product_count(conn) == 0):
        _ingest_batches(conn, embeddings, model_name, records, summary, batch_size, force, on_batch, progress)
    if summary.inserted or summary.updated:
        writes.analyze(conn)
    summary.seconds = time.perf_counter() - started
    summary.coverage_pct = float(catalog.coverage(conn).get("coverage_pct") or 0.0)
    return summary


def _ingest_batches(
    conn: Connection,
    embeddings: Embeddings,
    model_name: str,
    records: Iterable[dict[str, Any]],
    summary: IngestSummary,
    batch_size: int,
    force: bool,
    on_batch: BatchHook | None,
    progress: Callable[[int], object] | None,
) -> None:
    """The batch loop of `ingest`, accumulating into `summary`."""
    for raw_batch in _batches(records, batch_size):
        rows: dict[str, ProductRow] = {}
        for raw in raw_batch:
            try:
                row = normalise(raw, model_name)
            except CatalogError as exc:
                summary.errors += 1
                summary.note_error(str(exc))
                continue
            rows[row.id] = row  # a duplicate id later in the batch wins, as it would across batches
        summary.read += len(raw_batch)
        stored = catalog.stored_hashes(conn, list(rows))
        todo = [r for r in rows.values() if force or stored.get(r.id) != (r.content_hash, True)]
        vectors: dict[str, list[float]] = {}
        if todo:
            try:
                embedded = embeddings.embed_documents([r.embedded_text for r in todo])
                if len(embedded) != len(todo):
                    raise RuntimeError(f"model returned {len(embedded)} vectors for {len(todo)} texts")
                vectors = {r.id: v for r, v in zip(todo, embedded, strict=True)}
            except Exception as exc:  # noqa: BLE001 - any model failure is counted, never a zero vector
                summary.errors += len(todo)
                summary.note_error(f"embedding failed for {len(todo)} products: {exc!r}")
                log.exception("embedding batch failed")
        final: list[ProductRow] = []
        for r in rows.values():
            if r.id in vectors:
                final.append(
                    replace(r, embedding=vectors[r.id], embedding_model=model_name, embedding_version=EMBEDDING_VERSION)
                )
            elif stored.get(r.id, ("", False))[0] == r.content_hash and not force:
                final.append(r)  # unchanged
            else:
                final.append(replace(r, content_hash=""))  # changed but not embedded: retried next run
        if on_batch is not None:
            # Before the commit: a run killed in between finds these not embedded in PostgreSQL and
            # redoes both writes; after it, the re-run would skip them and the other store would lack them.
            on_batch([r for r in final if r.embedding is not None])
        inserted, updated = writes.upsert_products(conn, final)
        summary.inserted += inserted
        summary.updated += updated
        summary.embedded += len(vectors)
        summary.skipped += len(rows) - len(todo)
        if progress is not None:
            progress(len(raw_batch))
