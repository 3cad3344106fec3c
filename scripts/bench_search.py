"""Search latency and quality on the configured database (the full catalog in development).

    python scripts/bench_search.py [--queries data/esci-us/queries.tsv] [--labels data/esci-us/labels.tsv]
        [--repeat 5] [--json]

Over the shared queries, after a warm-up pass: query-embedding latency; pgvector top-10 latency
EXCLUDING the embedding (precomputed vectors through catalog.vector_search), unfiltered and with
a price filter; full-text latency; Chroma latency; hybrid end-to-end latency (embedding included);
the EXPLAIN and EXPLAIN ANALYZE plans of the top-10 query on the full table; nDCG@10 of plain
pgvector search (raw query text, no parsing, no threshold). Targets: pgvector p50 <= 10 ms and
p95 <= 25 ms, query embedding p50 <= 10 ms; exit 1 when one is missed.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg
from langchain_core.embeddings import Embeddings
from tqdm import tqdm

from shopagent.db import catalog, diagnostics
from shopagent.domain import SearchFilters, SearchOptions
from shopagent.embeddings import embedding_model_name
from shopagent.evals.metrics import load_labels, load_queries, ndcg_at_k, percentile
from shopagent.services import build_services
from shopagent.settings import PROJECT_ROOT, get_settings

log = logging.getLogger("bench_search")
DATA = PROJECT_ROOT / "data" / "esci-us"
FILTER = SearchFilters(price_max=50.0)
MEASURES = {
    "embed_query": "query embedding",
    "pgvector": "pgvector top-k (no embedding)",
    "pgvector_filtered": "pgvector top-k + price<=50",
    "fulltext": "full text top-k",
    "chroma": "chroma top-k (no embedding)",
    "hybrid_end_to_end": "hybrid end-to-end (with embedding)",
}
TARGETS_MS = {"pgvector_p50": 10.0, "pgvector_p95": 25.0, "embed_p50": 10.0}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--queries", type=Path, default=DATA / "queries.tsv")
    p.add_argument("--labels", type=Path, default=DATA / "labels.tsv")
    p.add_argument("--repeat", type=int, default=5, help="timed passes over the queries (default 5)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p.parse_args(argv)


def timed(fn: Callable[[Any], object], inputs: Sequence[Any], repeat: int, desc: str, quiet: bool) -> dict[str, float]:
    """p50/p95/mean in ms of fn over inputs, after one untimed warm-up pass."""
    for x in inputs:
        fn(x)
    samples: list[float] = []
    with tqdm(total=repeat * len(inputs), desc=desc, unit="call", disable=quiet, leave=False) as bar:
        for _ in range(repeat):
            for x in inputs:
                started = time.perf_counter()
                fn(x)
                samples.append((time.perf_counter() - started) * 1000)
                bar.update()
    return {
        "p50_ms": round(percentile(samples, 50), 2),
        "p95_ms": round(percentile(samples, 95), 2),
        "mean_ms": round(sum(samples) / len(samples), 2),
        "calls": len(samples),
    }


def short_plan(plan: str) -> str:
    """The plan with the 384-number query vector literal shortened to `$q`."""
    return re.sub(r"'\[[^\]]*\]'::vector", "$q::vector", plan)


def plain_pgvector_ndcg(
    conn: psycopg.Connection,
    embeddings: Embeddings,
    queries: dict[str, str],
    labels: dict[str, dict[str, int]],
    k: int = 10,
) -> float:
    """Mean nDCG@k of plain pgvector search (raw query embedded, top-k, no filters or threshold)
    over the judged queries."""
    judged = [q for q in queries if labels.get(q)]
    vectors = embeddings.embed_documents([queries[q] for q in judged]) if judged else []
    scores = [
        ndcg_at_k([p["product_id"] for p in catalog.vector_search(conn, v, k)], labels[q], k)
        for q, v in zip(judged, vectors, strict=True)
    ]
    return round(sum(scores) / len(scores), 4) if scores else 0.0


def main(argv: list[str] | None = None) -> int:
    """Run every measurement and print (or JSON-print) the results."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    queries, labels = load_queries(args.queries), load_labels(args.labels)
    texts = list(queries.values())
    services = build_services(get_settings())
    if services.pool is None:
        log.error("database unavailable: %s", "; ".join(services.startup_errors))
        return 2
    emb, k, rep, quiet = services.embeddings, args.k, args.repeat, args.quiet
    results: dict[str, Any] = {"model": embedding_model_name(emb), "queries": len(texts), "repeat": rep, "k": k}
    try:
        vectors = [emb.embed_query(t) for t in texts]
        results["embed_query"] = timed(emb.embed_query, texts, rep, "embed", quiet)
        with services.pool.connection() as conn:
            results["storage"] = {k2: str(v) for k2, v in diagnostics.storage_facts(conn).items()}
            results["pgvector"] = timed(lambda v: catalog.vector_search(conn, v, k), vectors, rep, "pgvector", quiet)
            results["pgvector_filtered"] = timed(
                lambda v: catalog.vector_search(conn, v, k, FILTER), vectors, rep, "pgvector+filter", quiet
            )
            results["pgvector_filtered"]["filter"] = FILTER.as_dict()
            results["fulltext"] = timed(lambda t: catalog.fulltext_search(conn, t, k), texts, rep, "fulltext", quiet)
            results["explain"] = short_plan(diagnostics.explain_vector_search(conn, vectors[0], k))
            results["explain_analyze"] = short_plan(diagnostics.explain_analyze_vector_search(conn, vectors[0], k))
            results["ndcg@10_plain_pgvector"] = plain_pgvector_ndcg(conn, emb, queries, labels, 10)
        if services.chroma is not None:
            results["chroma"] = timed(lambda v: services.chroma.search(v, k), vectors, rep, "chroma", quiet)  # type: ignore[union-attr]
        hybrid = SearchOptions(k=k, strategy="hybrid")
        results["hybrid_end_to_end"] = timed(
            lambda t: services.search.search(services.parse(t), hybrid), texts, max(1, rep // 2), "hybrid", quiet
        )
    finally:
        services.close()
    observed = {
        "pgvector_p50": results["pgvector"]["p50_ms"],
        "pgvector_p95": results["pgvector"]["p95_ms"],
        "embed_p50": results["embed_query"]["p50_ms"],
    }
    results["targets_missed"] = [name for name, limit in TARGETS_MS.items() if observed[name] > limit]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_results(results)
    return 1 if results["targets_missed"] else 0


def print_results(r: dict[str, Any]) -> None:
    """Readable results."""
    print(f"model {r['model']}  queries {r['queries']}  repeat {r['repeat']}  k {r['k']}")
    print("storage: " + "  ".join(f"{k}={v}" for k, v in r["storage"].items()))
    print(f"{'measure':<34}{'p50 ms':>9}{'p95 ms':>9}{'mean ms':>9}{'calls':>7}")
    for key, label in MEASURES.items():
        if key in r:
            m = r[key]
            print(f"{label:<34}{m['p50_ms']:>9.2f}{m['p95_ms']:>9.2f}{m['mean_ms']:>9.2f}{m['calls']:>7}")
    print(f"nDCG@10 plain pgvector: {r['ndcg@10_plain_pgvector']}")
    print("EXPLAIN:\n  " + r["explain"].replace("\n", "\n  "))
    print("EXPLAIN ANALYZE:\n  " + r["explain_analyze"].replace("\n", "\n  "))
    print("targets missed: " + (", ".join(r["targets_missed"]) or "none"))


if __name__ == "__main__":
    sys.exit(main())
