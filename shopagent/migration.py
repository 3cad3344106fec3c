"""Chroma -> pgvector migration: pre-flight checks, analysis, plan, batched copy, verification.

The library behind `scripts/migrate_chroma_to_pgvector.py`. Vectors are copied as they are when
Chroma's `embedding_model` metadata names the configured model, their dimension matches the column
and Chroma's document is the text PostgreSQL holds; otherwise the text is re-embedded with the
configured model (a copied vector would not describe the stored text in that model's space).
Products missing from PostgreSQL are inserted from Chroma's metadata and document. Each batch is one
transaction, so an interrupted run leaves whole batches behind and a re-run skips what is already
identical (idempotent); `force` re-copies everything.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import chromadb
import numpy as np
import psycopg
from chromadb.config import Settings as ChromaSettings
from langchain_core.embeddings import Embeddings

from shopagent import db, repository
from shopagent.bootstrap import prepare_database
from shopagent.chroma_store import SPACE, ChromaStore
from shopagent.config import Settings
from shopagent.embeddings import EMBEDDING_VERSION, content_hash, embedding_dimension, embedding_model_name
from shopagent.repository import ProductRow

log = logging.getLogger(__name__)

TOLERANCE = 1e-6
# Plan actions. "insert*" create the product row; "*reembed" embed the text with the configured model.
ACTIONS = ("copy", "reembed", "insert", "insert_reembed", "skip")


class MigrationError(RuntimeError):
    """A pre-flight check failed; nothing was changed."""


@dataclass
class Plan:
    """What the migration will do with each Chroma id, and the analysis behind it."""

    actions: dict[str, list[str]] = field(default_factory=lambda: {a: [] for a in ACTIONS})
    reasons: Counter[str] = field(default_factory=Counter)
    analysis: dict[str, Any] = field(default_factory=dict)

    @property
    def todo(self) -> list[str]:
        """Ids to write, in a stable order."""
        return sorted(pid for a in ACTIONS if a != "skip" for pid in self.actions[a])

    def counts(self) -> dict[str, int]:
        """Ids per action."""
        return {a: len(ids) for a, ids in self.actions.items()}


@dataclass
class Summary:
    """What a migration run did."""

    copied: int = 0
    reembedded: int = 0
    inserted: int = 0
    skipped: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    seconds: float = 0.0
    coverage_pct: float = 0.0

    @property
    def migrated(self) -> int:
        """Products whose vector was written (copied or re-embedded, new rows included)."""
        return self.copied + self.reembedded

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly."""
        return {**self.__dict__, "migrated": self.migrated, "seconds": round(self.seconds, 2)}


@dataclass
class Report:
    """Everything a run found and did (pre-flight, plan, summary, verification)."""

    preflight: dict[str, Any]
    plan: Plan | None = None
    summary: Summary | None = None
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


# ---------------------------------------------------------------- pre-flight


def open_chroma(settings: Settings) -> ChromaStore:
    """The existing cosine-space collection (never creates one); MigrationError otherwise."""
    path, name = settings.chroma_persist_dir, settings.chroma_collection
    if not path.is_dir():
        raise MigrationError(f"Chroma directory {path} does not exist")
    client = chromadb.PersistentClient(path=str(path), settings=ChromaSettings(anonymized_telemetry=False))
    try:
        collection = client.get_collection(name)
    except Exception as exc:  # noqa: BLE001 - chromadb's not-found type changed across releases
        raise MigrationError(f"Chroma collection {name!r} not found in {path}: {exc}") from exc
    space = (collection.metadata or {}).get("hnsw:space", "l2")
    if space != SPACE:
        raise MigrationError(f"Chroma collection {name!r} uses space {space!r}, not {SPACE!r}")
    return ChromaStore(path, name)


def preflight(conn: psycopg.Connection, settings: Settings, model: str, dim: int) -> dict[str, Any]:
    """Facts and problems: pgvector available, schema state, column dimension, Chroma collection."""
    problems: list[str] = []
    installed, available = repository.extension_status(conn, "vector")
    if not available:
        problems.append("the pgvector extension is not available on this PostgreSQL server")
    column_dim = repository.embedding_column_dimension(conn)
    if column_dim is not None and column_dim != dim:
        problems.append(f"products.embedding is vector({column_dim}) but {model!r} produces {dim}-dim vectors")
    facts: dict[str, Any] = {
        "database": db.redact(conn.info.dsn),
        "pgvector": installed or ("not installed (migrations will create it)" if available else None),
        "schema": "ready" if column_dim is not None else "not migrated (migrations will create it)",
        "model": model,
        "dimension": dim,
        "chroma_dir": str(settings.chroma_persist_dir),
        "chroma_collection": settings.chroma_collection,
    }
    try:
        facts["chroma_count"] = open_chroma(settings).count()
    except MigrationError as exc:
        problems.append(str(exc))
    return {"facts": facts, "problems": problems}


# ---------------------------------------------------------------- analysis and plan


def _batches(ids: Sequence[str], size: int) -> list[list[str]]:
    """Consecutive slices of at most `size` ids."""
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]


def _reembed_reason(item: dict[str, Any], state: dict[str, Any] | None, model: str, dim: int) -> str | None:
    """Why Chroma's vector can't be copied as is (None when it can)."""
    if (item["metadata"] or {}).get("embedding_model") != model:
        return "model_differs"
    if len(item["embedding"]) != dim:
        return "dimension_differs"
    if state is not None and state["embedded_text"] and state["embedded_text"] != item["document"]:
        return "text_differs"
    return None


def decide(item: dict[str, Any], state: dict[str, Any] | None, model: str, dim: int, force: bool) -> tuple[str, str]:
    """(action, reason) for one Chroma item given its PostgreSQL row (None when missing)."""
    reembed = _reembed_reason(item, state, model, dim)
    if state is None:
        return ("insert_reembed", reembed) if reembed else ("insert", "missing_row")
    pg_vec, fresh = state["embedding"], state["embedding"] is not None and not state["embedding_stale"]
    if reembed:
        if fresh and state["embedding_model"] == model and not force:
            return "skip", "already_embedded_by_model"
        return "reembed", reembed
    if not force and fresh and state["embedding_model"] == model and pg_vec.shape == item["embedding"].shape:
        if float(np.max(np.abs(pg_vec - item["embedding"]))) <= TOLERANCE:
            return "skip", "identical"
    if force:
        return "copy", "force"
    return "copy", "missing_vector" if pg_vec is None else ("stale" if state["embedding_stale"] else "vector_differs")


def analyse(
    conn: psycopg.Connection, chroma: ChromaStore, model: str, dim: int, *, schema_ready: bool,
    batch_size: int = 500, force: bool = False, progress: Callable[[int], None] | None = None,
) -> Plan:  # fmt: skip
    """Counts on both sides and an action per Chroma id (reads only)."""
    plan = Plan()
    chroma_ids = chroma.iter_ids()
    missing_rows = missing_vectors = 0
    for ids in _batches(chroma_ids, batch_size):
        items = chroma.get(ids)
        states = repository.migration_states(conn, ids) if schema_ready else {}
        for pid in ids:
            state = states.get(pid)
            missing_rows += state is None
            missing_vectors += state is not None and state["embedding"] is None
            action, reason = decide(items[pid], state, model, dim, force)
            plan.actions[action].append(pid)
            plan.reasons[reason] += 1
        if progress is not None:
            progress(len(ids))
    cov = repository.coverage(conn) if schema_ready else {}
    pg_ids = set(repository.all_product_ids(conn)) if schema_ready else set()
    plan.analysis = {
        "chroma_count": len(chroma_ids),
        "postgres_count": int(cov.get("total") or 0),
        "postgres_with_fresh_vectors": int(cov.get("embedded") or 0),
        "chroma_ids_missing_vectors_in_postgres": missing_vectors,
        "chroma_ids_missing_in_postgres": missing_rows,
        "postgres_ids_not_in_chroma": len(pg_ids - set(chroma_ids)),
    }
    return plan


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
    conn: psycopg.Connection, chroma: ChromaStore, embeddings: Embeddings, model: str, dim: int,
    ids: list[str], force: bool,
) -> Counter[str]:  # fmt: skip
    """Decide again (the data may have moved since the plan) and write one batch in one transaction."""
    items = chroma.get(ids)
    states = repository.migration_states(conn, ids)
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
            repository.upsert_products(conn, new_rows)
        if updates:
            repository.write_embeddings(conn, updates, model, EMBEDDING_VERSION)
    return Counter(decided.values())


def migrate(
    conn: psycopg.Connection, chroma: ChromaStore, embeddings: Embeddings, model: str, dim: int, plan: Plan,
    *, batch_size: int = 256, force: bool = False, on_batch: BatchHook | None = None,
    progress: Callable[[int], None] | None = None,
) -> Summary:  # fmt: skip
    """Write the plan's to-do ids batch by batch; a failed batch is counted and the run goes on."""
    summary = Summary(skipped=len(plan.actions["skip"]))
    started = time.perf_counter()
    for ids in _batches(plan.todo, batch_size):
        try:
            done = migrate_batch(conn, chroma, embeddings, model, dim, ids, force)
        except Exception as exc:  # noqa: BLE001 - DB or model failure: count the batch, keep going
            log.exception("batch of %d ids starting at %s failed", len(ids), ids[0])
            summary.errors += len(ids)
            if len(summary.error_samples) < 10:
                summary.error_samples.append(f"{ids[0]}..: {exc!r}")
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
        repository.analyze(conn)
    summary.seconds = time.perf_counter() - started
    summary.coverage_pct = float(repository.coverage(conn).get("coverage_pct") or 0.0)
    return summary


# ---------------------------------------------------------------- verification


def verify(
    conn: psycopg.Connection, chroma: ChromaStore, model: str, dim: int, *, sample: int = 50, seed: int = 0
) -> dict[str, Any]:
    """Every Chroma id has a fresh vector in PostgreSQL; sampled copyable vectors are identical."""
    chroma_ids = chroma.iter_ids()
    fresh = 0
    for ids in _batches(chroma_ids, 1000):
        fresh += sum(ok for _, ok in repository.stored_hashes(conn, ids).values())
    picked = random.Random(seed).sample(chroma_ids, min(sample, len(chroma_ids)))
    items, states = chroma.get(picked), repository.migration_states(conn, picked)
    compared = identical = reembedded = 0
    max_diff = 0.0
    mismatches: list[str] = []
    for pid in picked:
        state = states.get(pid)
        if state is None or state["embedding"] is None:
            mismatches.append(pid)
        elif _reembed_reason(items[pid], state, model, dim) is None:
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
        "postgres_count": int(repository.coverage(conn).get("total") or 0),
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
    settings: Settings, embeddings: Embeddings, *, dry_run: bool = False, batch_size: int = 256,
    force: bool = False, check: bool = True, on_batch: BatchHook | None = None,
    progress: ProgressFactory | None = None,
) -> Report:  # fmt: skip
    """Pre-flight, analysis and plan; then (unless dry_run) migrate and verify."""
    model, dim = embedding_model_name(settings, embeddings), embedding_dimension(embeddings)
    try:
        conn = db.connect(settings)
    except db.DatabaseUnavailableError as exc:
        return Report({"facts": {}, "problems": [str(exc)]}, dry_run=dry_run)
    try:
        pre = preflight(conn, settings, model, dim)
        report = Report(pre, dry_run=dry_run)
        if pre["problems"]:
            return report
        chroma = open_chroma(settings)
        schema_ready = repository.embedding_column_dimension(conn) is not None
        if not dry_run and not schema_ready:
            conn.close()
            conn = prepare_database(settings, embeddings)  # migrations: extension, table, indexes
            schema_ready = True
        with _bar(progress, "analyse", pre["facts"]["chroma_count"]) as bar:
            report.plan = analyse(conn, chroma, model, dim, schema_ready=schema_ready, force=force, progress=bar)
        if dry_run:
            return report
        with _bar(progress, "migrate", len(report.plan.todo)) as bar:
            report.summary = migrate(conn, chroma, embeddings, model, dim, report.plan, batch_size=batch_size,
                                     force=force, on_batch=on_batch, progress=bar)  # fmt: skip
        if check:
            report.verification = verify(conn, chroma, model, dim)
        return report
    finally:
        conn.close()
