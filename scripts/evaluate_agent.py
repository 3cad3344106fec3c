"""Evaluate the agent on whole conversations (search -> refine -> details / compare / similar).

    python scripts/evaluate_agent.py [--conversations data/eval/conversations.jsonl] [--output report.json]
                                     [--strategy NAME] [--no-langsmith]

Conversations are JSONL, one per line: {"id", "language", "turns": [{"message", "expect": {...}}]} where
`expect` may hold `relevant_product_ids` (one of them must be among the products shown, top 5),
`intent` (the understood intent) and `language` (overrides the conversation's). Each conversation runs
through the real graph (in-memory checkpointer, Services from the settings, LLM if configured) and
each turn is scored by four evaluators:

- relevant_shown: an expected product is among the shown top 5 (turns with relevant_product_ids);
- language_match: the answer is written in the conversation's language (product names and quoted
  queries, which stay in the catalog's English, are left out of the check);
- no_hallucinated_ids: every product id in the turn's answer, shown list and tool result is in the catalog;
- intent_match: the understood intent is the expected one (turns with `intent`).

Prints a table per turn and the means, writes JSON. With LANGSMITH_API_KEY set (and not --no-langsmith)
the conversations also become a LangSmith dataset and this run an experiment with the same evaluators.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
import sys
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import langsmith
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph.state import CompiledStateGraph
from tqdm import tqdm

from agent.context import Context
from agent.graph import build_graph
from agent.service import AgentDeps
from shopagent import repository
from shopagent.bootstrap import Services, build_services
from shopagent.config import PROJECT_ROOT, STRATEGIES, Settings, get_settings

log = logging.getLogger("evaluate_agent")

TOP_N = 5
DATASET_PREFIX = "shopagent-conversations"
EVALUATORS = ("relevant_shown", "language_match", "no_hallucinated_ids", "intent_match")
# Amazon-style product ids (ASINs, ISBN-10s) as they could appear in an answer's text.
_PRODUCT_ID = re.compile(r"\b(?:B0[A-Z0-9]{8}|\d{9}[\dX])\b")
_QUOTED = re.compile(r"\"[^\"]*\"|“[^”]*”")
# Function and template words of each language (what an answer says around the catalog's names).
_SPANISH_HINT = re.compile(
    r"\b(esto|es|lo|que|qu[eé]|encontr[eé]|para|el|la|los|las|del|de|con|sin|por|menos|m[aá]s|barat[oa]s?|"
    r"mejor|valorad[oa]|valoraci[oó]n|opiniones|categor[ií]a|comparaci[oó]n|parecidos|opciones|variadas|coincide|"
    r"tambi[eé]n|misma|marca|precio|desconocido|nada|siguen|siendo|arriba|cu[aá]l|d[ií]me|a[uú]n|hay|productos?|"
    r"pantalla|primero|buscas|siento|solo|puedo|ayudarte|resultados|afinados|coincidencias|d[eé]biles|pueden|"
    r"servirte|prueba|otras|palabras|filtros|disponibles|similitud|caro)\b|[áéíóúñ¿¡]",
    re.I,
)
_ENGLISH_HINT = re.compile(
    r"\b(the|for|here|what|found|is|are|of|and|with|without|under|over|rating|reviews|colour|category|"
    r"comparison|cheapest|best|rated|similar|matches|also|same|brand|cheaper|more|price|unknown|which|one|"
    r"there|products?|sorry|tell|say|try|words|fewer|filters|nothing|still|couldn't|didn't)\b",
    re.I,
)
KnownIds = Callable[[list[str]], set[str]]


def load_conversations(path: Path) -> list[dict[str, Any]]:
    """The conversations of a JSONL file (blank lines skipped)."""
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


# ---------------------------------------------------------------- running


def make_graph(services: Services) -> CompiledStateGraph:
    """The agent over `services`, with an in-memory checkpointer (conversations are not kept)."""
    return build_graph(InMemorySaver(), AgentDeps(services))


def run_conversation(graph: CompiledStateGraph, conversation: dict[str, Any], context: Context) -> list[dict]:
    """Send each turn in one fresh thread; what each answer showed and said."""
    config = {"configurable": {"thread_id": f"eval-{conversation['id']}-{uuid.uuid4().hex[:8]}"}}
    turns = []
    for turn in conversation["turns"]:
        state = graph.invoke({"messages": [HumanMessage(turn["message"])]}, config, context=context)
        result = state.get("result") or {}
        searched_list = result.get("kind") in ("search", "refine", "similar") and result.get("products")
        shown = list(state.get("shown") or []) if searched_list else list(result.get("products") or [])
        turns.append({
            "message": turn["message"],
            "intent": state.get("intent"),
            "language": state.get("language"),
            "answer": state.get("answer") or "",
            "shown_ids": [p["product_id"] for p in shown],
            "shown_names": [p.get("name") or "" for p in shown] + [p.get("brand") or "" for p in shown],
            "result_ids": [p["product_id"] for p in result.get("products") or []],
            "brain": state.get("brain"),
            "strategy": result.get("strategy"),
            "fallback_reason": result.get("fallback_reason"),
        })  # fmt: skip
    return turns


# ---------------------------------------------------------------- evaluators (per turn)


def answer_language(answer: str, names: Iterable[str]) -> str:
    """'es' or 'en' of an answer's own words: product names/brands, quoted queries and highlight lines
    (catalog text, English whatever the conversation) are removed first, then function words are counted."""
    text = "\n".join(line for line in answer.splitlines() if not line.lstrip().startswith("- "))
    for name in sorted((n for n in names if n), key=len, reverse=True):
        text = text.replace(name, " ")
    text = _QUOTED.sub(" ", text)
    return "es" if len(_SPANISH_HINT.findall(text)) > len(_ENGLISH_HINT.findall(text)) else "en"


def turn_scores(turn: dict[str, Any], expect: dict[str, Any], language: str, known_ids: KnownIds) -> dict[str, Any]:
    """The four evaluators on one turn (None: not applicable to this turn)."""
    relevant = expect.get("relevant_product_ids")
    mentioned = set(_PRODUCT_ID.findall(turn["answer"])) | set(turn["shown_ids"]) | set(turn["result_ids"])
    missing = sorted(mentioned - known_ids(sorted(mentioned))) if mentioned else []
    want_lang = expect.get("language", language)
    return {
        "relevant_shown": None if not relevant else float(bool(set(relevant) & set(turn["shown_ids"][:TOP_N]))),
        "language_match": float(answer_language(turn["answer"], turn["shown_names"]) == want_lang),
        "no_hallucinated_ids": float(not missing),
        "intent_match": None if "intent" not in expect else float(turn["intent"] == expect["intent"]),
        "unknown_ids": missing,
    }


def catalog_checker(services: Services) -> KnownIds:
    """Which of some product ids exist in the catalog (PostgreSQL)."""

    def known(ids: list[str]) -> set[str]:
        """The subset of `ids` that are catalog products."""
        if services.pool is None:
            raise RuntimeError("the hallucination check needs the database")
        with services.pool.connection() as conn:
            return {row["id"] for row in repository.get_products(conn, ids)}

    return known


def score_conversation(conversation: dict[str, Any], turns: list[dict], known_ids: KnownIds) -> list[dict]:
    """Per-turn scores of one conversation's outcome."""
    return [turn_scores(t, spec.get("expect") or {}, conversation["language"], known_ids)
            for t, spec in zip(turns, conversation["turns"], strict=True)]  # fmt: skip


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the applicable (non-None) values."""
    vals = [v for v in values if v is not None]
    return round(sum(vals) / len(vals), 4) if vals else None


# ---------------------------------------------------------------- local run


def evaluate_local(services: Services, conversations: list[dict[str, Any]], context: Context) -> dict[str, Any]:
    """Run and score every conversation; per-turn rows, per-conversation means and overall means."""
    graph, known = make_graph(services), catalog_checker(services)
    rows, per_conversation = [], {}
    for conv in tqdm(conversations, desc="conversations", unit="conv"):
        with langsmith.tracing_context(enabled=False):  # a local run is not a trace (the experiment is)
            turns = run_conversation(graph, conv, context)
        scores = score_conversation(conv, turns, known)
        for i, (t, s) in enumerate(zip(turns, scores, strict=True)):
            expected = (conv["turns"][i].get("expect") or {}).get("intent")
            rows.append({"conversation": conv["id"], "turn": i + 1, "language": conv["language"],
                         "expected_intent": expected, **t, **s})  # fmt: skip
        per_conversation[conv["id"]] = {key: mean(s[key] for s in scores) for key in EVALUATORS}
    summary = {key: mean(r[key] for r in rows) for key in EVALUATORS}
    summary["turns_scored"] = {key: sum(r[key] is not None for r in rows) for key in EVALUATORS}
    summary["conversations"] = len(conversations)
    summary["turns"] = len(rows)
    return {"summary": summary, "conversations": per_conversation, "turns": rows}


def to_table(report: dict[str, Any]) -> str:
    """A plain-text table of the turns and the means."""

    def cell(value: float | None) -> str:
        """1 / 0 / - for a score."""
        return "-" if value is None else f"{value:g}"

    lines = [f"{'conversation':<16}{'#':>2}  {'intent':<13}{'rel':>4}{'lang':>5}{'ids':>4}{'int':>4}  message"]
    for r in report["turns"]:
        lines.append(f"{r['conversation']:<16}{r['turn']:>2}  {r['intent'] or '-':<13}{cell(r['relevant_shown']):>4}"
                     f"{cell(r['language_match']):>5}{cell(r['no_hallucinated_ids']):>4}{cell(r['intent_match']):>4}"
                     f"  {r['message'][:48]}")  # fmt: skip
    s = report["summary"]
    lines.append("")
    for key in EVALUATORS:
        lines.append(f"{key:<20} {cell(s[key]):>6}  ({s['turns_scored'][key]} turns)")
    return "\n".join(lines)


# ---------------------------------------------------------------- LangSmith experiment


def dataset_name(conversations: list[dict[str, Any]]) -> str:
    """A name that changes whenever the conversations change (a dataset is never stale)."""
    digest = hashlib.sha256(json.dumps(conversations, sort_keys=True).encode()).hexdigest()[:8]
    return f"{DATASET_PREFIX}-{len(conversations)}c-{digest}"


def langsmith_evaluators(known_ids: KnownIds) -> list[Callable[[dict, dict], dict]]:
    """Conversation-level evaluators (mean over applicable turns) over the target's outputs."""

    def scorer(key: str) -> Callable[[dict, dict], dict]:
        """An evaluator for one key."""

        def evaluate_key(outputs: dict, reference_outputs: dict) -> dict:
            """Mean of this key over the conversation's turns."""
            conv = {"language": reference_outputs["language"], "turns": reference_outputs["turns"]}
            scores = score_conversation(conv, outputs["turns"], known_ids)
            return {"key": key, "score": mean(s[key] for s in scores)}

        evaluate_key.__name__ = key
        return evaluate_key

    return [scorer(key) for key in EVALUATORS]


def record_experiment(
    settings: Settings, services: Services, conversations: list[dict[str, Any]], context: Context
) -> dict[str, Any]:
    """Upload the conversations as a dataset (once) and run them as an experiment; names and mean scores."""
    from langsmith import evaluate

    from shopagent.experiments import FLUSH_TIMEOUT_S, TIMEOUT_MS
    from shopagent.tracing import flush, new_client

    client = new_client(settings, timeout_ms=TIMEOUT_MS)
    name = dataset_name(conversations)
    if client.has_dataset(dataset_name=name):
        dataset = client.read_dataset(dataset_name=name)
    else:
        dataset = client.create_dataset(name, description="Shopping conversations (en/es) with expectations.")
        client.create_examples(dataset_id=dataset.id, examples=[
            {"inputs": {"id": c["id"], "language": c["language"], "messages": [t["message"] for t in c["turns"]]},
             "outputs": {"language": c["language"], "turns": c["turns"]}, "metadata": {"conversation": c["id"]}}
            for c in conversations
        ])  # fmt: skip
    examples = list(client.list_examples(dataset_id=dataset.id))
    graph = make_graph(services)

    def target(inputs: dict) -> dict:
        """Run one conversation through the agent (its graph runs are traced under this run)."""
        conv = {"id": inputs["id"], "turns": [{"message": m} for m in inputs["messages"]]}
        return {"turns": run_conversation(graph, conv, context)}

    results = evaluate(target, data=examples, evaluators=langsmith_evaluators(catalog_checker(services)),
                       experiment_prefix="agent-conversations", client=client, max_concurrency=0,
                       metadata=run_settings(settings, context))  # fmt: skip
    scores: dict[str, list[float]] = {}
    for row in results:
        for er in row["evaluation_results"]["results"]:
            if er.score is not None:
                scores.setdefault(er.key, []).append(float(er.score))
    if not flush(client, FLUSH_TIMEOUT_S):
        log.warning("LangSmith upload incomplete after %.0f s", FLUSH_TIMEOUT_S)
    return {"dataset": name, "experiment": results.experiment_name,
            **{key: round(sum(v) / len(v), 4) for key, v in scores.items()}}  # fmt: skip


# ---------------------------------------------------------------- CLI


def run_settings(settings: Settings, context: Context) -> dict[str, Any]:
    """What the run used: strategy and models."""
    return {"strategy": context.strategy or settings.product_search_strategy,
            "embedding_model": settings.embedding_model,
            "chat_model": settings.ollama_chat_model if settings.llm_enabled else "offline"}  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--conversations", type=Path, default=PROJECT_ROOT / "data" / "eval" / "conversations.jsonl")
    p.add_argument("--output", type=Path, help="write the JSON report here")
    p.add_argument("--strategy", choices=STRATEGIES, help="default: PRODUCT_SEARCH_STRATEGY")
    p.add_argument("--no-langsmith", action="store_true", help="don't record a LangSmith experiment")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Evaluate, print the table, write the report (and the experiment)."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    conversations = load_conversations(args.conversations)
    services = build_services(settings)
    context = Context(strategy=args.strategy)
    try:
        report = evaluate_local(services, conversations, context)
        report["settings"] = run_settings(settings, context)
        if settings.langsmith_api_key is not None and not args.no_langsmith:
            report["langsmith"] = record_experiment(settings, services, conversations, context)
    finally:
        services.close()
    print(to_table(report))  # noqa: T201 - the script's result
    if args.output:
        args.output.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
        print(f"report written to {args.output}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
