"""Chroma -> pgvector copy, part 2: the batched copy (one transaction per batch, so an interrupted run leaves
whole batches and a re-run skips what is already identical; `force` re-copies everything), the
verification, and the whole run behind `shopagent migrate-chroma`."""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from langchain_core.embeddings import Embeddings

from shopagent.db import catalog, schema, writes
from shopagent.db.connection import Connection, DatabaseUnavailableError, connect
from shopagent.db.writes import ProductRow
from shopagent.embeddings import EMBEDDING_VERSION, content_hash, embedding_dimension, embedding_model_name
from shopagent.ingest.chroma_plan import (
    TOLERANCE,
    Plan,
    analyse,
    batches,
    decide,
    open_chroma,
    preflight,
    reembed_reason,
)
from shopagent.ingest.summary import RunSummary
from shopagent.retrieval.chroma import ChromaStore
from shopagent.services import prepare_database
from shopagent.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class CopySummary(RunSummary):
    """What a Chroma -> pgvector run did."""

    copied: int = 0
    reembedded: int = 0
    inserted: int = 0
    skipped: int = 0

    @property
    def migrated(self) -> int:
        """Products whose vector was written (copied or re-embedded, new rows included)."""
        return self.copied + self.reembedded

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly."""
        return {**super().as_dict(), "migrated": self.migrated}


@dataclass
class Report:
    """Everything a run found and did (pre-flight, plan, summary, verification)."""

    preflight: dict[str, Any]
    plan: Plan | None = None
    summary: CopySummary | None = None
    verification: dict[str, Any] | None = None
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        """No pre-flight problem, no batch error, verification (if run) passed."""
        return (
            not self.preflight["problems"]
            and (self.summary is None or self.summary.errors == 0)
            and (self.verification is None or self.verification["ok"])
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly."""
        return {
            "dry_run": self.dry_run,
            "ok": self.ok,
            "preflight": self.preflight,
            "analysis": self.plan.analysis if self.plan else None,
            "plan": self.plan.counts() if self.plan else None,
            "plan_reasons": dict(self.plan.reasons) if self.plan else None,
            "summary": self.summary.as_dict() if self.summary else None,
            "verification": self.verification,
        }


# ---------------------------------------------------------------- migration


def row_from_chroma(pid: str, item: dict[str, Any], vector: Sequence[float], model: str) -> ProductRow:
    """A product row rebuilt from Chroma metadata + document (Chroma keeps only the filterable
    fields; the document, the whole embedded text, also becomes the description so full text finds it)."""
    meta = item["metadata"] or {}
    doc = item["document"] or ""
    return ProductRow(
        id=pid,
        name=str(meta.get("name") or ""),
        description=doc,
        bullet_points=[],
        brand=meta.get("brand") or None,
        color=meta.get("color_lc") or None,
        category=[c for c in str(meta.get("category_lc") or "").split(" > ") if c],
        price=meta.get("price"),
        rating=None,
        rating_count=None,
        in_stock=bool(meta.get("in_stock", True)),
        is_book=False,
        image_url=None,
        attributes={"source": "chroma_migration"},
        embedded_text=doc,
        content_hash=content_hash(doc, model),
        embedding=vector,
        embedding_model=model,
        embedding_version=EMBEDDING_VERSION,
    )


BatchHook = Callable[[list[str]], None]


def migrate_batch(
    conn: Connection,
    chroma: ChromaStore,
    embeddings: Embeddings,
    model: str,
    dim: int,
    ids: list[str],
    force: bool,
) -> Counter[str]:
    """Decide again (the data may have moved since the plan) and write one batch in one transaction."""
    items = chroma.get(ids)
    states = catalog.vector_states(conn, ids)
    decided = {pid: decide(items[pid], states.get(pid), model, dim, force)[0] for pid in ids if pid in items}
    to_embed = [pid for pid, a in decided.items() if a in ("reembed", "insert_reembed")]
    texts = [(states[p]["embedded_text"] if p in states else "") or items[p]["document"] or "" for p in to_embed]
    vectors: dict[str, Sequence[float]] = {pid: items[pid]["embedding"] for pid in decided}
    if to_embed:
        embedded = embeddings.embed_documents(texts)
        if len(embedded) != len(to_embed):
            raise RuntimeError(f"model returned {len(embedded)} vectors for {len(to_embed)} texts")
        vectors.update(zip(to_embed, embedded, strict=True))
    new_rows = [row_from_chroma(p, items[p], vectors[p], model) for p, a in decided.items() if a.startswith("insert")]
    updates = [(p, vectors[p]) for p, a in decided.items() if a in ("copy", "reembed")]
    with conn.transaction():  # one transaction per batch: an interruption leaves whole batches
        if new_rows:
            writes.upsert_products(conn, new_rows)
        if updates:
            writes.write_embeddings(conn, updates, model, EMBEDDING_VERSION)
    return Counter(decided.values())


def migrate(
    conn: Connection,
    chroma: ChromaStore,
    embeddings: Embeddings,
    model: str,
    dim: int,
    plan: Plan,
    *,
    batch_size: int = 256,
    force: bool = False,
    on_batch: BatchHook | None = None,
    progress: Callable[[int], None] | None = None,
) -> CopySummary:
    """Write the plan's to-do ids batch by batch; a failed batch is counted and the run goes on."""
    summary = CopySummary(skipped=len(plan.actions["skip"]))
    started = time.perf_counter()
    for ids in batches(plan.todo, batch_size):
        try:
            done = migrate_batch(conn, chroma, embeddings, model, dim, ids, force)
        except Exception as exc:  # noqa: BLE001 - DB or model failure: count the batch, keep going
            log.exception("batch of %d ids starting at %s failed", len(ids), ids[0])
            summary.errors += len(ids)
            summary.note_error(f"{ids[0]}..: {exc!r}")
        else:
            summary.copied += done["copy"] + done["insert"]
            summary.reembedded += done["reembed"] + done["insert_reembed"]
            summary.inserted += done["insert"] + done["insert_reembed"]
            summary.skipped += done["skip"]
            if on_batch is not None:
                on_batch(ids)
        if progress is not None:
            progress(len(ids))
    if summary.migrated:
        writes.analyze(conn)
    summary.seconds = time.perf_counter() - started
    summary.coverage_pct = float(catalog.coverage(conn).get("coverage_pct") or 0.0)
    return summary


# ---------------------------------------------------------------- verification


def verify(
    conn: Connection, chroma: ChromaStore, model: str, dim: int, *, sample: int = 50, seed: int = 0
) -> dict[str, Any]:
    """Every Chroma id has a fresh vector in PostgreSQL; sampled copyable vectors are identical."""
    chroma_ids = chroma.iter_ids()
    fresh = 0
    for ids in batches(chroma_ids, 1000):
        fresh += sum(ok for _, ok in catalog.stored_hashes(conn, ids).values())
    picked = random.Random(seed).sample(chroma_ids, min(sample, len(chroma_ids)))
    items, states = chroma.get(picked), catalog.vector_states(conn, picked)
    compared = identical = reembedded = 0
    max_diff = 0.0
    mismatches: list[str] = []
    for pid in picked:
        state = states.get(pid)
        if state is None or state["embedding"] is None:
            mismatches.append(pid)
        elif reembed_reason(items[pid], state, model, dim) is None:
            compared += 1
            diff = float(np.max(np.abs(state["embedding"] - items[pid]["embedding"])))
            max_diff = max(max_diff, diff)
            identical += diff <= TOLERANCE
            if diff > TOLERANCE:
                mismatches.append(pid)
        else:
            reembedded += 1
            if state["embedding_model"] != model:
                mismatches.append(pid)  # should have been re-embedded with the configured model
    return {
        "ok": fresh == len(chroma_ids) and not mismatches,
        "chroma_count": len(chroma_ids),
        "postgres_fresh_vectors_for_chroma_ids": fresh,
        "postgres_count": int(catalog.coverage(conn).get("total") or 0),
        "spot_checked": len(picked),
        "compared": compared,
        "identical": identical,
        "reembedded_checked": reembedded,
        "max_abs_diff": max_diff,
        "mismatched_ids": mismatches[:20],
    }


# ---------------------------------------------------------------- the whole run


class ProgressBar(Protocol):
    """What a progress factory returns (a tqdm bar fits)."""

    def update(self, n: int) -> Any:
        """Advance by n."""

    def close(self) -> None:
        """Finish the bar."""


ProgressFactory = Callable[[str, int], ProgressBar]


@contextmanager
def _bar(factory: ProgressFactory | None, stage: str, total: int) -> Iterator[Callable[[int], None] | None]:
    """A bar's update function for one stage (closed afterwards), or None without a factory."""
    if factory is None:
        yield None
        return
    bar = factory(stage, total)
    try:
        yield bar.update
    finally:
        bar.close()


def run(
    settings: Settings,
    embeddings: Embeddings,
    *,
    dry_run: bool = False,
    batch_size: int = 256,
    force: bool = False,
    check: bool = True,
    on_batch: BatchHook | None = None,
    progress: ProgressFactory | None = None,
) -> Report:
    """Pre-flight, analysis and plan; then (unless dry_run) migrate and verify."""
    model, dim = embedding_model_name(embeddings), embedding_dimension(embeddings)
    try:
        conn = connect(settings)
    except DatabaseUnavailableError as exc:
        return Report({"facts": {}, "problems": [str(exc)]}, dry_run=dry_run)
    try:
        pre = preflight(conn, settings, model, dim)
        report = Report(pre, dry_run=dry_run)
        if pre["problems"]:
            return report
        chroma = open_chroma(settings)
        schema_ready = schema.embedding_column_dimension(conn) is not None
        if not dry_run and not schema_ready:
            conn.close()
            conn = prepare_database(settings, embeddings)  # migrations: extension, table, indexes
            schema_ready = True
        with _bar(progress, "analyse", pre["facts"]["chroma_count"]) as bar:
            report.plan = analyse(conn, chroma, model, dim, schema_ready=schema_ready, force=force, progress=bar)
        if dry_run:
            return report
        with _bar(progress, "migrate", len(report.plan.todo)) as bar:
            report.summary = migrate(
                conn,
                chroma,
                embeddings,
                model,
                dim,
                report.plan,
                batch_size=batch_size,
                force=force,
                on_batch=on_batch,
                progress=bar,
            )
        if check:
            report.verification = verify(conn, chroma, model, dim)
        return report
    finally:
        conn.close()
