"""Loading catalogs: reading feeds (`reader`), the batched, resumable pipeline (`pipeline`), the summary every
bulk run reports (`summary`), and the Chroma -> pgvector copy (`chroma_plan`, `chroma_copy`).

`run_ingest` is the whole job behind `shopagent ingest`: migrate, load the feed into PostgreSQL (and Chroma).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from itertools import islice
from pathlib import Path

from shopagent.db import schema
from shopagent.db.connection import connect
from shopagent.db.schema import IndexBuild, VectorIndexSpec
from shopagent.embeddings import embedding_dimension, embedding_model_name, make_embeddings
from shopagent.embeddings.multilingual import MultilingualEmbeddings
from shopagent.ingest.multilingual import backfill_multilingual
from shopagent.ingest.pipeline import IngestSummary, ingest
from shopagent.ingest.reader import CatalogError, read_catalog

__all__ = ["STORES", "CatalogError", "IngestSummary", "run_ingest"]
from shopagent.services import prepare_database
from shopagent.settings import Settings

STORES = ("pgvector", "chroma")


def run_ingest(
    settings: Settings,
    catalog_path: Path,
    *,
    stores: Collection[str] = ("pgvector",),
    limit: int | None = None,
    batch_size: int = 256,
    force: bool = False,
    reset_embeddings: bool = False,
    progress: Callable[[int], object] | None = None,
) -> IngestSummary:
    """Load `catalog_path` into PostgreSQL (and Chroma when in `stores`), embedding only what changed.

    Raises `CatalogError` (unreadable feed), `DatabaseUnavailableError`, `EmbeddingDimensionError`,
    `ValueError` (unknown store)."""
    if unknown := set(stores) - set(STORES):
        raise ValueError(f"unknown store(s) {', '.join(sorted(unknown))}; valid: {', '.join(STORES)}")
    if not catalog_path.exists():
        raise CatalogError(f"catalog not found: {catalog_path}")
    embeddings = make_embeddings(settings)
    if reset_embeddings:
        with connect(settings) as conn:
            schema.migrate(conn, embedding_dimension(embeddings))
            dim = embedding_dimension(embeddings)
            schema.reset_embedding_column(conn, dim, VectorIndexSpec.from_settings(settings))
    on_batch = None
    if "chroma" in stores:
        from shopagent.retrieval.chroma import ChromaStore

        on_batch = ChromaStore.from_settings(settings).upsert_rows
    records = read_catalog(catalog_path)
    if limit is not None:
        records = islice(records, limit)
    with prepare_database(settings, embeddings) as conn:
        summary = ingest(
            conn,
            embeddings,
            embedding_model_name(embeddings),
            records,
            batch_size=batch_size,
            force=force,
            on_batch=on_batch,
            progress=progress,
            index=VectorIndexSpec.from_settings(settings),
            build=IndexBuild.from_settings(settings),
        )
        if settings.multilingual_languages:
            started = time.perf_counter()
            summary.multilingual_embedded, refused = backfill_multilingual(conn, MultilingualEmbeddings())
            summary.seconds += time.perf_counter() - started
            summary.errors += len(refused)
            for pid in refused:
                summary.note_error(f"{pid}: multilingual vector is zero or not finite")
        return summary
