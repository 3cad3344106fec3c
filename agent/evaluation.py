"""Run whole conversations through the real graph (in-memory checkpointer) and score them with the evaluators
of `shopagent.evals.conversations`; optionally record the run as a LangSmith experiment. Behind
`shopagent evaluate-agent`."""

from __future__ import annotations

import uuid
from typing import Any, cast

import langsmith
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph.state import CompiledStateGraph
from tqdm import tqdm

from agent.api.chat import turn_products
from agent.context import Context
from agent.deps import AgentDeps
from agent.graph import build_graph
from agent.state import InputState, State, TurnResult
from shopagent.db import catalog
from shopagent.evals.conversations import EVALUATORS, KnownIds, langsmith_evaluators, mean, score_conversation
from shopagent.evals.experiments import record_conversation_experiment
from shopagent.services import Services
from shopagent.settings import Settings

AgentGraph = CompiledStateGraph[State, Context, InputState, State]


def make_graph(services: Services) -> AgentGraph:
    """The agent over `services`, with an in-memory checkpointer (conversations are not kept)."""
    return build_graph(InMemorySaver(), AgentDeps(services))


def run_conversation(graph: AgentGraph, conversation: dict[str, Any], context: Context) -> list[dict[str, Any]]:
    """Send each turn in one fresh thread; what each answer showed and said."""
    config: RunnableConfig = {"configurable": {"thread_id": f"eval-{conversation['id']}-{uuid.uuid4().hex[:8]}"}}
    turns = []
    for turn in conversation["turns"]:
        state = cast(State, graph.invoke({"messages": [HumanMessage(turn["message"])]}, config, context=context))
        result = state.get("result") or TurnResult()
        shown = turn_products(state)
        turns.append(
            {
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
                "filters": result.get("filters") or {},
            }
        )
    return turns


def catalog_checker(services: Services) -> KnownIds:
    """Which of some product ids exist in the catalog (PostgreSQL)."""

    def known(ids: list[str]) -> set[str]:
        """The subset of `ids` that are catalog products."""
        if services.pool is None:
            raise RuntimeError("the hallucination check needs the database")
        with services.pool.connection() as conn:
            return {row["id"] for row in catalog.get_products(conn, ids)}

    return known


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
            rows.append(
                {
                    "conversation": conv["id"],
                    "turn": i + 1,
                    "language": conv["language"],
                    "expected_intent": expected,
                    **t,
                    **s,
                }
            )
        per_conversation[conv["id"]] = {key: mean(s[key] for s in scores) for key in EVALUATORS}
    summary: dict[str, Any] = {key: mean(r[key] for r in rows) for key in EVALUATORS}
    summary["turns_scored"] = {key: sum(r[key] is not None for r in rows) for key in EVALUATORS}
    summary["conversations"] = len(conversations)
    summary["turns"] = len(rows)
    return {"summary": summary, "conversations": per_conversation, "turns": rows}


def run_settings(settings: Settings, services: Services, context: Context) -> dict[str, Any]:
    """What the run used: strategy and models."""
    return {
        "strategy": context.strategy or settings.product_search_strategy,
        "embedding_model": services.embedding_model,
        "chat_model": settings.llm_model if settings.llm_enabled else "offline",
    }


def record_experiment(
    settings: Settings, services: Services, conversations: list[dict[str, Any]], context: Context
) -> dict[str, Any]:
    """Upload the conversations as a dataset (once) and run them as an experiment; names and mean scores."""
    graph = make_graph(services)

    def target(inputs: dict[str, Any]) -> dict[str, Any]:
        """Run one conversation through the agent (its graph runs are traced under this run)."""
        conv = {"id": inputs["id"], "turns": [{"message": m} for m in inputs["messages"]]}
        return {"turns": run_conversation(graph, conv, context)}

    return record_conversation_experiment(
        settings,
        conversations,
        target,
        langsmith_evaluators(catalog_checker(services)),
        run_settings(settings, services, context),
    )
