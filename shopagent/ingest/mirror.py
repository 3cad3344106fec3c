"""Keeping Chroma in step with PostgreSQL, which is the source of truth.

Every change committed to `products` queues its id in `chroma_outbox` in the same transaction
(`shopagent.db.writes`, `shopagent.db.lifecycle`); `ChromaMirror.push` writes queued ids to Chroma after the
commit and only then removes them from the queue. A run killed between the two leaves the ids queued, and the
next push (every sync starts with one) completes them: the stores end every run in step, and nothing is embedded
again for it. A changed vector is upserted; a metadata-only change (price, stock, active...) updates Chroma's
metadata without touching the vector; a product gone from PostgreSQL, or without a usable vector there, is
removed from Chroma.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from shopagent.db import lifecycle
from shopagent.db.connection import Connection
from shopagent.embeddings import vector_problem
from shopagent.retrieval.chroma import ChromaStore

log = logging.getLogger(__name__)


@dataclass
class MirrorCounts:
    """What a push (or a repair) wrote to Chroma; `invalid` are ids whose PostgreSQL vector is unusable."""

    vectors: int = 0
    metadata: int = 0
    deleted: int = 0
    invalid: list[str] = field(default_factory=list)

    def add(self, other: MirrorCounts) -> None:
        """Accumulate another push's counts."""
        self.vectors += other.vectors
        self.metadata += other.metadata
        self.deleted += other.deleted
        self.invalid += other.invalid

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly."""
        return asdict(self)


class ChromaMirror:
    """Writes PostgreSQL's state of queued (or given) product ids to a Chroma collection."""

    def __init__(self, store: ChromaStore, dimension: int, batch_size: int = 500):
        """`dimension`: the model's, to refuse vectors of another size."""
        self.store = store
        self.dimension = dimension
        self.batch_size = batch_size

    def push(self, conn: Connection, ids: Sequence[str] | None = None) -> MirrorCounts:
        """Write the queued entries (only those of `ids` when given) to Chroma, then dequeue them. Raises what
        Chroma raises (the entries stay queued)."""
        counts = MirrorCounts()
        if ids is not None:
            for start in range(0, len(ids), self.batch_size):
                chunk = ids[start : start + self.batch_size]
                self._push_entries(conn, lifecycle.outbox_batch(conn, len(chunk), chunk), counts)
            return counts
        # Bounded: an entry re-queued while this runs is left for the next push.
        for _ in range(lifecycle.outbox_count(conn) // self.batch_size + 1):
            if not (entries := lifecycle.outbox_batch(conn, self.batch_size)):
                break
            self._push_entries(conn, entries, counts)
        return counts

    def _push_entries(self, conn: Connection, entries: list[dict[str, Any]], counts: MirrorCounts) -> None:
        """Apply one batch of queue entries, then dequeue them."""
        if entries:
            ids = [e["id"] for e in entries]
            counts.add(self.apply(conn, ids, {e["id"] for e in entries if e["vector"]}))
            lifecycle.outbox_done(conn, entries)

    def apply(self, conn: Connection, ids: Sequence[str], vector_ids: Collection[str]) -> MirrorCounts:
        """Make Chroma hold PostgreSQL's state of `ids`: upsert those in `vector_ids` or missing from Chroma,
        update the metadata of the others, remove those PostgreSQL lacks or has no usable vector for."""
        rows = lifecycle.mirror_rows(conn, ids)
        counts = MirrorCounts()
        remove: list[str] = []
        usable: dict[str, dict[str, Any]] = {}
        for pid in ids:
            row = rows.get(pid)
            if row is None or row["embedding"] is None:
                remove.append(pid)
            elif problem := vector_problem(row["embedding"], self.dimension):
                log.error("product %s has an unusable vector in PostgreSQL (%s): removed from Chroma", pid, problem)
                counts.invalid.append(pid)
                remove.append(pid)
            else:
                usable[pid] = row
        present = self.store.existing(ids)
        remove = [pid for pid in remove if pid in present]
        upserts = [row for pid, row in usable.items() if pid in vector_ids or pid not in present]
        updates = [row for pid, row in usable.items() if pid not in vector_ids and pid in present]
        self.store.delete(remove)
        self.store.upsert(upserts)
        self.store.update_metadata(updates)
        counts.deleted, counts.vectors, counts.metadata = len(remove), len(upserts), len(updates)
        return counts
