"""Record a retrieval evaluation in LangSmith: the graded queries as a dataset, one experiment per strategy.

The rankings were already computed by scripts/evaluate.py; the experiment's target only looks them
up, so LangSmith shows exactly the numbers of the local report (nDCG@k, recall@k, MRR per query).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from langsmith import evaluate
from langsmith.schemas import Example

from shopagent.config import Settings
from shopagent.evaluation import ndcg_at_k, recall_at_k, reciprocal_rank
from shopagent.tracing import flush, new_client

log = logging.getLogger(__name__)

DATASET_PREFIX = "shopagent-retrieval"
# Dataset and experiment uploads are batch work, not a chat turn: allow slower answers.
TIMEOUT_MS = (5_000, 30_000)
FLUSH_TIMEOUT_S = 30.0


class Ranked(Protocol):
    """What is needed of a strategy's run (scripts/evaluate.py `StrategyRun`)."""

    rankings: dict[str, list[str]]


def dataset_name(queries: Mapping[str, str], labels: Mapping[str, Mapping[str, int]]) -> str:
    """A name that changes whenever the queries or their judgements change (so a dataset is never stale)."""
    content = json.dumps([queries, {q: labels.get(q, {}) for q in queries}], sort_keys=True)
    return f"{DATASET_PREFIX}-{len(queries)}q-{hashlib.sha256(content.encode()).hexdigest()[:8]}"


def _metrics(k: int) -> list:
    """Row evaluators over (ranking, graded labels)."""

    def ndcg(outputs: dict, reference_outputs: dict) -> dict:
        """nDCG@k of the ranking."""
        return {"key": f"ndcg@{k}", "score": ndcg_at_k(outputs["ranking"], reference_outputs["labels"], k)}

    def recall(outputs: dict, reference_outputs: dict) -> dict:
        """Recall@k of relevant (grade >= 2) products."""
        return {"key": f"recall@{k}", "score": recall_at_k(outputs["ranking"], reference_outputs["labels"], k)}

    def mrr(outputs: dict, reference_outputs: dict) -> dict:
        """Reciprocal rank of the first relevant product."""
        return {"key": "mrr", "score": reciprocal_rank(outputs["ranking"], reference_outputs["labels"])}

    return [ndcg, recall, mrr]


def _examples(
    client: Any, queries: Mapping[str, str], labels: Mapping[str, Mapping[str, int]]
) -> tuple[str, list[Example]]:
    """Create the dataset if it does not exist yet; return its id and examples."""
    name = dataset_name(queries, labels)
    judged = {qid: text for qid, text in queries.items() if labels.get(qid)}
    if client.has_dataset(dataset_name=name):
        dataset = client.read_dataset(dataset_name=name)
    else:
        dataset = client.create_dataset(name, description="Graded shopper queries (ESCI-style, grades 0-3).")
        client.create_examples(
            dataset_id=dataset.id,
            examples=[
                {
                    "inputs": {"qid": qid, "query": text},
                    "outputs": {"labels": dict(labels[qid])},
                    "metadata": {"qid": qid},
                }
                for qid, text in judged.items()
            ],  # fmt: skip
        )
    return str(dataset.id), list(client.list_examples(dataset_id=dataset.id))


def record_retrieval_experiments(
    settings: Settings,
    queries: Mapping[str, str],
    labels: Mapping[str, Mapping[str, int]],
    runs: Mapping[str, Ranked],
    k: int,
) -> dict[str, Any]:
    """Upload the dataset (once) and one experiment per strategy; returns names and mean scores."""
    client = new_client(settings, timeout_ms=TIMEOUT_MS)
    dataset_id, examples = _examples(client, queries, labels)
    report: dict[str, Any] = {"dataset": dataset_name(queries, labels), "dataset_id": dataset_id, "experiments": {}}
    for strategy, run in runs.items():

        def target(inputs: dict, run: Ranked = run) -> dict:
            """The ranking the strategy already produced for this query."""
            return {"ranking": run.rankings.get(inputs["qid"], [])}

        results = evaluate(
            target,
            data=examples,
            evaluators=_metrics(k),
            experiment_prefix=f"retrieval-{strategy}",
            metadata={
                "strategy": strategy,
                "k": k,
                "embedding_model": settings.embedding_model,
                "pgvector_threshold": settings.pgvector_similarity_threshold,
                "chroma_threshold": settings.chroma_similarity_threshold,
            },  # fmt: skip
            client=client,
            max_concurrency=0,
        )
        scores: dict[str, list[float]] = {}
        for row in results:
            for er in row["evaluation_results"]["results"]:
                if er.score is not None:
                    scores.setdefault(er.key, []).append(float(er.score))
        report["experiments"][strategy] = {
            "name": results.experiment_name,
            **{key: round(sum(v) / len(v), 4) for key, v in scores.items()},
        }
    if not flush(client, FLUSH_TIMEOUT_S):
        log.warning("LangSmith upload incomplete after %.0f s", FLUSH_TIMEOUT_S)
    return report
