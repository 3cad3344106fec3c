"""Chroma -> pgvector copy, part 1: pre-flight checks, analysis and the plan (an action per Chroma id).

Vectors are copied as they are when Chroma's `embedding_model` metadata names the configured model, their
dimension matches the column and Chroma's document is the text PostgreSQL holds; otherwise the text is
re-embedded with the configured model (a copied vector would not describe the stored text in that model's
space). Products missing from PostgreSQL are inserted from Chroma's metadata and document. Reads only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shopagent.db import catalog, schema
from shopagent.db.connection import Connection, redact
from shopagent.retrieval.chroma import SPACE, ChromaStore, chroma_client
from shopagent.settings import Settings

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


# ---------------------------------------------------------------- pre-flight


def open_chroma(settings: Settings) -> ChromaStore:
    """The existing cosine-space collection (never creates one); MigrationError otherwise."""
    path, name = settings.chroma_persist_dir, settings.chroma_collection
    if settings.chroma_host is None and not path.is_dir():
        raise MigrationError(f"Chroma directory {path} does not exist")
    where = f"{settings.chroma_host}:{settings.chroma_port}" if settings.chroma_host else str(path)
    try:
        client = chroma_client(settings)
        collection = client.get_collection(name)
    except Exception as exc:  # noqa: BLE001 - chromadb's not-found type changed across releases
        raise MigrationError(f"Chroma collection {name!r} not found in {where}: {exc}") from exc
    space = (collection.metadata or {}).get("hnsw:space", "l2")
    if space != SPACE:
        raise MigrationError(f"Chroma collection {name!r} uses space {space!r}, not {SPACE!r}")
    return ChromaStore(client, name)


def preflight(conn: Connection, settings: Settings, model: str, dim: int) -> dict[str, Any]:
    """Facts and problems: pgvector available, schema state, column dimension, Chroma collection."""
    problems: list[str] = []
    installed, available = schema.extension_status(conn, "vector")
    if not available:
        problems.append("the pgvector extension is not available on this PostgreSQL server")
    column_dim = schema.embedding_column_dimension(conn)
    if column_dim is not None and column_dim != dim:
        problems.append(f"products.embedding is vector({column_dim}) but {model!r} produces {dim}-dim vectors")
    facts: dict[str, Any] = {
        "database": redact(conn.info.dsn),
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


def batches(ids: Sequence[str], size: int) -> list[list[str]]:
    """Consecutive slices of at most `size` ids."""
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]


def reembed_reason(item: dict[str, Any], state: dict[str, Any] | None, model: str, dim: int) -> str | None:
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
    reembed = reembed_reason(item, state, model, dim)
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
    conn: Connection,
    chroma: ChromaStore,
    model: str,
    dim: int,
    *,
    schema_ready: bool,
    batch_size: int = 500,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Plan:
    """Counts on both sides and an action per Chroma id (reads only)."""
    plan = Plan()
    chroma_ids = chroma.iter_ids()
    missing_rows = missing_vectors = 0
    for ids in batches(chroma_ids, batch_size):
        items = chroma.get(ids)
        states = catalog.vector_states(conn, ids) if schema_ready else {}
        for pid in ids:
            state = states.get(pid)
            missing_rows += state is None
            missing_vectors += state is not None and state["embedding"] is None
            action, reason = decide(items[pid], state, model, dim, force)
            plan.actions[action].append(pid)
            plan.reasons[reason] += 1
        if progress is not None:
            progress(len(ids))
    cov = catalog.coverage(conn) if schema_ready else {}
    pg_ids = set(catalog.all_product_ids(conn)) if schema_ready else set()
    plan.analysis = {
        "chroma_count": len(chroma_ids),
        "postgres_count": int(cov.get("total") or 0),
        "postgres_with_fresh_vectors": int(cov.get("embedded") or 0),
        "chroma_ids_missing_vectors_in_postgres": missing_vectors,
        "chroma_ids_missing_in_postgres": missing_rows,
        "postgres_ids_not_in_chroma": len(pg_ids - set(chroma_ids)),
    }
    return plan
