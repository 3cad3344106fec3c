"""The multilingual vectors (name + brand, USE multilingual v3) of products that lack one: new products, and
those whose name or brand changed (a trigger clears the vector). Run after each ingest; idempotent."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from langchain_core.embeddings import Embeddings

from shopagent.db import catalog, writes
from shopagent.db.connection import Connection
from shopagent.embeddings.multilingual import product_text

log = logging.getLogger(__name__)


def backfill_multilingual(
    conn: Connection, model: Embeddings, *, batch_size: int = 256, progress: Callable[[int], object] | None = None
) -> tuple[int, list[str]]:
    """Embed every product without a multilingual vector; (vectors written, ids refused for a zero or non-finite
    vector). Refused ids are left without one and retried by the next run."""
    written = 0
    refused: list[str] = []
    while rows := [r for r in catalog.missing_multilingual(conn, batch_size + len(refused)) if r["id"] not in refused]:
        vectors = np.asarray(model.embed_documents([product_text(r) for r in rows[:batch_size]]), dtype=np.float32)
        good = []
        for row, vector in zip(rows[:batch_size], vectors, strict=True):
            if np.all(np.isfinite(vector)) and float(np.linalg.norm(vector)) > 0:
                good.append((row["id"], vector.tolist()))
            else:
                refused.append(row["id"])
                log.error("multilingual vector of %s is zero or not finite: not stored", row["id"])
        written += writes.write_multilingual(conn, good)
        if progress is not None:
            progress(len(rows[:batch_size]))
    return written, refused
