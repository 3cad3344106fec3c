"""A catalog sync, the whole job behind `shopagent ingest`: take the sync lock, read the source (a feed file or a
query on the shop's own database), load it (`pipeline`), apply explicit deletions, deactivate what a full feed
no longer lists (behind a guard), purge long-inactive products, and leave Chroma in step.

Modes: `incremental` (default) changes only what the source lists (a record with `deleted: true`, or an id in
the `delete_ids` file, deactivates that product); `full` says the source is the whole catalog, so active
products it does not list are deactivated once it has been read to the end (a run killed before that
deactivates nothing). The guard refuses that deactivation when it would hit more than `max_deactivate_share` of
the active catalog, or when some records had no readable id (a truncated or corrupt feed), unless `force`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Literal

from shopagent.db import catalog, lifecycle, schema
from shopagent.db.connection import Connection, connect
from shopagent.db.schema import IndexBuild, VectorIndexSpec
from shopagent.embeddings import embedding_dimension, embedding_model_name, make_embeddings
from shopagent.embeddings.multilingual import MultilingualEmbeddings
from shopagent.ingest.fields import price_rules
from shopagent.ingest.issues import RejectsFile
from shopagent.ingest.mapping import ColumnMapping
from shopagent.ingest.mirror import ChromaMirror
from shopagent.ingest.multilingual import backfill_multilingual
from shopagent.ingest.pipeline import IngestOptions, IngestSummary, ingest
from shopagent.ingest.reader import CatalogError, FeedRecord, read_catalog, read_source
from shopagent.services import prepare_database
from shopagent.settings import Settings

log = logging.getLogger(__name__)

STORES = ("pgvector", "chroma")
Mode = Literal["incremental", "full"]

# Exit statuses of `shopagent ingest` (documented in docs/readme/catalog.md).
EXIT_OK = 0  # every record stored (some values may have been repaired or nulled: see the summary)
EXIT_ROWS_FAILED = 1  # the run finished, but rows were rejected, not embedded, or not mirrored to Chroma
EXIT_USAGE = 2  # bad options, unreadable source, database unavailable, dimension mismatch: nothing done
EXIT_LOCKED = 3  # another sync holds the lock: nothing done
EXIT_GUARD = 4  # a full sync's deactivation was refused by the guard (the rest of the run was applied)


class SyncLockedError(RuntimeError):
    """Another sync (ingest or doctor) is running against this database."""


@dataclass(frozen=True)
class Source:
    """Where the catalog comes from: a feed file, or a query on another PostgreSQL database."""

    path: Path | None = None
    dsn: str | None = None
    query: str | None = None
    mapping: ColumnMapping = field(default_factory=ColumnMapping)

    def records(self, batch_size: int) -> Iterator[FeedRecord]:
        """The source's records with the column mapping applied. Raises CatalogError for a missing file or an
        unknown format."""
        if self.path is not None:
            return self.mapping.records(read_catalog(self.path))
        if self.dsn and self.query:
            return self.mapping.records(read_source(self.dsn, self.query, batch_size))
        raise CatalogError("no source: give a catalog file, or a source URL and query")


@dataclass
class SyncOptions:
    """Per-run choices; None means the settings' value."""

    mode: Mode = "incremental"
    stores: Collection[str] = ("pgvector",)
    batch_size: int = 256
    limit: int | None = None
    reembed: bool = False
    reset_embeddings: bool = False
    delete_ids: Path | None = None
    purge_after_days: float | None = None
    max_deactivate_share: float | None = None
    force: bool = False
    price_locale: str | None = None
    currency: str | None = None
    rejects: Path | None = None
    progress: Callable[[int], object] | None = None


@dataclass
class SyncSummary(IngestSummary):
    """An ingest summary plus what the sync did around it."""

    mode: Mode = "incremental"
    deletions_requested: int = 0
    deactivation: dict[str, object] | None = None
    purged: int = 0
    chroma_pending: int | None = None

    @property
    def exit_code(self) -> int:
        """EXIT_GUARD when the guard refused, EXIT_ROWS_FAILED when rows failed, else EXIT_OK."""
        if self.deactivation is not None and self.deactivation.get("refused"):
            return EXIT_GUARD
        if self.rejected or self.errors or self.chroma_pending:
            return EXIT_ROWS_FAILED
        return EXIT_OK


def read_ids(path: Path) -> list[str]:
    """Product ids from a text file, one a line (blank lines and `#` comments ignored). Raises CatalogError."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise CatalogError(f"cannot read the ids file {path}: {exc}") from exc
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def validate(options: SyncOptions) -> None:
    """Refuse option combinations that cannot mean what they say (ValueError)."""
    if unknown := set(options.stores) - set(STORES):
        raise ValueError(f"unknown store(s) {', '.join(sorted(unknown))}; valid: {', '.join(STORES)}")
    if options.mode == "full" and options.limit is not None:
        raise ValueError("--limit with --mode full would deactivate every product past the limit")
    if options.purge_after_days is not None and options.purge_after_days < 0:
        raise ValueError("--purge-after must be a number of days >= 0")


def run_sync(settings: Settings, source: Source, options: SyncOptions) -> SyncSummary:
    """Run one sync. Raises ValueError (bad options), CatalogError (unreadable source),
    DatabaseUnavailableError, EmbeddingDimensionError, SourceQueryError, SyncLockedError."""
    validate(options)
    rules = price_rules(
        options.price_locale or settings.feed_price_locale,
        options.currency or settings.feed_currency,
        settings.feed_max_price,
    )
    deletions = read_ids(options.delete_ids) if options.delete_ids else []
    records: Iterable[FeedRecord] = source.records(options.batch_size)
    if options.limit is not None:
        records = islice(records, options.limit)
    embeddings = make_embeddings(settings)
    if options.reset_embeddings:
        with connect(settings) as conn:
            schema.migrate(conn, embedding_dimension(embeddings))
            schema.reset_embedding_column(
                conn, embedding_dimension(embeddings), VectorIndexSpec.from_settings(settings)
            )
    started = time.perf_counter()
    with prepare_database(settings, embeddings) as conn:
        if not lifecycle.try_sync_lock(conn):
            raise SyncLockedError("another sync (ingest or doctor) is running against this database")
        mirror = None
        if "chroma" in options.stores:
            from shopagent.retrieval.chroma import ChromaStore

            mirror = ChromaMirror(ChromaStore.from_settings(settings), embedding_dimension(embeddings))
        if options.mode == "full":
            lifecycle.start_seen(conn)
        rejects = RejectsFile(options.rejects) if options.rejects else None
        try:
            loaded = ingest(
                conn,
                embeddings,
                embedding_model_name(embeddings),
                records,
                IngestOptions(
                    batch_size=options.batch_size,
                    reembed=options.reembed,
                    rules=rules,
                    mirror=mirror,
                    track_seen=options.mode == "full",
                    on_report=rejects.write if rejects else None,
                    progress=options.progress,
                    index=VectorIndexSpec.from_settings(settings),
                    build=IndexBuild.from_settings(settings),
                ),
            )
        finally:
            if rejects is not None:
                rejects.close()
        summary = SyncSummary(**vars(loaded), mode=options.mode, deletions_requested=len(deletions))
        _lifecycle(conn, settings, options, deletions, summary)
        if settings.multilingual_languages:
            summary.multilingual_embedded, refused = backfill_multilingual(conn, MultilingualEmbeddings())
            if refused:
                summary.fail(refused, f"{len(refused)} multilingual vectors are zero or not finite: not stored")
        if mirror is not None and summary.chroma is not None:
            try:
                summary.chroma.add(mirror.push(conn))
            except Exception as exc:  # noqa: BLE001 - Chroma raises many types; the entries stay queued
                log.exception("Chroma push failed; changes stay queued")
                summary.note_error(f"Chroma push failed, changes stay queued: {exc!r}")
            summary.chroma_pending = lifecycle.outbox_count(conn)
        summary.seconds = time.perf_counter() - started
        summary.coverage_pct = float(catalog.coverage(conn).get("coverage_pct") or 0.0)
        return summary


def _lifecycle(
    conn: Connection, settings: Settings, options: SyncOptions, deletions: list[str], summary: SyncSummary
) -> None:
    """Explicit deletions, a full feed's deactivations (behind the guard), the purge."""
    if deletions:
        summary.deactivated += len(lifecycle.deactivate(conn, deletions))
    if options.mode == "full":
        share_limit = (
            settings.sync_max_deactivate_share if options.max_deactivate_share is None else options.max_deactivate_share
        )
        active, absent = lifecycle.absent_counts(conn)
        share = absent / active if active else 0.0
        refused = None
        if absent and summary.unidentified and not options.force:
            refused = f"{summary.unidentified} feed records had no readable id (a truncated or corrupt feed?)"
        elif absent and share > share_limit and not options.force:
            refused = f"would deactivate {absent} of {active} active products ({share:.0%} > {share_limit:.0%})"
        if refused:
            log.error("full sync: deactivation refused: %s; rerun with --force if this is intended", refused)
        else:
            summary.deactivated += len(lifecycle.deactivate_absent(conn))
        summary.deactivation = {
            "active_before": active,
            "absent": absent,
            "share": round(share, 4),
            "max_share": share_limit,
            "applied": refused is None,
            "refused": refused,
        }
    if options.purge_after_days is not None:
        summary.purged = len(lifecycle.purge_inactive(conn, options.purge_after_days))
