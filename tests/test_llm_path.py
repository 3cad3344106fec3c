"""The LLM brain through the GRAPH with the real `ChatOllama` and `ChatOpenAI` clients, built from the settings,
talking to the scripted wire-format server (tests/llm_wire.py) and searching the real catalog slice.

Native tool calls and calls written as JSON in the content (the Qwen2.5-Coder shapes), streamed and not; the
answer step sent without tools; and every failure mode falling back visibly: malformed call, client timeout,
turn budget, no answer, ungrounded answer (replaced by the offline rendering of the same results), unreachable
server (the API response says so, /health too)."""

from __future__ import annotations

import dataclasses
import json
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import llm_wire as wire_module
import pytest
from fastapi.testclient import TestClient
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from llm_wire import (
    OLLAMA_MODEL,
    OPENAI_MODEL,
    Reply,
    WireServer,
    delayed,
    json_in_content,
    malformed_call,
    text,
    tool_call,
)

from agent import prompts
from agent.api import create_app
from agent.context import Context
from agent.deps import AgentDeps
from agent.graph import build_graph
from agent.rendering import render
from shopagent import grounding
from shopagent.services import Services

llm_wire_server = wire_module.llm_wire_server  # the shared fixtures
llm_wire = wire_module.llm_wire

PROVIDERS = ["ollama", "openai"]
SEARCH = {"query": "kids water bottle", "k": 3}
TOOL_NAMES = ["search_products", "product_details", "similar_products", "compare_products"]
Turn = Callable[..., dict[str, Any]]


def llm_settings(services: Services, server: WireServer, provider: str, **overrides: Any) -> Services:
    """`services` with the LLM brain pointed at the wire server through the settings (as a deployment would)."""
    update = {
        "llm_provider": provider,
        "llm_base_url": server.base_url if provider == "ollama" else server.openai_base_url,
        "llm_model": OLLAMA_MODEL if provider == "ollama" else OPENAI_MODEL,
        "llm_read_timeout_s": 5.0,
        "llm_turn_budget_s": 20.0,
        **overrides,
    }
    return dataclasses.replace(services, settings=services.settings.model_copy(update=update))


@pytest.fixture(scope="module")
def graphs(services: Services, llm_wire_server: WireServer) -> Iterator[Callable[..., Any]]:
    """Graphs by (provider, settings overrides), each built once: a new client costs ~1 s on a busy machine."""
    built: dict[str, Any] = {}

    def get(provider: str, **overrides: Any) -> Any:
        key = json.dumps([provider, overrides], sort_keys=True)
        if key not in built:
            deps = AgentDeps(llm_settings(services, llm_wire_server, provider, **overrides))
            assert type(deps.chat_model).__name__ == {"ollama": "ChatOllama", "openai": "ChatOpenAI"}[provider]
            built[key] = build_graph(InMemorySaver(), deps)
        return built[key]

    yield get


def conversation(graph: Any) -> Turn:
    """Send messages in one fresh thread of `graph`; the final state of each turn."""
    config = {"configurable": {"thread_id": uuid.uuid4().hex}}

    def send(message: str, **context: Any) -> dict[str, Any]:
        return graph.invoke({"messages": [HumanMessage(message)]}, config, context=Context(**context))

    return send


@pytest.fixture(scope="module")
def found(services: Services) -> list[dict[str, Any]]:
    """What `search_products(SEARCH)` returns on the slice (the scripted answers quote it)."""
    products = AgentDeps(services).tools["search_products"].invoke(SEARCH)["products"]
    assert len(products) == 3 and any(p["price"] is not None for p in products)
    return products


def grounded_answer(products: list[dict[str, Any]]) -> str:
    """An answer quoting the results as a small model writes it."""
    listed = (f"{i}. {p['name']} - {prompts.price_text('en', p['price'])}" for i, p in enumerate(products, 1))
    return "I found these:\n" + "\n".join(listed)


def call_reply(fmt: str, name: str = "search_products", **args: Any) -> Reply:
    """A tool call, native or written in the content."""
    return tool_call(name, **args) if fmt == "native" else json_in_content(name, args, fmt)  # type: ignore[arg-type]


def assert_fell_back(state: dict[str, Any], kind: str, lang: str = "en") -> None:
    """The offline brain answered, said so, and the state says why."""
    assert state["brain"] == "rules" and state["llm_fallback"] == kind
    assert state["llm_fallback_reason"].startswith(f"{kind}: ")
    assert state["answer"].endswith(prompts.fallback_note(lang, kind))


@pytest.mark.parametrize("fmt", ["native", "fenced", "bare"])
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "invoke"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_tool_call_then_answer_without_tools(
    graphs: Callable[..., Any], llm_wire: WireServer, found: list[dict[str, Any]], provider: str, stream: bool, fmt: str
) -> None:
    """The model searches (native call or JSON in the content), the real tool runs on the catalog, the answer is
    asked for without tools and used because it is grounded in the results."""
    answer = grounded_answer(found)
    llm_wire.script(call_reply(fmt, **SEARCH), text(answer))
    s = conversation(graphs(provider, llm_stream=stream))("I want a water bottle for my kid")
    assert s["brain"] == "llm" and s["answer"] == answer and s["llm_fallback"] is None
    assert [p["product_id"] for p in s["shown"]] == [p["product_id"] for p in found]
    assert s["result"]["kind"] == "search" and s["search"].text
    fmt_recorded = "native" if fmt == "native" else f"json_{fmt}"
    assert [(c["tool"], c["format"], c["error"]) for c in s["llm_calls"]] == [("search_products", fmt_recorded, None)]
    first, second = llm_wire.chat_requests()
    assert first.tools_offered == TOOL_NAMES and second.tools_offered == []
    if provider == "openai":
        assert first.streamed == stream and second.streamed == stream
    sent = second.body["messages"]
    assert sent[-1]["role"] == "tool" and found[0]["product_id"] in sent[-1]["content"]
    assert sent[-2]["tool_calls"][0]["function"]["name"] == "search_products"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_second_turn_sees_the_screen_and_details_by_id(
    graphs: Callable[..., Any], llm_wire: WireServer, found: list[dict[str, Any]], provider: str
) -> None:
    """Turn 2: the turn's system message, right before the shopper's message, lists the products on screen by number
    and id (the fixed system prompt stays first, unchanged, for the server's prompt cache); the model asks for the
    details of #2 by id and answers with its name and price (grounded in the screen)."""
    send = conversation(graphs(provider))
    llm_wire.script(call_reply("fenced", **SEARCH), text(grounded_answer(found)))
    send("a water bottle for my kid")
    second = found[1]
    answer = f"The second one is {second['name']}, {prompts.price_text('en', second['price'])}."
    llm_wire.script(call_reply("fenced", "product_details", product_ids=[second["product_id"]]), text(answer))
    s = send("tell me about the second one")
    messages = llm_wire.chat_requests()[2].body["messages"]
    assert messages[0]["role"] == "system" and messages[0]["content"] == prompts.SYSTEM_PROMPT
    assert messages[-2]["role"] == "system" and messages[-1]["role"] == "user"
    assert f"2. {second['product_id']} | {second['name'][:60]}" in messages[-2]["content"]
    assert s["brain"] == "llm" and s["answer"] == answer and s["result"]["kind"] == "details"
    assert [p["product_id"] for p in s["shown"]] == [p["product_id"] for p in found]  # the screen is kept


@pytest.mark.parametrize("provider", PROVIDERS)
def test_text_answer_needs_no_tool(graphs: Callable[..., Any], llm_wire: WireServer, provider: str) -> None:
    """A greeting answered in words: one request, no tools run, the LLM's answer kept."""
    llm_wire.script(text("Hi! Tell me what you are looking for."))
    s = conversation(graphs(provider))("hi!")
    assert s["brain"] == "llm" and s["answer"] == "Hi! Tell me what you are looking for." and s["llm_calls"] == []
    assert len(llm_wire.chat_requests()) == 1


MALFORMED = {
    "unknown_tool": json_in_content("Gardening Gift", {"query": "gardening"}, "fenced"),
    "invalid_args": json_in_content("search_products", {"query": "slippers", "k": "many"}, "bare"),
    "not_json": malformed_call(raw_arguments="query=ugg slippers; k=3"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
@pytest.mark.parametrize("provider", PROVIDERS)
def test_malformed_call_falls_back_visibly(
    graphs: Callable[..., Any], llm_wire: WireServer, provider: str, case: str
) -> None:
    """A call naming no offered tool, with invalid arguments, or with arguments that aren't JSON is never run:
    the offline brain answers the turn (its own search) and says why."""
    llm_wire.script(MALFORMED[case])
    s = conversation(graphs(provider))("a water bottle for my kid")
    assert_fell_back(s, "malformed_call")
    assert s["shown"] and s["result"]["kind"] == "search" and len(llm_wire.chat_requests()) == 1
    if case != "not_json" or provider == "openai":  # Ollama's client itself rejects non-object arguments
        assert s["llm_calls"] and s["llm_calls"][0]["error"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_answer_step_calling_again_renders_the_results(
    graphs: Callable[..., Any], llm_wire: WireServer, found: list[dict[str, Any]], provider: str
) -> None:
    """Given the results (and no tools), the model writes its call again (the 0.5B does): no answer, so the
    offline brain renders the results the model fetched, without searching again."""
    llm_wire.script(call_reply("bare", **SEARCH), json_in_content("search_products", SEARCH, "bare_lines"))
    s = conversation(graphs(provider))("a water bottle for my kid")
    assert_fell_back(s, "no_answer")
    assert [p["product_id"] for p in s["shown"]] == [p["product_id"] for p in found]
    assert len(s["llm_calls"]) == 2 and s["llm_calls"][1]["round"] == 2


@pytest.mark.parametrize(
    ("message", "reply"),
    [
        ("a water bottle for my kid", "Sure! What color would you like?"),
        ("busco una botella de agua para niños", "No tengo productos disponibles para eso."),
    ],
)
def test_a_product_request_answered_without_searching_falls_back(
    graphs: Callable[..., Any], llm_wire: WireServer, message: str, reply: str
) -> None:
    """The small models answer "in black" or "I have nothing" without calling a tool: no tool result backs such an
    answer, so the offline brain searches and says the model's reply was not used."""
    llm_wire.script(text(reply))
    s = conversation(graphs("ollama"))(message)
    lang = "es" if message.startswith("busco") else "en"
    assert_fell_back(s, "no_search", lang)
    assert s["result"]["kind"] == "search" and s["shown"] and reply not in s["answer"]


@pytest.mark.parametrize(
    ("tool", "args"),
    [
        ("product_details", {"product_ids": ["B0NOTHERE1"]}),
        ("compare_products", {"product_ids": ["B0NOTHERE1", "B0NOTHERE2"]}),
        ("similar_products", {"product_id": "B0NOTHERE1"}),
    ],
)
def test_a_call_that_finds_nothing_lets_the_offline_brain_answer(
    graphs: Callable[..., Any], llm_wire: WireServer, found: list[dict[str, Any]], tool: str, args: dict[str, Any]
) -> None:
    """A first message that asks for products, answered by a small model with a call about products that are not on
    screen (the real 0.5B asked for the details of an invented id), then no usable answer: the offline brain
    searches for the message itself, and the fallback is visible."""
    llm_wire.script(call_reply("bare", tool, **args), json_in_content(tool, args, "bare_lines"))
    s = conversation(graphs("openai"))("a water bottle for my kid")
    assert_fell_back(s, "no_answer")
    assert s["result"]["kind"] == "search" and s["shown"]
    assert {p["product_id"] for p in s["shown"]} & {p["product_id"] for p in found}


@pytest.mark.parametrize(
    "invented", ["1. {name} - $12.34", "Try B0ZZZZZZZZ, the best one.", "1. Nike Air Zoom Pegasus 38 Running Shoe"]
)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_ungrounded_answer_is_replaced_by_the_offline_rendering(
    graphs: Callable[..., Any], llm_wire: WireServer, found: list[dict[str, Any]], provider: str, invented: str
) -> None:
    """An answer with a price, an id or a product that is not in the results is replaced by the offline rendering
    of the same results; the reason names what was invented."""
    llm_wire.script(call_reply("fenced", **SEARCH), text("Here you go:\n" + invented.format(name=found[0]["name"])))
    s = conversation(graphs(provider))("a water bottle for my kid")
    assert_fell_back(s, "ungrounded")
    assert any(word in s["llm_fallback_reason"] for word in ("$12.34", "B0ZZZZZZZZ", "Pegasus"))
    rendered = render(s["result"], s, "en")  # type: ignore[arg-type]
    assert s["answer"] == f"{rendered}\n{prompts.fallback_note('en', 'ungrounded')}"
    assert [p["product_id"] for p in s["shown"]] == [p["product_id"] for p in found]
    assert not grounding.problems(s["answer"], grounding.known_products(s["shown"]), [])


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "invoke"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_client_timeout_falls_back(
    graphs: Callable[..., Any], llm_wire: WireServer, provider: str, stream: bool
) -> None:
    """A server slower than the read timeout (no retries): a timeout fallback within the bound."""
    llm_wire.script(delayed(4.0))
    started = time.monotonic()
    s = conversation(graphs(provider, llm_read_timeout_s=0.5, llm_stream=stream))("a water bottle for my kid")
    assert_fell_back(s, "timeout")
    assert time.monotonic() - started < 3.5 and s["shown"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_turn_budget_bounds_the_turn(
    graphs: Callable[..., Any], llm_wire: WireServer, found: list[dict[str, Any]], provider: str
) -> None:
    """The answer step runs past the turn budget (the read timeout is far longer): the turn stops waiting when
    the budget is spent and the offline brain renders the results the model already fetched."""
    llm_wire.script(call_reply("fenced", **SEARCH), delayed(4.0, text("too late")))
    started = time.monotonic()
    s = conversation(graphs(provider, llm_turn_budget_s=1.5, llm_read_timeout_s=30.0))("a water bottle for my kid")
    elapsed = time.monotonic() - started
    assert_fell_back(s, "budget")
    assert elapsed < 3.5, elapsed
    assert [p["product_id"] for p in s["shown"]] == [p["product_id"] for p in found]


def test_use_llm_false_in_context_skips_the_model(graphs: Callable[..., Any], llm_wire: WireServer) -> None:
    """Context.use_llm=False runs the offline brain even when a model is configured."""
    s = conversation(graphs("openai"))("ugg slippers", use_llm=False)
    assert s["brain"] == "rules" and s["shown"] and s["llm_fallback"] is None and llm_wire.chat_requests() == []


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_server_falls_back_and_the_api_says_so(services: Services, closed_port: int) -> None:
    """The old OLLAMA_* names at a closed port: ChatOllama fails fast, the offline brain answers, and the
    response and /health say why (never a 5xx)."""
    old_names = {"ollama_base_url": f"http://127.0.0.1:{closed_port}", "llm_model": "llama3.2"}
    svc = dataclasses.replace(services, settings=services.settings.model_copy(update=old_names))
    assert svc.settings.llm_enabled and svc.settings.llm_url == old_names["ollama_base_url"]
    with TestClient(create_app(services=svc)) as client:
        r = client.post("/api/v1/chat/message", json={"user_id": "u-llm", "message": "tresemme shampoo"})
        body = r.json()
        assert r.status_code == 200 and body["brain"] == "rules" and body["products"]
        assert body["llm_fallback"] == "unavailable" and "ConnectError" in body["llm_fallback_reason"]
        assert "llm_unavailable" in body["notices"] and "language model is unavailable" in body["response"]
        health = client.get("/health").json()
        assert health["llm"]["status"] == "down" and health["status"] == "degraded"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_health_lists_the_model(services: Services, llm_wire: WireServer, provider: str) -> None:
    """/health asks the server's model list (Ollama /api/tags, OpenAI GET /v1/models): ok when the model is served,
    down (with what is served) when it is not."""
    deps = AgentDeps(llm_settings(services, llm_wire, provider))
    llm = deps.health()["llm"]
    assert llm["status"] == "ok" and llm["provider"] == provider and llm["detail"] == "model served"
    assert llm_wire.requests[-1].path == ("/api/tags" if provider == "ollama" else "/v1/models")
    other = AgentDeps(llm_settings(services, llm_wire, provider, llm_model="llama3.2")).health()["llm"]
    assert other["status"] == "down" and "not served" in other["detail"]
