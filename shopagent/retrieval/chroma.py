"""Chroma mirror of the catalog (langchain-chroma, cosine space) over an embedded persistent client, or over
Chroma's client/server mode (`chroma run`) when CHROMA_HOST is set.

Same ids and vectors as PostgreSQL; filterable fields as metadata. Chroma returns cosine
*distance* in this collection's space, converted here to similarity = 1 - distance so every
backend reports the same scale.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
from chromadb.api import ClientAPI
from chromadb.config import Settings as ChromaSettings
from langchain_chroma import Chroma
from langchain_core.embeddings import Embeddings

from shopagent.db.writes import ProductRow
from shopagent.domain import NO_FILTERS, ProductView, SearchFilters, finite_or_none, updated
from shopagent.matching import color_is_excluded, name_is_excluded
from shopagent.settings import Settings

log = logging.getLogger(__name__)

SPACE = "cosine"
# Post-filters (category/colour substrings, exclusions) run in Python, so ask Chroma for more.
_OVERFETCH = 4


def chroma_client(settings: Settings) -> ClientAPI:
    """An HTTP client of the Chroma server at CHROMA_HOST:CHROMA_PORT, else the embedded persistent client in
    CHROMA_PERSIST_DIR. No telemetry either way."""
    if settings.chroma_host:
        return chromadb.HttpClient(
            host=settings.chroma_host, port=settings.chroma_port, settings=ChromaSettings(anonymized_telemetry=False)
        )
    return persistent_client(settings.chroma_persist_dir)


def persistent_client(persist_dir: Path) -> ClientAPI:
    """The embedded client storing in `persist_dir` (created if missing)."""
    persist_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(
        path=str(persist_dir), settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    )


class ChromaStore:
    """A Chroma collection holding product vectors and filterable metadata."""

    def __init__(self, where: Path | ClientAPI, collection: str, embeddings: Embeddings | None = None):
        """Open (or create) the collection in a directory (embedded) or through a client (a server's, say)."""
        self.client = persistent_client(where) if isinstance(where, Path) else where
        self.vectorstore = Chroma(
            client=self.client,
            collection_name=collection,
            embedding_function=embeddings,
            collection_metadata={"hnsw:space": SPACE},
        )
        self.collection = self.client.get_collection(collection)
        space = (self.collection.metadata or {}).get("hnsw:space", "l2")
        if space != SPACE:
            raise ValueError(
                f"Chroma collection {collection!r} uses space {space!r}; this store needs 'cosine'. "
                "Use another CHROMA_COLLECTION or delete the collection and re-ingest with --stores chroma."
            )

    @classmethod
    def from_settings(cls, settings: Settings, embeddings: Embeddings | None = None) -> ChromaStore:
        """The store configured by CHROMA_HOST / CHROMA_PORT or CHROMA_PERSIST_DIR, and CHROMA_COLLECTION."""
        return cls(chroma_client(settings), settings.chroma_collection, embeddings)

    # ------------------------------------------------------------ writes

    def upsert_rows(self, rows: Sequence[ProductRow]) -> None:
        """Upsert products that carry an embedding (ingest's per-batch hook)."""
        items = [
            {
                "id": r.id,
                "name": r.name,
                "brand": r.brand,
                "color": r.color,
                "category": r.category,
                "price": r.price,
                "in_stock": r.in_stock,
                "image_url": r.image_url,
                "embedded_text": r.embedded_text,
                "embedding": r.embedding,
                "embedding_model": r.embedding_model,
            }
            for r in rows
            if r.embedding is not None
        ]
        self.upsert(items)

    def upsert(self, items: Sequence[dict[str, Any]]) -> None:
        """Upsert dicts with id, embedding, embedded_text and product fields, in one call."""
        if not items:
            return
        self.collection.upsert(
            ids=[i["id"] for i in items],
            embeddings=np.asarray([i["embedding"] for i in items], dtype=np.float32),
            documents=[i.get("embedded_text") or "" for i in items],
            metadatas=[_metadata(i) for i in items],
        )

    def count(self) -> int:
        """Number of vectors stored."""
        return self.collection.count()

    def get(self, ids: Sequence[str], include_embeddings: bool = True) -> dict[str, dict[str, Any]]:
        """id -> {"embedding", "metadata", "document"} for the ids that exist."""
        include: list[Any] = ["metadatas", "documents"] + (["embeddings"] if include_embeddings else [])
        got = self.collection.get(ids=list(ids), include=include)
        metadatas, documents, vectors = got["metadatas"], got["documents"], got["embeddings"]
        out: dict[str, dict[str, Any]] = {}
        for n, pid in enumerate(got["ids"]):
            out[pid] = {
                "metadata": dict(metadatas[n] or {}) if metadatas is not None else {},
                "document": documents[n] if documents is not None else "",
                "embedding": np.asarray(vectors[n], dtype=np.float32) if vectors is not None else None,
            }
        return out

    def iter_ids(self, batch_size: int = 1000) -> list[str]:
        """Every id in the collection."""
        ids: list[str] = []
        offset = 0
        while batch := self.collection.get(limit=batch_size, offset=offset, include=[])["ids"]:
            ids.extend(batch)
            offset += len(batch)
        return ids

    # ------------------------------------------------------------ reads

    @staticmethod
    def view(pid: str, meta: dict[str, Any]) -> ProductView:
        """A product from its Chroma metadata (no similarity: the caller knows it, or there is none)."""
        return ProductView(
            product_id=pid,
            name=str(meta.get("name", "")),
            brand=meta.get("brand") or None,
            price=finite_or_none(meta.get("price")),
            image_url=meta.get("image_url") or None,
            score=0.0,
            similarity=None,
            backend="chroma",
        )

    def search(
        self,
        embedding: Sequence[float],
        k: int,
        filters: SearchFilters = NO_FILTERS,
        threshold: float | None = None,
    ) -> list[ProductView]:
        """Top-k by cosine similarity with the same filters as PostgreSQL."""
        where = chroma_where(filters)
        needs_post = bool(
            filters.categories
            or filters.colors
            or filters.exclude_terms
            or filters.exclude_colors
            or filters.exclude_ids
        )
        total = max(self.collection.count(), 1)
        n = max(k * _OVERFETCH, k + len(filters.exclude_ids)) if needs_post else k
        while True:
            n = min(n, total)
            res = self.collection.query(
                query_embeddings=np.asarray([embedding], dtype=np.float32),
                n_results=n,
                where=where,
                include=["metadatas", "distances"],
            )
            hits: list[ProductView] = []
            below_threshold = False
            metadatas, distances = res["metadatas"] or [[]], res["distances"] or [[]]
            for pid, found, dist in zip(res["ids"][0], metadatas[0], distances[0], strict=True):
                meta: dict[str, Any] = dict(found or {})
                sim = distance_to_similarity(float(dist))
                if not math.isfinite(sim):
                    continue  # a zero or broken stored vector has no cosine similarity
                if threshold is not None and sim < threshold:
                    below_threshold = True  # results come nearest first: the rest are below too
                    break
                if needs_post and not _post_filter(pid, meta, filters):
                    continue
                hits.append(updated(self.view(pid, meta), score=sim, similarity=sim))
                if len(hits) == k:
                    return hits
            # Post-filters rejected too many: look further, like pgvector's iterative scan does.
            if not needs_post or below_threshold or n >= total or len(res["ids"][0]) < n:
                return hits
            n *= _OVERFETCH


def distance_to_similarity(distance: float) -> float:
    """Chroma cosine-space distance (1 - cos) -> cosine similarity."""
    return 1.0 - distance


def _metadata(item: dict[str, Any]) -> dict[str, Any]:
    """Chroma metadata: scalars only, no None values (Chroma rejects them)."""
    meta: dict[str, Any] = {
        "name": item.get("name") or "",
        "brand_lc": (item.get("brand") or "").lower(),
        "brand": item.get("brand") or "",
        "color_lc": (item.get("color") or "").lower(),
        "category_lc": " > ".join(item.get("category") or []).lower(),
        "in_stock": bool(item.get("in_stock", True)),
        "embedding_model": item.get("embedding_model") or "",
    }
    if item.get("image_url"):
        meta["image_url"] = str(item["image_url"])
    if item.get("price") is not None:
        meta["price"] = float(item["price"])
    return meta


def chroma_where(filters: SearchFilters) -> dict[str, Any] | None:
    """Chroma `where` clause for the filters Chroma can evaluate natively."""
    clauses: list[dict[str, Any]] = []
    if filters.price_min is not None:
        clauses.append({"price": {"$gte": float(filters.price_min)}})
    if filters.price_max is not None:
        clauses.append({"price": {"$lte": float(filters.price_max)}})
    if filters.brands:
        clauses.append({"brand_lc": {"$in": [b.lower() for b in filters.brands]}})
    if filters.in_stock is not None:
        clauses.append({"in_stock": {"$eq": filters.in_stock}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _post_filter(pid: str, meta: dict[str, Any], filters: SearchFilters) -> bool:
    """Substring and exclusion filters Chroma's `where` can't express (same semantics as SQL)."""
    if pid in filters.exclude_ids:
        return False
    if filters.categories and not any(c.lower() in meta.get("category_lc", "") for c in filters.categories):
        return False
    if filters.colors and not any(c.lower() in meta.get("color_lc", "") for c in filters.colors):
        return False
    name = str(meta.get("name", ""))
    if filters.exclude_colors and color_is_excluded(name, meta.get("color_lc"), filters.exclude_colors):
        return False
    return not (filters.exclude_terms and name_is_excluded(name, filters.exclude_terms))
