"""Measuring search at scale (behind `scripts/bench_scale.py`): a scratch PostgreSQL server, latency percentiles,
recall against exact search, the server's memory, and the Chroma side of the comparison.

Exact search here is numpy over the very vectors that were loaded (cosine = dot product of unit vectors), with
the filters as boolean masks, so recall@10 of an index is measured against ground truth, not against another
index.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import psutil
import psycopg
from psycopg import sql
from tqdm import tqdm

from shopagent.evals.metrics import percentile
from shopagent.retrieval.chroma import ChromaStore

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


@contextmanager
def scratch_server(data_dir: Path, config: dict[str, str]) -> Iterator[tuple[str, int]]:
    """A fresh embedded PostgreSQL in `data_dir` with `config` applied (ALTER SYSTEM, then a restart); yields
    (dsn, postmaster pid). The server is stopped and `data_dir` deleted on the way out."""
    from pgserver import get_server  # type: ignore[attr-defined]  # local: only benchmarks need a scratch server

    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    server = get_server(data_dir, cleanup_mode="stop")
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        for name, value in config.items():
            conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
    server.cleanup()  # stop: the settings above need a restart
    server = get_server(data_dir, cleanup_mode="delete")
    pid = server.get_pid()
    if pid is None:
        raise RuntimeError(f"the scratch server in {data_dir} did not start")
    try:
        yield str(server.get_uri()), int(pid)
    finally:
        server.cleanup()
        shutil.rmtree(data_dir, ignore_errors=True)


def server_memory_mb(pid: int) -> dict[str, float]:
    """Memory of a PostgreSQL server (postmaster and its children) in MB: `rss_sum` counts shared buffers once
    per process that touched them, `pss_sum` shares them out (the honest total), `rss_max` is the largest
    process."""
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    rss, pss = [], []
    for proc in procs:
        try:
            info = proc.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        rss.append(info.rss)
        pss.append(getattr(info, "pss", info.rss))
    mb = 1024 * 1024
    return {"rss_sum": round(sum(rss) / mb, 1), "pss_sum": round(sum(pss) / mb, 1), "rss_max": round(max(rss) / mb, 1)}


@dataclass
class Timing:
    """Latency samples in ms."""

    samples: list[float]

    def as_dict(self) -> dict[str, float]:
        """p50/p95/mean in ms and the number of calls."""
        return {
            "p50_ms": round(percentile(self.samples, 50), 2),
            "p95_ms": round(percentile(self.samples, 95), 2),
            "mean_ms": round(sum(self.samples) / max(len(self.samples), 1), 2),
            "calls": len(self.samples),
        }


def timed(fn: Callable[[T], R], inputs: Sequence[T], repeat: int, desc: str) -> tuple[Timing, list[R]]:
    """Run `fn` over `inputs` once untimed (warm-up), then `repeat` timed passes; (timing, last pass's results)."""
    results = [fn(x) for x in tqdm(inputs, desc=f"{desc} (warm-up)", unit="call", leave=False)]
    samples: list[float] = []
    with tqdm(total=repeat * len(inputs), desc=desc, unit="call", leave=False) as bar:
        for _ in range(repeat):
            results = []
            for x in inputs:
                started = time.perf_counter()
                results.append(fn(x))
                samples.append((time.perf_counter() - started) * 1000)
                bar.update()
    return Timing(samples), results


def recall_at_k(found: Sequence[Sequence[str]], exact: Sequence[Sequence[str]], k: int = 10) -> float:
    """Mean over queries of |found top-k ∩ exact top-k| / |exact top-k| (queries with no exact result skipped)."""
    scores = [len(set(f[:k]) & set(e[:k])) / len(e[:k]) for f, e in zip(found, exact, strict=True) if e]
    return round(sum(scores) / len(scores), 4) if scores else 1.0


class ExactSearch:
    """Exact cosine top-k over unit vectors (numpy, chunked), optionally within a boolean mask."""

    def __init__(self, vectors: np.ndarray, ids: Callable[[int], str], chunk: int = 200_000):
        """`vectors` (n, dim) float32 unit rows; `ids(i)` names row i."""
        self.vectors, self.ids, self.chunk = vectors, ids, chunk

    def top(self, queries: np.ndarray, k: int, mask: np.ndarray | None = None) -> list[list[str]]:
        """Ids of the k most similar rows (within `mask`) for each query row, best first."""
        best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
        best_rows = np.zeros((len(queries), 0), dtype=np.int64)
        for start in range(0, len(self.vectors), self.chunk):
            scores = queries @ self.vectors[start : start + self.chunk].T
            if mask is not None:
                scores[:, ~mask[start : start + self.chunk]] = -np.inf
            take = min(k, scores.shape[1])
            part = np.argpartition(-scores, take - 1, axis=1)[:, :take]
            best_scores = np.concatenate([best_scores, np.take_along_axis(scores, part, axis=1)], axis=1)
            best_rows = np.concatenate([best_rows, part + start], axis=1)
            keep = np.argsort(-best_scores, axis=1, kind="stable")[:, :k]
            best_scores = np.take_along_axis(best_scores, keep, axis=1)
            best_rows = np.take_along_axis(best_rows, keep, axis=1)
        return [
            [self.ids(int(r)) for r, s in zip(rows, scores, strict=True) if np.isfinite(s)]
            for rows, scores in zip(best_rows, best_scores, strict=True)
        ]


def load_chroma(store: ChromaStore, items: Iterator[dict[str, Any]], total: int) -> float:
    """Upsert `items` (ChromaStore.upsert dicts) in the client's largest batches; return rows per second."""
    batch_size = min(store.client.get_max_batch_size(), 5000)
    started = time.perf_counter()
    batch: list[dict[str, Any]] = []
    with tqdm(total=total, desc="chroma load", unit="row", leave=False) as bar:
        for item in items:
            batch.append(item)
            if len(batch) == batch_size:
                store.upsert(batch)
                bar.update(len(batch))
                batch = []
        store.upsert(batch)
        bar.update(len(batch))
    return total / (time.perf_counter() - started)


def directory_mb(path: Path) -> float:
    """Size of the files under `path` in MB."""
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / (1024 * 1024), 1)
