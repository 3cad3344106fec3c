"""`shopagent doctor`: compare Chroma with PostgreSQL (the source of truth) and repair the drift.

Checked for every product: present on both sides (PostgreSQL products with a vector <-> Chroma ids), the model
that made the vector, the vector itself, the embedded text, and every metadata field search filters on or shows
(`shopagent.retrieval.chroma.metadata`). Repairs go through the mirror: missing ids and differing vectors or
texts are upserted from PostgreSQL, differing metadata is updated in place, ids PostgreSQL lacks are removed. An
unusable vector in PostgreSQL (zeros, wrong size) is dropped there, so the next sync embeds the text again, and
removed from Chroma. Nothing is embedded here.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shopagent.db import lifecycle
from shopagent.db.connection import Connection
from shopagent.embeddings import vector_problem
from shopagent.ingest.chroma_plan import TOLERANCE, batches
from shopagent.ingest.mirror import ChromaMirror, MirrorCounts
from shopagent.retrieval.chroma import metadata

MAX_LISTED_IDS = 50


@dataclass
class DoctorReport:
    """What differed (ids by kind of drift; metadata drift also by field) and, after a repair, what was done."""

    postgres: int = 0
    chroma: int = 0
    drift: dict[str, list[str]] = field(
        default_factory=lambda: {
            k: []
            for k in ("missing_in_chroma", "extra_in_chroma", "model", "vector", "text", "metadata", "invalid_vector")
        }
    )
    metadata_fields: Counter[str] = field(default_factory=Counter)
    queued_pushed: MirrorCounts | None = None
    repaired: MirrorCounts | None = None

    @property
    def drifted(self) -> int:
        """Products that differ in any way."""
        return sum(len(ids) for ids in self.drift.values())

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly: counts, the first ids of each kind, the fields that drifted, what was repaired."""
        return {
            "in_step": self.drifted == 0,
            "postgres_products_with_vectors": self.postgres,
            "chroma_ids": self.chroma,
            "drift": {k: len(v) for k, v in self.drift.items()},
            "drift_ids": {k: v[:MAX_LISTED_IDS] for k, v in self.drift.items() if v},
            "metadata_fields": dict(self.metadata_fields.most_common()),
            "queued_pushed": self.queued_pushed.as_dict() if self.queued_pushed else None,
            "repaired": self.repaired.as_dict() if self.repaired else None,
        }


def _same(expected: Any, found: Any) -> bool:
    """Metadata equality, floats within rounding."""
    if isinstance(expected, float) and isinstance(found, int | float):
        return math.isclose(expected, float(found), rel_tol=1e-9, abs_tol=1e-6)
    return bool(expected == found)


def _compare(row: dict[str, Any], item: dict[str, Any], dimension: int, report: DoctorReport) -> None:
    """Record how one product differs between PostgreSQL (`row`) and Chroma (`item`), if it does."""
    pid, meta = row["id"], item["metadata"]
    if vector_problem(row["embedding"], dimension):
        report.drift["invalid_vector"].append(pid)
    elif meta.get("embedding_model") != (row["embedding_model"] or ""):
        report.drift["model"].append(pid)
    elif (
        item["embedding"] is None
        or item["embedding"].shape != row["embedding"].shape
        or float(np.max(np.abs(row["embedding"] - item["embedding"]))) > TOLERANCE
    ):
        report.drift["vector"].append(pid)
    elif (item["document"] or "") != row["embedded_text"]:
        report.drift["text"].append(pid)
    else:
        fields = [k for k, v in metadata(row).items() if not _same(v, meta.get(k))]
        if fields:
            report.drift["metadata"].append(pid)
            report.metadata_fields.update(fields)


def examine(conn: Connection, mirror: ChromaMirror, batch_size: int = 500) -> DoctorReport:
    """Compare the two stores (reads only)."""
    report = DoctorReport()
    pg_ids, chroma_ids = set(lifecycle.embedded_ids(conn)), set(mirror.store.iter_ids())
    report.postgres, report.chroma = len(pg_ids), len(chroma_ids)
    for ids in batches(sorted(pg_ids - chroma_ids), batch_size):
        for pid, row in lifecycle.mirror_rows(conn, ids).items():
            kind = "invalid_vector" if vector_problem(row["embedding"], mirror.dimension) else "missing_in_chroma"
            report.drift[kind].append(pid)
    report.drift["extra_in_chroma"] = sorted(chroma_ids - pg_ids)
    for ids in batches(sorted(pg_ids & chroma_ids), batch_size):
        rows, items = lifecycle.mirror_rows(conn, ids), mirror.store.get(ids)
        for pid in ids:
            if pid in rows and pid in items:
                _compare(rows[pid], items[pid], mirror.dimension, report)
    return report


def doctor(conn: Connection, mirror: ChromaMirror, *, repair: bool = True) -> DoctorReport:
    """Push what is queued (with `repair`), compare the stores, and (with `repair`) make Chroma equal to
    PostgreSQL; the report lists the drift found. Call it holding the sync lock."""
    queued = mirror.push(conn) if repair else None
    report = examine(conn, mirror)
    report.queued_pushed = queued
    if not repair or not report.drifted:
        return report
    repaired = MirrorCounts()
    drift = report.drift
    if drift["invalid_vector"]:
        repaired.invalid = lifecycle.clear_vectors(conn, drift["invalid_vector"])
        repaired.add(mirror.push(conn, repaired.invalid))  # now without a vector: removed from Chroma
    rewrite = drift["missing_in_chroma"] + drift["model"] + drift["vector"] + drift["text"]
    for ids in batches(rewrite, mirror.batch_size):
        repaired.add(mirror.apply(conn, ids, set(ids)))
    for ids in batches(drift["metadata"] + drift["extra_in_chroma"], mirror.batch_size):
        repaired.add(mirror.apply(conn, ids, ()))
    report.repaired = repaired
    return report
