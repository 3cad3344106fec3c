"""Loading and syncing catalogs: reading feeds (`reader`, cleaned by `fields`, problems as `issues`), the
batched, resumable pipeline (`pipeline`), keeping Chroma in step (`mirror`), the whole sync behind
`shopagent ingest` (`sync`), comparing and repairing the two stores (`doctor`), the summary every bulk run
reports (`summary`), and the Chroma -> pgvector copy (`chroma_plan`, `chroma_copy`)."""

from __future__ import annotations

from shopagent.ingest.pipeline import IngestSummary
from shopagent.ingest.reader import CatalogError
from shopagent.ingest.sync import STORES, Source, SyncOptions, SyncSummary, run_sync

__all__ = ["STORES", "CatalogError", "IngestSummary", "Source", "SyncOptions", "SyncSummary", "run_sync"]
