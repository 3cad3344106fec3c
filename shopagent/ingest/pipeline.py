"""The ingest pipeline: embed only new or changed products, upsert in batches (each batch commits, so a killed
run resumes where it stopped), push each committed batch to Chroma (`mirror`), and never let one bad row cost
its neighbours: a batch PostgreSQL refuses is written again row by row and only the rows it still refuses are
rejected. Every rejected, repaired or nulled value is reported by id (`RowReport`)."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import Any

import psycopg
from langchain_core.embeddings import Embeddings

from shopagent.db import catalog, lifecycle, writes
from shopagent.db.connection import Connection
from shopagent.db.schema import DEFAULT_BUILD, DEFAULT_INDEX, IndexBuild, VectorIndexSpec
from shopagent.db.writes import ProductRow, UpsertResult
from shopagent.embeddings import EMBEDDING_VERSION, embedding_dimension, vector_problem
from shopagent.ingest.bulk import deferred_search_indexes
from shopagent.ingest.fields import PriceRules
from shopagent.ingest.issues import Issue, RowReport
from shopagent.ingest.mirror import ChromaMirror, MirrorCounts
from shopagent.ingest.reader import FeedRecord, RowRejected, as_records, normalise
from shopagent.ingest.summary import RunSummary

log = logging.getLogger(__name__)
MAX_ROW_SAMPLES = 50


@dataclass
class IngestSummary(RunSummary):
    """What an ingest run did. `updated` rows include `metadata_only` ones (changed without re-embedding);
    `rejected` rows were not stored, `repaired` ones were stored with values cleaned or nulled (`issues` counts
    by reason, `row_samples` the first rows by id); `errors` are products stored without a new vector."""

    read: int = 0
    inserted: int = 0
    updated: int = 0
    metadata_only: int = 0
    embedded: int = 0
    skipped: int = 0
    rejected: int = 0
    repaired: int = 0
    unidentified: int = 0
    deactivated: int = 0
    issues: Counter[str] = field(default_factory=Counter)
    row_samples: list[dict[str, Any]] = field(default_factory=list)
    chroma: MirrorCounts | None = None
    multilingual_embedded: int = 0

    @property
    def products_per_s(self) -> float:
        """Throughput over the whole run (reading, embedding and writing)."""
        return self.read / self.seconds if self.seconds else 0.0

    def note_row(self, report: RowReport) -> None:
        """Count a row that had issues."""
        if report.rejected:
            self.rejected += 1
            self.unidentified += report.product_id is None
        else:
            self.repaired += 1
        self.issues.update(i.reason for i in report.issues)
        if len(self.row_samples) < MAX_ROW_SAMPLES:
            self.row_samples.append(report.as_dict())

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly summary."""
        return {
            **super().as_dict(),
            "issues": dict(self.issues.most_common()),
            "chroma": self.chroma.as_dict() if self.chroma else None,
            "products_per_s": round(self.products_per_s, 1),
        }


def _batches(items: Iterable[FeedRecord], size: int) -> Iterator[list[FeedRecord]]:
    """Consecutive lists of at most `size` items."""
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


ReportHook = Callable[[RowReport], None]


def _fresh(state: catalog.SyncState | None, row: ProductRow) -> bool:
    """The stored vector is fresh and was made from this row's text (by this model)."""
    return state is not None and state.fresh and state.content_hash == row.content_hash


@dataclass
class IngestOptions:
    """How to run an ingest: batch size, re-embedding everything, price rules, Chroma, reporting hooks, and
    whether to record the ids seen (a full sync deactivates the others afterwards)."""

    batch_size: int = 256
    reembed: bool = False
    rules: PriceRules = field(default_factory=PriceRules)
    mirror: ChromaMirror | None = None
    track_seen: bool = False
    on_report: ReportHook | None = None
    progress: Callable[[int], object] | None = None
    # How the search indexes are rebuilt after an initial load (HNSW_* and INDEX_BUILD_* settings).
    index: VectorIndexSpec = DEFAULT_INDEX
    build: IndexBuild = DEFAULT_BUILD


def ingest(
    conn: Connection,
    embeddings: Embeddings,
    model_name: str,
    records: Iterable[FeedRecord | dict[str, Any]],
    options: IngestOptions | None = None,
    **overrides: Any,
) -> IngestSummary:
    """Upsert `records` (feed records or plain dicts), embedding only new or changed products (all of them with
    `reembed`); `overrides` set `IngestOptions` fields. Raises psycopg.OperationalError when the database goes
    away, and what the mirror's Chroma raises."""
    opts = replace(options or IngestOptions(), **overrides)
    summary = IngestSummary(chroma=MirrorCounts() if opts.mirror else None)
    started = time.perf_counter()
    loader = _Loader(conn, embeddings, model_name, opts, summary)
    loader.mirror()  # what a killed run committed but did not mirror
    # Initial load: the search indexes are built once at the end, not row by row (and rebuilt after a killed one).
    with deferred_search_indexes(conn, opts.index, opts.build, defer=catalog.product_count(conn) == 0):
        for raw_batch in _batches(as_records(records), opts.batch_size):
            loader.run(raw_batch)
            if opts.progress is not None:
                opts.progress(len(raw_batch))
    loader.mirror()  # what a failed batch push left queued
    if summary.inserted or summary.updated:
        writes.analyze(conn)
    summary.seconds = time.perf_counter() - started
    summary.coverage_pct = float(catalog.coverage(conn).get("coverage_pct") or 0.0)
    return summary


@dataclass
class _Loader:
    """The batch loop: per batch, normalise, embed what changed, write (row by row if the batch fails), mirror;
    across batches, the ids seen and whether Chroma failed."""

    conn: Connection
    embeddings: Embeddings
    model: str
    opts: IngestOptions
    summary: IngestSummary
    dimension: int = 0
    mirror_failed: bool = False
    seen: set[str] = field(default_factory=set)  # ids read so far (~100 bytes each), to report duplicates

    def __post_init__(self) -> None:
        """The model's dimension, to refuse vectors of another size."""
        self.dimension = embedding_dimension(self.embeddings)

    def run(self, raw_batch: list[FeedRecord]) -> None:
        """Process one batch of feed records."""
        self.summary.read += len(raw_batch)
        rows, reports, sources = self._normalise(raw_batch)
        live = [r for r in rows.values() if r.active]
        deleted = [pid for pid, r in rows.items() if not r.active]
        stored = catalog.sync_states(self.conn, [r.id for r in live])
        if not self.opts.reembed:  # rows identical to what is stored (and active) are not even sent
            live = [r for r in live if stored.get(r.id) != (r.content_hash, True, writes.row_hash(r), True)]
        todo = [r for r in live if self.opts.reembed or not _fresh(stored.get(r.id), r)]
        todo_ids = {r.id for r in todo}
        vectors = self._embed(todo)
        final: list[ProductRow] = []
        for r in live:
            if r.id in vectors:
                final.append(
                    replace(r, embedding=vectors[r.id], embedding_model=self.model, embedding_version=EMBEDDING_VERSION)
                )
            elif r.id not in todo_ids:
                final.append(r)  # text unchanged: the stored vector still describes it
            else:
                final.append(replace(r, content_hash=""))  # changed but not embedded: retried next run
        result, refused = self._write(final)
        for pid, issue in refused.items():
            source = sources[pid]
            reports.setdefault(pid, RowReport(source.where, pid, list(source.issues), source.data)).issues.append(issue)
        if deleted:
            self.summary.deactivated += len(lifecycle.deactivate(self.conn, deleted))
        if self.opts.track_seen:
            lifecycle.mark_seen(self.conn, list(rows))
        self.summary.inserted += result.inserted
        self.summary.updated += result.updated
        self.summary.metadata_only += result.metadata_only
        self.summary.embedded += sum(pid in result.changed for pid in vectors)
        self.summary.skipped += len(rows) - len(deleted) - len(result.changed) - len(refused)
        for report in reports.values():
            self.summary.note_row(report)
            if self.opts.on_report is not None:
                self.opts.on_report(report)
        self.mirror(list(result.changed) + deleted)

    def _normalise(
        self, raw_batch: list[FeedRecord]
    ) -> tuple[dict[str, ProductRow], dict[str, RowReport], dict[str, FeedRecord]]:
        """Rows by id (a later duplicate wins), the reports of rows with issues (keyed by id, or position when
        there is none) and each row's feed record."""
        rows: dict[str, ProductRow] = {}
        reports: dict[str, RowReport] = {}
        sources: dict[str, FeedRecord] = {}
        for rec in raw_batch:
            issues = list(rec.issues)
            if rec.data is None:
                reports[rec.where] = RowReport(rec.where, None, issues, rec.raw)
                continue
            try:
                row = normalise(rec.data, self.model, self.opts.rules, issues)
            except RowRejected as exc:
                reports[rec.where] = RowReport(rec.where, None, [*issues, exc.issue], rec.data)
                continue
            if row.id in self.seen:
                issues.append(Issue("repaired", "duplicate_id", "product_id", "replaces an earlier record"))
            self.seen.add(row.id)
            rows[row.id], sources[row.id] = row, rec
            reports.pop(row.id, None)
            if issues:
                reports[row.id] = RowReport(rec.where, row.id, issues, rec.data)
        return rows, reports, sources

    def _embed(self, todo: list[ProductRow]) -> dict[str, list[float]]:
        """Vectors for `todo` by id; a failed model call or an unusable vector is an error for those ids (the
        rows are stored without a new vector and retried next run), never a stored zero vector."""
        if not todo:
            return {}
        try:
            embedded = self.embeddings.embed_documents([r.embedded_text for r in todo])
            if len(embedded) != len(todo):
                raise RuntimeError(f"model returned {len(embedded)} vectors for {len(todo)} texts")
        except Exception as exc:  # noqa: BLE001 - any model failure is counted, never a zero vector
            log.exception("embedding batch failed")
            self.summary.fail([r.id for r in todo], f"embedding failed for {len(todo)} products: {exc!r}")
            return {}
        vectors: dict[str, list[float]] = {}
        for r, v in zip(todo, embedded, strict=True):
            if problem := vector_problem(v, self.dimension):
                self.summary.fail([r.id], f"{r.id}: the model returned an unusable vector ({problem})")
            else:
                vectors[r.id] = v
        return vectors

    def _write(self, rows: list[ProductRow]) -> tuple[UpsertResult, dict[str, Issue]]:
        """Upsert the batch; if PostgreSQL refuses it, upsert row by row. Returns what was written and why each
        row PostgreSQL still refused was rejected."""
        try:
            return writes.upsert_products(self.conn, rows), {}
        except (psycopg.Error, ValueError) as exc:
            if self.conn.broken or self.conn.closed:
                raise
            log.warning("batch of %d rows refused (%s); writing them one by one", len(rows), type(exc).__name__)
        result, refused = UpsertResult(), {}
        for row in rows:
            try:
                one = writes.upsert_products(self.conn, [row])
            except (psycopg.Error, ValueError) as exc:
                if self.conn.broken or self.conn.closed:
                    raise
                detail = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
                refused[row.id] = Issue("rejected", "database_rejected", None, detail)
                continue
            result.inserted += one.inserted
            result.updated += one.updated
            result.metadata_only += one.metadata_only
            result.changed.update(one.changed)
        return result, refused

    def mirror(self, ids: list[str] | None = None) -> None:
        """Push committed changes to Chroma (these ids', or everything queued); after a Chroma failure, leave
        them queued for the next run instead of failing every batch."""
        mirror, counts = self.opts.mirror, self.summary.chroma
        if mirror is None or counts is None or ids == [] or self.mirror_failed:
            return
        try:
            counts.add(mirror.push(self.conn, ids))
        except Exception as exc:  # noqa: BLE001 - Chroma raises many types; the entries stay queued
            log.exception("Chroma push failed; changes stay queued")
            self.mirror_failed = True
            self.summary.note_error(f"Chroma push failed, changes stay queued: {exc!r}")
