"""Catalog ingest: read JSONL / JSONL.gz / CSV, normalise patchy fields, embed only what changed,
upsert in batches (each batch commits, so a killed run resumes where it stopped)."""

from __future__ import annotations

import csv
import gzip
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import Any

import psycopg
from langchain_core.embeddings import Embeddings

from shopagent import repository
from shopagent.embeddings import EMBEDDING_VERSION, content_hash, product_text
from shopagent.repository import ProductRow

log = logging.getLogger(__name__)

_KNOWN_FIELDS = {
    "product_id", "id", "name", "title", "description", "bullet_points", "brand", "color", "category",
    "price", "rating", "rating_count", "in_stock", "is_book", "image", "image_url", "attributes",
}  # fmt: skip


class CatalogError(ValueError):
    """The catalog file cannot be read."""


@dataclass
class IngestSummary:
    """What an ingest run did."""

    read: int = 0
    inserted: int = 0
    updated: int = 0
    embedded: int = 0
    skipped: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    seconds: float = 0.0
    coverage_pct: float = 0.0

    @property
    def products_per_s(self) -> float:
        """Throughput over the whole run (reading, embedding and writing)."""
        return self.read / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly summary."""
        return {**self.__dict__, "products_per_s": round(self.products_per_s, 1)}


def read_catalog(path: Path) -> Iterator[dict[str, Any]]:
    """Raw product dicts from a .jsonl, .jsonl.gz, .json.gz or .csv file."""
    name = path.name.lower()
    if not path.exists():
        raise CatalogError(f"catalog not found: {path}")
    opener = gzip.open if name.endswith(".gz") else open
    base = name.removesuffix(".gz")
    with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
        if base.endswith((".jsonl", ".json", ".ndjson")):
            for lineno, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise CatalogError(f"{path}:{lineno}: invalid JSON: {exc}") from exc
        elif base.endswith(".csv"):
            yield from csv.DictReader(fh)
        else:
            raise CatalogError(f"unsupported catalog format: {path.name} (use .jsonl, .jsonl.gz or .csv)")


def _as_list(value: Any) -> list[str]:
    """A list of non-empty strings from a list, a JSON-array string or a '|'-separated string."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                value = [text]
        else:
            value = text.split("|")
    return [str(v).strip() for v in value if v is not None and str(v).strip()]


def _as_float(value: Any) -> float | None:
    """A float, or None for null/empty/unparseable values."""
    if value is None or value == "":
        return None
    try:
        f = float(str(value).replace("$", "").replace(",", ""))
    except ValueError:
        return None
    return f if f == f else None  # NaN -> None


def _as_bool(value: Any, default: bool) -> bool:
    """Booleans from JSON or CSV spellings."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "y", "t"}


def normalise(raw: dict[str, Any], model: str) -> ProductRow:
    """A raw catalog record as a ProductRow (no embedding yet). Nulls never drop a product."""
    pid = str(raw.get("product_id") or raw.get("id") or "").strip()
    if not pid:
        raise CatalogError("record without product_id")
    count = _as_float(raw.get("rating_count"))
    attrs = dict(raw.get("attributes") or {}) if isinstance(raw.get("attributes"), dict) else {}
    attrs.update({k: v for k, v in raw.items() if k not in _KNOWN_FIELDS and v not in (None, "")})
    fields = {
        "name": str(raw.get("name") or raw.get("title") or "").strip(),
        "description": str(raw.get("description") or "").strip(),
        "bullet_points": _as_list(raw.get("bullet_points")),
        "brand": str(raw.get("brand") or "").strip() or None,
        "color": str(raw.get("color") or "").strip() or None,
        "category": _as_list(raw.get("category")),
    }
    text = product_text(fields)
    return ProductRow(
        id=pid,
        **fields,
        price=_as_float(raw.get("price")),
        rating=_as_float(raw.get("rating")),
        rating_count=int(count) if count is not None else None,
        in_stock=_as_bool(raw.get("in_stock"), True),
        is_book=_as_bool(raw.get("is_book"), False),
        image_url=str(raw.get("image") or raw.get("image_url") or "").strip() or None,
        attributes=attrs,
        embedded_text=text,
        content_hash=content_hash(text, model),
    )


def _batches(items: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    """Consecutive lists of at most `size` items."""
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


BatchHook = Callable[[list[ProductRow]], None]


def ingest(
    conn: psycopg.Connection,
    embeddings: Embeddings,
    model_name: str,
    records: Iterable[dict[str, Any]],
    *,
    batch_size: int = 256,
    force: bool = False,
    on_batch: BatchHook | None = None,
    progress: Callable[[int], None] | None = None,
) -> IngestSummary:
    """Upsert `records`, embedding only new or changed products (all of them with `force`).

    `on_batch` receives each batch's newly embedded rows just before the batch commits (to keep other
    stores in step).
    """
    summary = IngestSummary()
    started = time.perf_counter()
    if repository.product_count(conn) == 0:
        repository.drop_vector_index(conn)  # initial load: index once at the end, not row by row
    try:
        _ingest_batches(conn, embeddings, model_name, records, summary, batch_size, force, on_batch, progress)
    finally:
        repository.ensure_vector_index(conn)  # also rebuilds it after a killed initial load
    if summary.inserted or summary.updated:
        repository.analyze(conn)
    summary.seconds = time.perf_counter() - started
    summary.coverage_pct = float(repository.coverage(conn).get("coverage_pct") or 0.0)
    return summary


def _ingest_batches(
    conn: psycopg.Connection,
    embeddings: Embeddings,
    model_name: str,
    records: Iterable[dict[str, Any]],
    summary: IngestSummary,
    batch_size: int,
    force: bool,
    on_batch: BatchHook | None,
    progress: Callable[[int], None] | None,
) -> None:
    """The batch loop of `ingest`, accumulating into `summary`."""
    for raw_batch in _batches(records, batch_size):
        rows: dict[str, ProductRow] = {}
        for raw in raw_batch:
            try:
                row = normalise(raw, model_name)
            except CatalogError as exc:
                summary.errors += 1
                _sample(summary, str(exc))
                continue
            rows[row.id] = row  # a duplicate id later in the batch wins, as it would across batches
        summary.read += len(raw_batch)
        stored = repository.stored_hashes(conn, list(rows))
        todo = [r for r in rows.values() if force or stored.get(r.id) != (r.content_hash, True)]
        vectors: dict[str, list[float]] = {}
        if todo:
            try:
                embedded = embeddings.embed_documents([r.embedded_text for r in todo])
                if len(embedded) != len(todo):
                    raise RuntimeError(f"model returned {len(embedded)} vectors for {len(todo)} texts")
                vectors = {r.id: v for r, v in zip(todo, embedded, strict=True)}
            except Exception as exc:  # noqa: BLE001 - any model failure is counted, never a zero vector
                summary.errors += len(todo)
                _sample(summary, f"embedding failed for {len(todo)} products: {exc!r}")
                log.exception("embedding batch failed")
        final: list[ProductRow] = []
        for r in rows.values():
            if r.id in vectors:
                final.append(
                    replace(r, embedding=vectors[r.id], embedding_model=model_name, embedding_version=EMBEDDING_VERSION)
                )
            elif stored.get(r.id, ("", False))[0] == r.content_hash and not force:
                final.append(r)  # unchanged
            else:
                final.append(replace(r, content_hash=""))  # changed but not embedded: retried next run
        if on_batch is not None:
            # Before the commit: a run killed in between finds these not embedded in PostgreSQL and
            # redoes both writes; after it, the re-run would skip them and the other store would lack them.
            on_batch([r for r in final if r.embedding is not None])
        inserted, updated = repository.upsert_products(conn, final)
        summary.inserted += inserted
        summary.updated += updated
        summary.embedded += len(vectors)
        summary.skipped += len(rows) - len(todo)
        if progress is not None:
            progress(len(raw_batch))


def _sample(summary: IngestSummary, message: str) -> None:
    """Keep the first few error messages for the summary."""
    if len(summary.error_samples) < 10:
        summary.error_samples.append(message)
