"""Two turns on a REAL model: llama.cpp's `llama-server` serving Qwen2.5-Coder (from the cache `make llm` fills),
driven through the graph by the real ChatOpenAI client, searching the real catalog slice.

Runs whenever the built server and a model are in the cache (`~/.cache/shopagent`, or $SHOPAGENT_CACHE_DIR), and
skips otherwise: building llama.cpp takes 10-40 min on 2 cores, too long for a test run, so nothing here builds.
Asserts structure, not wording: a valid tool call, products from the catalog, an answer grounded in them (the
model's own, or, when it isn't usable, the offline rendering with the reason given).
"""

from __future__ import annotations

import dataclasses
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from agent.context import Context
from agent.deps import AgentDeps
from agent.graph import build_graph
from shopagent import grounding, llm_server
from shopagent.services import Services

# The smaller model first: a turn takes ~2x less than with the 1.5B on a busy 2-core machine.
PREFERRED: tuple[llm_server.ModelName, ...] = ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")


def cached_model() -> llm_server.ModelName | None:
    """The first preferred model whose GGUF is cached next to a built llama-server (None: nothing usable)."""
    cache = llm_server.cache_dir()
    if not llm_server.server_binary_path(cache).exists():
        return None
    return next((m for m in PREFERRED if (cache / "models" / llm_server.MODELS[m].filename).exists()), None)


MODEL = cached_model()
pytestmark = [
    pytest.mark.real_llm,
    pytest.mark.slow,
    pytest.mark.skipif(
        MODEL is None,
        reason="no built llama-server + Qwen2.5-Coder model in the cache: run `make llm` (or `shopagent llm-serve "
        "--prepare-only`) once to build them (10-40 min; CI does not build llama.cpp)",
    ),
]


@pytest.fixture(scope="module")
def real_server() -> Iterator[llm_server.ServerHandle]:
    """llama-server on a free port (1 thread: faster than 2 on a shared 2-core machine); stopped afterwards."""
    assert MODEL is not None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    with llm_server.serve(MODEL, port=port, ctx_size=4096, threads=1) as server:
        yield server
    assert server.process.poll() is not None


def check_turn(state: dict[str, Any], services: Services, screen_before: list[dict[str, Any]]) -> None:
    """A turn's structure: either the LLM answered or the fallback is given with its reason; every product shown is
    in the catalog; the final answer is grounded in the turn's products and the screen before it."""
    assert state["brain"] == "llm" or (state["llm_fallback"] and state["llm_fallback_reason"]), state
    shown = [p["product_id"] for p in state.get("shown") or []]
    assert {p["product_id"] for p in services.search.lookup(shown)} == set(shown)
    result = state.get("result") or {}
    known = grounding.known_products([*screen_before, *(state.get("shown") or []), *(result.get("products") or [])])
    said = grounding.said_amounts(str(state["messages"][-2].content))
    assert grounding.problems(state["answer"], known, said) == [], state["answer"]


def test_two_turns_on_the_real_model(services: Services, real_server: llm_server.ServerHandle) -> None:
    """Turn 1: the model writes a call that is valid against an offered tool's schema (JSON in the content, as these
    models do); catalog products are shown, by the LLM's search or, after a visible fallback, by the offline brain;
    the answer is grounded. Turn 2 refers to the screen; its answer is grounded too, whichever brain wrote it.
    Which tool a small model picks is its quality, measured by `evaluate-agent --brain llm`, not asserted here."""
    update = {
        "llm_provider": "openai",
        "llm_base_url": real_server.openai_base_url,
        "llm_model": real_server.model,
        "llm_read_timeout_s": 240.0,
        "llm_turn_budget_s": 300.0,  # a busy 2-core machine: the budget is not under test here
        "llm_max_tokens": 200,
    }
    svc = dataclasses.replace(services, settings=services.settings.model_copy(update=update))
    graph = build_graph(InMemorySaver(), AgentDeps(svc))
    config = {"configurable": {"thread_id": uuid.uuid4().hex}}

    def send(message: str) -> dict[str, Any]:
        return graph.invoke({"messages": [HumanMessage(message)]}, config, context=Context())

    first = send("I'm looking for a water bottle for my toddler")
    calls = first["llm_calls"]
    assert calls and calls[0]["round"] == 1 and calls[0]["error"] is None, calls
    assert calls[0]["tool"] in AgentDeps(svc).tools, calls
    if calls[0]["tool"] == "search_products":
        assert calls[0]["args"].get("query"), calls
    assert first["shown"] and first["result"]["kind"] == "search"
    check_turn(first, services, [])

    second = send("tell me more about the second one")
    check_turn(second, services, first["shown"])
