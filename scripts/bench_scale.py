"""Search at scale: a synthetic catalog of N products loaded through the bulk path into a fresh database.

    python scripts/bench_scale.py --products 100000 [--embed] [--json OUT] [--queries-own 100] [--repeat 2]
        [--exact-queries 60] [--shared-buffers 1GB] [--no-chroma] [--no-reload] [--sweep]

The catalog recombines the sample's products (`shopagent.evals.synthetic`); vectors are the sample's real
vectors mixed and noised, or really embedded with --embed (about 175 products/s on 2 cores). It is loaded with
`shopagent.ingest.bulk.load` (binary COPY over BULK_LOAD_STREAMS connections, indexes built once) into a scratch
server under .data/bench/ (deleted at the end, with the Chroma directory), with the HNSW and full-text knobs from
the settings (HNSW_*, FULLTEXT_CANDIDATES, INDEX_BUILD_*). Measured over the shared queries plus generated ones,
after a warm-up pass: p50/p95 and recall@10 against exact search for vector top-10 (no filter, price <= 50, a
brand of about 100 products, in stock), full-text top-50, hybrid end to end through ProductRetriever (query
embedding excluded: vectors are computed beforehand), and Chroma at the same N; load rows/s, index build seconds,
sizes, server memory; with --sweep, the query-time knobs one at a time. Exact references: numpy over the loaded
vectors (vector legs, Chroma); for full text and hybrid, the same code with no candidate bound and no HNSW index,
on --exact-queries of the queries.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings
from tqdm import tqdm

from shopagent.db import catalog, diagnostics
from shopagent.db.connection import Connection, configure_search, connect, make_pool
from shopagent.db.schema import IndexBuild, VectorIndexSpec
from shopagent.db.writes import ProductRow
from shopagent.domain import NO_FILTERS, SearchFilters
from shopagent.embeddings import embedding_model_name, make_embeddings
from shopagent.embeddings.text import EMBEDDING_VERSION
from shopagent.evals import synthetic
from shopagent.evals.metrics import load_queries
from shopagent.evals.scale import (
    ExactSearch,
    directory_mb,
    load_chroma,
    recall_at_k,
    scratch_server,
    server_memory_mb,
)
from shopagent.evals.scale import timed as timed_calls
from shopagent.ingest import bulk
from shopagent.ingest.reader import normalise, read_catalog
from shopagent.retrieval.chroma import ChromaStore
from shopagent.retrieval.hybrid import HYBRID_CANDIDATES
from shopagent.retrieval.retriever import ProductRetriever
from shopagent.retrieval.strategies import ProductSearch
from shopagent.services import Services, prepare_database
from shopagent.settings import PROJECT_ROOT, Settings, get_settings

log = logging.getLogger("bench_scale")
DATA = PROJECT_ROOT / "data" / "esci-us"
BENCH_DIR = PROJECT_ROOT / ".data" / "bench"
K = 10


class PrecomputedEmbeddings(Embeddings):
    """Query vectors computed before the timed runs (so latencies exclude the embedding)."""

    def __init__(self, vectors: dict[str, list[float]]):
        """`vectors`: search text -> its vector."""
        self.vectors = vectors

    def embed_query(self, text: str) -> list[float]:
        """The precomputed vector of `text` (KeyError for a text not prepared)."""
        return self.vectors[text]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Not used by searches."""
        raise NotImplementedError


def ids(results: list[list[Any]]) -> list[list[str]]:
    """Product ids of each result list."""
    return [[p["product_id"] for p in r] for r in results]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--products", type=int, required=True, help="catalog size N")
    p.add_argument("--embed", action="store_true", help="embed every synthetic product's text (slow)")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--queries-own", type=int, default=100, help="generated queries besides the shared ones")
    p.add_argument("--repeat", type=int, default=2, help="timed passes over the queries")
    p.add_argument("--exact-queries", type=int, default=60, help="queries with exact full-text/hybrid references")
    p.add_argument("--shared-buffers", default="1GB", help="the scratch server's shared_buffers")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-chroma", action="store_true", help="skip the Chroma side")
    p.add_argument("--no-reload", action="store_true", help="skip timing an unchanged re-load")
    p.add_argument("--sweep", action="store_true", help="also sweep the query-time knobs (one pass each)")
    return p.parse_args(argv)


def sample_vectors(sample: list[dict[str, Any]], embeddings: Embeddings, model: str) -> np.ndarray:
    """The sample products' real vectors, embedded once and cached under .data/bench/."""
    cache = BENCH_DIR / f"sample-vectors-{model.replace('/', '_')}.npy"
    if cache.exists():
        return np.load(cache)
    texts = [normalise(p, model).embedded_text for p in sample]
    vectors = np.asarray(
        [
            v
            for i in tqdm(range(0, len(texts), 256), desc="embed sample")
            for v in embeddings.embed_documents(texts[i : i + 256])
        ],
        dtype=np.float32,
    )
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, vectors)
    return vectors


def catalog_rows(
    plan: synthetic.Plan, sample: list[dict[str, Any]], vectors: np.ndarray, model: str, embeddings: Embeddings | None
) -> Any:
    """ProductRows of the synthetic catalog; fills `vectors` (n, dim) as it goes (embedded when `embeddings`)."""

    def batch_vectors(start: int, stop: int, records: list[dict[str, Any]]) -> np.ndarray:
        if embeddings is not None:
            texts = [normalise(r, model).embedded_text for r in records]
            vectors[start:stop] = np.asarray(embeddings.embed_documents(texts), dtype=np.float32)
        return vectors[start:stop]

    for record, vector in synthetic.records(plan, sample, batch_vectors):
        row: ProductRow = normalise(record, model)
        yield replace(row, embedding=vector, embedding_model=model, embedding_version=EMBEDDING_VERSION)


def selective_brand(plan: synthetic.Plan, target: int = 100) -> tuple[str, int]:
    """The brand whose product count is closest to `target`."""
    names, counts = np.unique(plan.brand[plan.brand != ""], return_counts=True)
    best = int(np.argmin(np.abs(counts - target)))
    return str(names[best]), int(counts[best])


def measure(args: argparse.Namespace, settings: Settings, dsn: str, pid: int) -> dict[str, Any]:
    """Build, load and measure; the results dict (the shape the issue asks for, plus details)."""
    embeddings = make_embeddings(settings)
    model = embedding_model_name(embeddings)
    sample = list(read_catalog(DATA / "products.jsonl.gz"))
    base = sample_vectors(sample, embeddings, model)
    plan = synthetic.make_plan(sample, args.products, args.seed)
    vectors = (
        np.zeros((len(plan), base.shape[1]), dtype=np.float32)
        if args.embed
        else synthetic.plan_vectors(plan, base, 0, len(plan), args.seed)
    )
    spec, build = VectorIndexSpec.from_settings(settings), IndexBuild.from_settings(settings)
    out: dict[str, Any] = {"products": args.products, "embedded": args.embed, "model": model}
    out["knobs"] = {
        k: v for k, v in settings.model_dump().items() if k.startswith(("hnsw_", "fulltext_", "index_", "bulk_"))
    }
    with prepare_database(settings, embeddings, dsn) as conn:
        rows = catalog_rows(plan, sample, vectors, model, embeddings if args.embed else None)
        streams = [connect(settings, dsn) for _ in range(settings.bulk_load_streams - 1)]
        with tqdm(total=len(plan), desc="bulk load", unit="row") as bar:
            loaded = bulk.load(conn, rows, spec=spec, build=build, streams=streams, progress=bar.update)
        for stream in streams:
            stream.close()
        log.info("load: %s", loaded.as_dict())
        out["load_rows_per_s"] = round(loaded.rows_per_s, 1)
        out["index_build_s"] = round(sum(loaded.index_build_s.values()), 1)
        out["load"] = loaded.as_dict()
        if not args.no_reload:
            again = bulk.load(conn, catalog_rows(plan, sample, vectors, model, None), spec=spec, build=build)
            out["reload_unchanged"] = {
                "rows_per_s": round(again.rows_per_s, 1),
                "written": again.inserted + again.updated,
            }
        out["sizes_mb"] = diagnostics.relation_sizes_mb(conn)
    out["server_memory_mb_after_load"] = server_memory_mb(pid)
    out["search"] = search_figures(args, settings, dsn, plan, vectors, embeddings)
    out["server_memory_mb_after_search"] = server_memory_mb(pid)
    return out


def vector_leg(
    conn: Connection, settings: Settings, qvec: np.ndarray, filters: SearchFilters, truth: list[list[str]], rep: int
) -> dict[str, Any]:
    """pgvector top-10 (embedding excluded) over the query vectors: latency, recall@10, lists shorter than 10."""
    timing, found = timed_calls(
        lambda v: catalog.vector_search(conn, v, K, filters, halfvec=settings.hnsw_halfvec), list(qvec), rep, "vector"
    )
    short = sum(len(r) < min(K, len(t)) for r, t in zip(found, truth, strict=True))
    return timing.as_dict() | {"recall_at_10": recall_at_k(ids(found), truth), "short_lists": short}


def fulltext_leg(
    conn: Connection, texts: list[str], candidates: int, truth: list[list[str]], rep: int
) -> dict[str, Any]:
    """Full-text top-50 (what hybrid asks for): latency over all texts, recall@10 on the first len(truth)."""
    timing, found = timed_calls(
        lambda t: catalog.fulltext_search(conn, t, HYBRID_CANDIDATES, NO_FILTERS, candidates), texts, rep, "fulltext"
    )
    return timing.as_dict() | {"recall_at_10": recall_at_k(ids(found[: len(truth)]), truth)}


def knob_sweep(
    conn: Connection,
    settings: Settings,
    qvec: np.ndarray,
    texts: list[str],
    variants: dict[str, tuple[SearchFilters, list[list[str]]]],
    fulltext_truth: list[list[str]],
) -> dict[str, list[dict[str, Any]]]:
    """Query-time knobs one at a time around the settings (one timed pass each): ef_search on the unfiltered and
    price-filtered legs, the iterative scan mode and max_scan_tuples on the filtered ones, FULLTEXT_CANDIDATES."""
    grid: dict[str, tuple[tuple[Any, ...], tuple[str, ...]]] = {
        "hnsw_ef_search": ((40, 100, 200, 400), ("vector", "vector_price")),
        "hnsw_iterative_scan": (("off", "relaxed_order", "strict_order"), ("vector_price", "vector_brand")),
        "hnsw_max_scan_tuples": ((2000, 20_000, 100_000), ("vector_price", "vector_brand")),
    }
    out: dict[str, list[dict[str, Any]]] = {}
    for knob, (values, legs) in grid.items():
        out[knob] = []
        for value in values:
            configure_search(conn, settings.model_copy(update={knob: value}))
            row: dict[str, Any] = {knob: value}
            for leg in legs:
                filters, truth = variants[leg]
                row[leg] = vector_leg(conn, settings, qvec, filters, truth, 1)
            out[knob].append(row)
    configure_search(conn, settings)
    out["fulltext_candidates"] = [
        {"fulltext_candidates": c, "fulltext": fulltext_leg(conn, texts, c, fulltext_truth, 1)}
        for c in (100, 300, 1000, 3000)
    ]
    return out


def search_figures(
    args: argparse.Namespace,
    settings: Settings,
    dsn: str,
    plan: synthetic.Plan,
    vectors: np.ndarray,
    embeddings: Embeddings,
) -> dict[str, Any]:
    """Latency and recall of every search leg (and Chroma at the same N)."""
    queries = list(load_queries(DATA / "queries.tsv").values()) + synthetic.own_queries(
        list(read_catalog(DATA / "products.jsonl.gz")), args.queries_own, args.seed
    )
    pool = make_pool(settings, dsn)
    # Parsed as the retriever parses them (the catalog's vocabulary), so hybrid finds its precomputed vectors.
    understood = Services(settings, embeddings, pool, None, ProductSearch(settings, embeddings, pool, None))
    texts = [understood.parse(q).text for q in queries]
    qvec = np.asarray(embeddings.embed_documents(texts), dtype=np.float32)
    qvec /= np.linalg.norm(qvec, axis=1, keepdims=True)
    exact = ExactSearch(vectors, synthetic.product_id)
    brand, brand_n = selective_brand(plan)
    masks = {
        "vector": (NO_FILTERS, None),
        "vector_price": (SearchFilters(price_max=50.0), ~np.isnan(plan.price) & (plan.price <= 50.0)),
        "vector_brand": (SearchFilters(brands=(brand,)), plan.brand == brand),
        "vector_in_stock": (SearchFilters(in_stock=True), plan.in_stock),
    }
    variants = {name: (filters, exact.top(qvec, K, mask)) for name, (filters, mask) in masks.items()}
    rep, n_exact = args.repeat, min(args.exact_queries, len(queries))
    out: dict[str, Any] = {
        "queries": len(queries),
        "repeat": rep,
        "brand_filter": {"brand": brand, "products": brand_n},
    }

    def exact_configure(conn: Connection) -> None:
        configure_search(conn, settings)
        diagnostics.exact_scans(conn)

    exact_pool = make_pool(settings, dsn, name="exact", configure=exact_configure)
    try:
        with exact_pool.connection() as conn:
            ft_truth = [
                ids([catalog.fulltext_search(conn, t, K, NO_FILTERS, None)])[0]
                for t in tqdm(texts[:n_exact], desc="fulltext exact", leave=False)
            ]
        with pool.connection() as conn:
            for name, (filters, truth) in variants.items():
                out[name] = vector_leg(conn, settings, qvec, filters, truth, rep)
            out["fulltext"] = fulltext_leg(conn, texts, settings.fulltext_candidates, ft_truth, rep)
            out["fulltext_plan"] = diagnostics.explain_fulltext_step(
                conn, "water bottle", HYBRID_CANDIDATES, settings.fulltext_candidates
            )
            if args.sweep:
                out["sweep"] = knob_sweep(conn, settings, qvec, texts, variants, ft_truth)
        out["hybrid"] = hybrid_figures(settings, pool, exact_pool, queries, texts, qvec, rep, n_exact)
    finally:
        pool.close()
        exact_pool.close()
    if not args.no_chroma:
        out.update(chroma_figures(args, plan, vectors, qvec, variants, rep))
    return out


def hybrid_figures(
    settings: Settings,
    pool: Any,
    exact_pool: Any,
    queries: list[str],
    texts: list[str],
    qvec: np.ndarray,
    rep: int,
    n_exact: int,
) -> dict[str, Any]:
    """Hybrid end to end through ProductRetriever (understanding, both legs, fusion), embeddings precomputed; the
    reference runs the same code without the HNSW index and without the full-text candidate bound."""
    embeddings = PrecomputedEmbeddings({t: v.tolist() for t, v in zip(texts, qvec, strict=True)})

    def retriever(p: Any, exact: bool) -> ProductRetriever:
        search = ProductSearch(settings, embeddings, p, None)
        if exact:
            search.fulltext.candidates = None
        return ProductRetriever(services=Services(settings, embeddings, p, None, search), strategy="hybrid", k=K)

    fast, slow = retriever(pool, False), retriever(exact_pool, True)
    timing, found = timed_calls(fast.search, queries, rep, "hybrid")
    truth = [[p["product_id"] for p in slow.search(q).products] for q in tqdm(queries[:n_exact], desc="hybrid exact")]
    ids = [[p["product_id"] for p in r.products] for r in found[:n_exact]]
    return timing.as_dict() | {"recall_at_10": recall_at_k(ids, truth)}


def chroma_figures(
    args: argparse.Namespace,
    plan: synthetic.Plan,
    vectors: np.ndarray,
    qvec: np.ndarray,
    variants: dict[str, tuple[SearchFilters, list[list[str]]]],
    rep: int,
) -> dict[str, Any]:
    """Chroma (embedded persistent client) at the same N: load rate, top-10 latency and recall, size. The price
    filter runs one pass over 50 queries: Chroma filters slowly (hundreds of ms a query at 100k)."""
    folder = BENCH_DIR / f"chroma-{args.products}"
    store = ChromaStore(folder, "bench")
    items = (
        {
            "id": synthetic.product_id(i),
            "embedding": vectors[i],
            "price": None if np.isnan(plan.price[i]) else float(plan.price[i]),
            "in_stock": bool(plan.in_stock[i]),
            "brand": plan.brand[i],
            "name": synthetic.product_id(i),
        }
        for i in range(len(plan))
    )
    out: dict[str, Any] = {"chroma_load_rows_per_s": round(load_chroma(store, items, len(plan)), 1)}
    for name, leg, n, passes in (("chroma", "vector", len(qvec), rep), ("chroma_price", "vector_price", 50, 1)):
        filters, truth = variants[leg]
        timing, found = timed_calls(lambda v, f=filters: store.search(v, K, f), list(qvec[:n]), passes, name)
        out[name] = timing.as_dict() | {"recall_at_10": recall_at_k(ids(found), truth[:n])}
    out["chroma_size_mb"] = directory_mb(folder)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark on a scratch server; print and optionally write the results."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    started, load_start = time.perf_counter(), os.getloadavg()[0]
    config = {"shared_buffers": args.shared_buffers, "max_wal_size": "8GB", "checkpoint_timeout": "30min"}
    with scratch_server(BENCH_DIR / f"pg-{args.products}", config) as (dsn, pid):
        settings = get_settings().model_copy(update={"database_url": None})
        try:
            results = measure(args, settings, dsn, pid)
        finally:
            shutil.rmtree(BENCH_DIR / f"chroma-{args.products}", ignore_errors=True)
    results["bench_seconds"] = round(time.perf_counter() - started, 1)
    results["load_average_1m"] = {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2)}
    text = json.dumps(results, indent=2, default=str)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
