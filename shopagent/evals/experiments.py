"""LangSmith datasets and experiments, shared by the retrieval evaluation and the agent's conversation
evaluation: a dataset named after its content (so it is never stale), created once; an experiment per run
whose mean scores come back for the local report.

For retrieval, the rankings were already computed by `shopagent evaluate`; the experiment's target only
looks them up, so LangSmith shows exactly the numbers of the local report (nDCG@k, recall@k, MRR per query).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

import langsmith
from langsmith import evaluate
from langsmith.schemas import Example

from shopagent.evals.metrics import ndcg_at_k, recall_at_k, reciprocal_rank
from shopagent.observability.tracing import flush, new_client
from shopagent.settings import Settings

log = logging.getLogger(__name__)

RETRIEVAL_DATASET_PREFIX = "shopagent-retrieval"
CONVERSATION_DATASET_PREFIX = "shopagent-conversations"
# Dataset and experiment uploads are batch work, not a chat turn: allow slower answers.
TIMEOUT_MS = (5_000, 30_000)
FLUSH_TIMEOUT_S = 30.0
Evaluator = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]


def content_name(prefix: str, size: str, content: Any) -> str:
    """`<prefix>-<size>-<hash of content>`: a new name whenever the content changes."""
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:8]
    return f"{prefix}-{size}-{digest}"


def retrieval_dataset_name(queries: Mapping[str, str], labels: Mapping[str, Mapping[str, int]]) -> str:
    """The graded queries' dataset name."""
    content = [queries, {q: labels.get(q, {}) for q in queries}]
    return content_name(RETRIEVAL_DATASET_PREFIX, f"{len(queries)}q", content)


def conversation_dataset_name(conversations: list[dict[str, Any]]) -> str:
    """The conversations' dataset name."""
    return content_name(CONVERSATION_DATASET_PREFIX, f"{len(conversations)}c", conversations)


def ensure_dataset(
    client: langsmith.Client, name: str, description: str, examples: list[dict[str, Any]]
) -> list[Example]:
    """The dataset's examples, creating it (with `examples`) if it does not exist yet."""
    if client.has_dataset(dataset_name=name):
        dataset = client.read_dataset(dataset_name=name)
    else:
        dataset = client.create_dataset(name, description=description)
        client.create_examples(dataset_id=dataset.id, examples=examples)
    return list(client.list_examples(dataset_id=dataset.id))


def run_experiment(
    client: langsmith.Client,
    target: Callable[[dict[str, Any]], dict[str, Any]],
    examples: list[Example],
    evaluators: list[Evaluator],
    prefix: str,
    metadata: dict[str, Any],
) -> dict[str, Any]:
    """Run one experiment sequentially; its name and the mean of each evaluator's scores."""
    results = evaluate(
        target,
        data=examples,
        evaluators=evaluators,
        experiment_prefix=prefix,
        metadata=metadata,
        client=client,
        max_concurrency=0,
    )
    scores: dict[str, list[float]] = {}
    for row in results:
        for er in row["evaluation_results"]["results"]:
            if er.score is not None:
                scores.setdefault(er.key, []).append(float(er.score))
    return {"name": results.experiment_name, **{key: round(sum(v) / len(v), 4) for key, v in scores.items()}}


def _retrieval_metrics(k: int) -> list[Evaluator]:
    """Row evaluators over (ranking, graded labels)."""

    def ndcg(outputs: dict[str, Any], reference_outputs: dict[str, Any]) -> dict[str, Any]:
        """nDCG@k of the ranking."""
        return {"key": f"ndcg@{k}", "score": ndcg_at_k(outputs["ranking"], reference_outputs["labels"], k)}

    def recall(outputs: dict[str, Any], reference_outputs: dict[str, Any]) -> dict[str, Any]:
        """Recall@k of relevant (grade >= 2) products."""
        return {"key": f"recall@{k}", "score": recall_at_k(outputs["ranking"], reference_outputs["labels"], k)}

    def mrr(outputs: dict[str, Any], reference_outputs: dict[str, Any]) -> dict[str, Any]:
        """Reciprocal rank of the first relevant product."""
        return {"key": "mrr", "score": reciprocal_rank(outputs["ranking"], reference_outputs["labels"])}

    return [ndcg, recall, mrr]


def record_retrieval_experiments(
    settings: Settings,
    queries: Mapping[str, str],
    labels: Mapping[str, Mapping[str, int]],
    rankings: Mapping[str, Mapping[str, list[str]]],
    k: int,
    metadata: dict[str, Any],
) -> dict[str, Any]:
    """Upload the graded queries (once) and one experiment per strategy (`rankings[strategy][query_id]`)."""
    client = new_client(settings, timeout_ms=TIMEOUT_MS)
    name = retrieval_dataset_name(queries, labels)
    examples = ensure_dataset(
        client,
        name,
        "Graded shopper queries (ESCI-style, grades 0-3).",
        [
            {"inputs": {"qid": qid, "query": text}, "outputs": {"labels": dict(labels[qid])}, "metadata": {"qid": qid}}
            for qid, text in queries.items()
            if labels.get(qid)
        ],
    )
    report: dict[str, Any] = {"dataset": name, "experiments": {}}
    for strategy, ranked in rankings.items():

        def target(inputs: dict[str, Any], ranked: Mapping[str, list[str]] = ranked) -> dict[str, Any]:
            """The ranking the strategy already produced for this query."""
            return {"ranking": ranked.get(inputs["qid"], [])}

        report["experiments"][strategy] = run_experiment(
            client, target, examples, _retrieval_metrics(k), f"retrieval-{strategy}", {"strategy": strategy, **metadata}
        )
    if not flush(client, FLUSH_TIMEOUT_S):
        log.warning("LangSmith upload incomplete after %.0f s", FLUSH_TIMEOUT_S)
    return report


def record_conversation_experiment(
    settings: Settings,
    conversations: list[dict[str, Any]],
    target: Callable[[dict[str, Any]], dict[str, Any]],
    evaluators: list[Evaluator],
    metadata: dict[str, Any],
) -> dict[str, Any]:
    """Upload the conversations (once) and run `target` over them as one experiment."""
    client = new_client(settings, timeout_ms=TIMEOUT_MS)
    name = conversation_dataset_name(conversations)
    examples = ensure_dataset(
        client,
        name,
        "Shopping conversations (en/es) with expectations.",
        [
            {
                "inputs": {"id": c["id"], "language": c["language"], "messages": [t["message"] for t in c["turns"]]},
                "outputs": {"language": c["language"], "turns": c["turns"]},
                "metadata": {"conversation": c["id"]},
            }
            for c in conversations
        ],
    )
    result = run_experiment(client, target, examples, evaluators, "agent-conversations", metadata)
    if not flush(client, FLUSH_TIMEOUT_S):
        log.warning("LangSmith upload incomplete after %.0f s", FLUSH_TIMEOUT_S)
    return {"dataset": name, "experiment": result.pop("name"), **result}
