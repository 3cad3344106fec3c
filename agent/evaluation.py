"""Run whole conversations through the real graph (in-memory checkpointer) and score them with the evaluators
of `shopagent.evals.conversations`; optionally record the run as a LangSmith experiment. Behind
`shopagent evaluate-agent`."""

from __future__ import annotations

import time
import uuid
from typing import Any, cast

import langsmith
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph.state import CompiledStateGraph
from tqdm import tqdm

from agent import prompts
from agent.api.chat import turn_products
from agent.context import Context
from agent.deps import AgentDeps
from agent.graph import build_graph
from agent.state import InputState, State, TurnResult, checkpoint_serde
from shopagent import grounding
from shopagent.db import catalog
from shopagent.domain import ProductView
from shopagent.evals.conversations import (
    EVALUATORS,
    KnownIds,
    action,
    brain_summary,
    langsmith_evaluators,
    mean,
    score_conversation,
)
from shopagent.evals.experiments import record_conversation_experiment
from shopagent.services import Services
from shopagent.settings import Settings

AgentGraph = CompiledStateGraph[State, Context, InputState, State]


def make_graph(services: Services, context: Context) -> AgentGraph:
    """The agent over `services`, with an in-memory checkpointer (conversations are not kept); a chat model the
    run uses is warmed up first, so the first turn is not measured with a cold prompt cache."""
    deps = AgentDeps(services)
    if context.use_llm:
        deps.warm_up_llm()
    return build_graph(InMemorySaver(serde=checkpoint_serde()), deps)


def quoted_amounts(products: list[ProductView]) -> list[float]:
    """Amounts written in the catalog's own text of these products (a details answer quotes "up to a $219
    value" from a bullet point): not prices the agent made up."""
    texts = [t for p in products for t in [*(p.get("highlights") or []), p.get("description") or ""] if t]
    return sorted({a for text in texts for a in grounding.said_amounts(text)})


def run_conversation(graph: AgentGraph, conversation: dict[str, Any], context: Context) -> list[dict[str, Any]]:
    """Send each turn in one fresh thread; what each answer showed and said, which brain wrote it, how long the
    turn took, and the products it knew (its results and the screen before it: what the answer may cite)."""
    config: RunnableConfig = {"configurable": {"thread_id": f"eval-{conversation['id']}-{uuid.uuid4().hex[:8]}"}}
    turns = []
    screen: list[ProductView] = []
    for turn in conversation["turns"]:
        started = time.perf_counter()
        state = cast(State, graph.invoke({"messages": [HumanMessage(turn["message"])]}, config, context=context))
        latency = time.perf_counter() - started
        answer = state.get("answer") or ""
        result = state.get("result") or TurnResult()
        shown = turn_products(state)
        known = [*screen, *shown, *(result.get("products") or []), *([result["source"]] if "source" in result else [])]
        screen = list(state.get("shown") or [])
        turns.append(
            {
                "message": turn["message"],
                "intent": state.get("intent"),
                "language": state.get("language"),
                "answer": answer,
                "shown_ids": [p["product_id"] for p in shown],
                "shown_names": [p.get("name") or "" for p in shown] + [p.get("brand") or "" for p in shown],
                "result_ids": [p["product_id"] for p in result.get("products") or []],
                "brain": state.get("brain"),
                "action": action(result.get("kind")),
                "llm_fallback": state.get("llm_fallback"),
                "llm_fallback_reason": state.get("llm_fallback_reason"),
                "llm_calls": state.get("llm_calls") or [],
                "latency_s": round(latency, 3),
                "known_products": [
                    {"product_id": p["product_id"], "name": p["name"], "price": p.get("price")} for p in known
                ],
                "quoted_amounts": quoted_amounts(known),
                "fixed_texts": [t for t in prompts.fixed_texts(state.get("language") or "en") if t in answer],
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
    graph, known = make_graph(services, context), catalog_checker(services)
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
    summary["brain"] = brain_summary(rows)
    return {"summary": summary, "conversations": per_conversation, "turns": rows}


def run_settings(settings: Settings, services: Services, context: Context) -> dict[str, Any]:
    """What the run used: strategy, models and the LLM brain's limits."""
    llm = settings.llm_enabled and context.use_llm
    out: dict[str, Any] = {
        "strategy": context.strategy or settings.product_search_strategy,
        "embedding_model": services.embedding_model,
        "brain": "llm" if llm else "offline",
        "chat_model": settings.llm_model if llm else "offline",
    }
    if llm:
        out.update(
            llm_provider=settings.llm_provider,
            llm_base_url=settings.llm_url,
            llm_turn_budget_s=settings.llm_turn_budget_s,
            llm_read_timeout_s=settings.llm_read_timeout_s,
            llm_max_tokens=settings.llm_max_tokens,
            llm_stream=settings.llm_stream,
            llm_tool_rounds=settings.llm_tool_rounds,
        )
    return out


def record_experiment(
    settings: Settings, services: Services, conversations: list[dict[str, Any]], context: Context
) -> dict[str, Any]:
    """Upload the conversations as a dataset (once) and run them as an experiment; names and mean scores."""
    graph = make_graph(services, context)

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
