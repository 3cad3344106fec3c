"""Retrieval quality per strategy on graded queries: nDCG@k, recall@k (grade >= 2), MRR, zero-result rate,
mean top-1 similarity, fallback rate, latency p50/p95 (query embedding included), errors. Behind
`shopagent evaluate`."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from shopagent.domain import SearchOptions
from shopagent.evals.metrics import ndcg_at_k, percentile, recall_at_k, reciprocal_rank
from shopagent.services import Services
from shopagent.settings import Strategy

log = logging.getLogger(__name__)


@dataclass
class StrategyRun:
    """Per-query outcomes of one strategy."""

    strategy: str
    rankings: dict[str, list[str]] = field(default_factory=dict)
    top1: list[float] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    fallbacks: int = 0
    errors: int = 0


def run_strategy(services: Services, strategy: Strategy, queries: dict[str, str], k: int) -> StrategyRun:
    """Search every query with `strategy`."""
    run = StrategyRun(strategy)
    options = SearchOptions(k=k, strategy=strategy)
    for qid, text in tqdm(queries.items(), desc=strategy, unit="query", leave=False):
        started = time.perf_counter()
        try:
            result = services.search.search(services.parse(text), options)
        except Exception:  # noqa: BLE001 - an evaluation counts failures instead of stopping
            log.exception("query %s failed", qid)
            run.errors += 1
            run.rankings[qid] = []
            continue
        run.latencies_ms.append((time.perf_counter() - started) * 1000)
        run.rankings[qid] = [p["product_id"] for p in result.products]
        run.errors += len(result.errors)
        run.fallbacks += result.fallback_reason is not None
        if result.products and (top1 := result.products[0]["similarity"]) is not None:
            run.top1.append(top1)
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
    cols = [
        f"ndcg@{k}",
        f"recall@{k}",
        "mrr",
        "zero_result_rate",
        "mean_top1_similarity",
        "fallback_rate",
        "latency_ms_p50",
        "latency_ms_p95",
        "errors",
    ]
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
