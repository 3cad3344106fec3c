"""Measure retrieval quality per strategy on graded queries.

    python scripts/evaluate.py --queries data/esci-us/queries.tsv --labels data/esci-us/labels.tsv \
        [--strategy NAME|all] [--k 10] --output report.json [--markdown report.md] [--plot report.png]

Per strategy: nDCG@10, recall@10 (grade >= 2), MRR, zero-result rate, mean top-1 similarity,
fallback rate, latency p50/p95 (query embedding included), errors. With LANGSMITH_API_KEY set
the run is also recorded as a LangSmith dataset + one experiment per strategy.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from shopagent.bootstrap import Services, build_services
from shopagent.config import STRATEGIES, get_settings
from shopagent.evaluation import (
    load_labels,
    load_queries,
    ndcg_at_k,
    percentile,
    recall_at_k,
    reciprocal_rank,
)
from shopagent.search import SearchOptions

log = logging.getLogger("evaluate")


@dataclass
class StrategyRun:
    """Per-query outcomes of one strategy."""

    strategy: str
    rankings: dict[str, list[str]] = field(default_factory=dict)
    top1: list[float] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    fallbacks: int = 0
    errors: int = 0


def run_strategy(services: Services, strategy: str, queries: dict[str, str], k: int) -> StrategyRun:
    """Search every query with `strategy`."""
    run = StrategyRun(strategy)
    options = SearchOptions(k=k, strategy=strategy)
    for qid, text in tqdm(queries.items(), desc=strategy, unit="query", leave=False):
        started = time.perf_counter()
        try:
            response = services.search.search(text, options=options)
        except Exception:  # noqa: BLE001 - an evaluation counts failures instead of stopping
            log.exception("query %s failed", qid)
            run.errors += 1
            run.rankings[qid] = []
            continue
        run.latencies_ms.append((time.perf_counter() - started) * 1000)
        run.rankings[qid] = [h.product_id for h in response.hits]
        run.errors += len(response.errors)
        run.fallbacks += response.fallback_reason is not None
        if response.hits and response.hits[0].similarity is not None:
            run.top1.append(response.hits[0].similarity)
    return run


def summarise(run: StrategyRun, labels: dict[str, dict[str, int]], k: int) -> dict[str, Any]:
    """Aggregate metrics of one strategy (queries without labels are skipped)."""
    qids = [q for q in run.rankings if labels.get(q)]
    n = max(len(qids), 1)
    return {
        "queries": len(qids),
        f"ndcg@{k}": round(sum(ndcg_at_k(run.rankings[q], labels[q], k) for q in qids) / n, 4),
        f"recall@{k}": round(sum(recall_at_k(run.rankings[q], labels[q], k) for q in qids) / n, 4),
        "mrr": round(sum(reciprocal_rank(run.rankings[q], labels[q]) for q in qids) / n, 4),
        "zero_result_rate": round(sum(not run.rankings[q] for q in qids) / n, 4),
        "mean_top1_similarity": round(sum(run.top1) / len(run.top1), 4) if run.top1 else None,
        "fallback_rate": round(run.fallbacks / n, 4),
        "latency_ms_p50": round(percentile(run.latencies_ms, 50), 2),
        "latency_ms_p95": round(percentile(run.latencies_ms, 95), 2),
        "errors": run.errors,
    }


def to_markdown(report: dict[str, Any], k: int) -> str:
    """The report as a Markdown table."""
    cols = [f"ndcg@{k}", f"recall@{k}", "mrr", "zero_result_rate", "mean_top1_similarity", "fallback_rate",
            "latency_ms_p50", "latency_ms_p95", "errors"]  # fmt: skip
    lines = ["| strategy | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, m in report["strategies"].items():
        lines.append(f"| {name} | " + " | ".join(str(m.get(c)) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], k: int, path: Path) -> None:
    """Bar chart of nDCG, recall and MRR per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["strategies"])
    metrics = [f"ndcg@{k}", f"recall@{k}", "mrr"]
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(metrics)
    for i, m in enumerate(metrics):
        ax.bar([x + i * width for x in range(len(names))], [report["strategies"][n][m] for n in names], width, label=m)
    ax.set_xticks([x + width for x in range(len(names))], names)
    ax.set_ylim(0, 1)
    ax.legend()
    ax.set_title("Retrieval quality per strategy")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--queries", type=Path, required=True)
    p.add_argument("--labels", type=Path, required=True)
    p.add_argument("--strategy", default="all", help=f"one of {', '.join(STRATEGIES)} or 'all'")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--output", type=Path, required=True, help="JSON report path")
    p.add_argument("--markdown", type=Path)
    p.add_argument("--plot", type=Path)
    p.add_argument("--limit", type=int, help="only the first N queries")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Evaluate, write the reports, print the table."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    strategies = list(STRATEGIES) if args.strategy == "all" else [args.strategy]
    if unknown := [s for s in strategies if s not in STRATEGIES]:
        log.error("unknown strategy %s; valid: %s or all", unknown, ", ".join(STRATEGIES))
        return 2
    queries = load_queries(args.queries)
    labels = load_labels(args.labels)
    if args.limit:
        queries = dict(list(queries.items())[: args.limit])
    settings = get_settings()
    services = build_services(settings)
    try:
        runs = {s: run_strategy(services, s, queries, args.k) for s in strategies}
    finally:
        services.close()
    report = {
        "k": args.k,
        "queries": len(queries),
        "embedding_model": getattr(services.embeddings, "model_name", settings.embedding_provider),
        "thresholds": {
            "pgvector": settings.pgvector_similarity_threshold,
            "chroma": settings.chroma_similarity_threshold,
            "relaxed_floor": settings.relaxed_similarity_floor,
        },  # fmt: skip
        "strategies": {s: summarise(r, labels, args.k) for s, r in runs.items()},
    }
    if settings.langsmith_api_key is not None:
        from shopagent.experiments import record_retrieval_experiments

        report["langsmith"] = record_retrieval_experiments(settings, queries, labels, runs, args.k)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    table = to_markdown(report, args.k)
    if args.markdown:
        args.markdown.write_text(table)
    if args.plot:
        plot(report, args.k, args.plot)
    print(table, end="")
    return 1 if any(m["errors"] for m in report["strategies"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
