"""The LLM brain with a scripted tool-calling chat model (no Ollama runs here), and the fallback to the
deterministic brain when a real ChatOllama points at a closed port."""

from __future__ import annotations

import dataclasses
import socket
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.checkpoint.memory import InMemorySaver

from agent.api import create_app
from agent.context import Context
from agent.deps import AgentDeps
from agent.graph import build_graph
from shopagent.services import Services


class ScriptedChatModel(BaseChatModel):
    """Replies from a script, in order, and records every prompt it was sent (what went over the wire)."""

    script: list[AIMessage]
    seen: list[list[BaseMessage]] = []
    bound_tools: list[str] = []

    @property
    def _llm_type(self) -> str:
        """LangChain's model type tag."""
        return "scripted"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChatModel:
        """Record the tool names (their schemas are what a real model would see)."""
        self.bound_tools = [t.name for t in tools]
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: Any = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """Next scripted reply."""
        self.seen.append(list(messages))
        return ChatResult(generations=[ChatGeneration(message=self.script.pop(0))])


def call(name: str, **args: Any) -> AIMessage:
    """An AI message with one tool call."""
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": f"call_{uuid.uuid4().hex[:6]}"}])


def test_llm_routes_with_tools_and_answers_from_results(services: Services) -> None:
    """Turn 1: the model searches (real tool, real DB) and answers; turn 2: it is shown the numbered list,
    asks for details of #2 by id, and the state keeps the list."""
    model = ScriptedChatModel(
        script=[call("search_products", query="tresemme shampoo", k=3), AIMessage("Here are 3 TRESemmé shampoos.")]
    )
    graph = build_graph(InMemorySaver(), AgentDeps(services, model))
    thread = {"configurable": {"thread_id": "llm-1"}}
    s = graph.invoke({"messages": [HumanMessage("I need tresemme shampoo")]}, thread, context=Context())
    assert s["brain"] == "llm" and s["answer"] == "Here are 3 TRESemmé shampoos."
    assert set(model.bound_tools) == {"search_products", "product_details", "similar_products", "compare_products"}
    assert len(s["shown"]) == 3 and s["search"].text == "tresemme shampoo" and s["result"]["strategy"] == "hybrid"
    tool_msg = next(m for m in model.seen[1] if isinstance(m, ToolMessage))
    assert s["shown"][0]["product_id"] in tool_msg.content  # the model saw the real results

    second = s["shown"][1]
    model.script = [call("product_details", product_ids=[second["product_id"]]), AIMessage("It costs ...")]
    s = graph.invoke({"messages": [HumanMessage("tell me about the second one")]}, thread, context=Context())
    system = model.seen[2][0]
    assert isinstance(system, SystemMessage) and f"2. {second['product_id']} | {second['name']}" in system.content
    assert s["answer"] == "It costs ..." and s["shown"][1] == second
    assert [m.content for m in model.seen[2] if isinstance(m, HumanMessage)][-1] == "tell me about the second one"


def test_use_llm_false_in_context_skips_the_model(services: Services) -> None:
    """Context.use_llm=False runs the deterministic brain even when a model is configured."""
    model = ScriptedChatModel(script=[])
    graph = build_graph(InMemorySaver(), AgentDeps(services, model))
    s = graph.invoke(
        {"messages": [HumanMessage("ugg slippers")]},
        {"configurable": {"thread_id": "x"}},
        context=Context(use_llm=False),
    )
    assert s["brain"] == "rules" and s["shown"] and model.seen == []


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_ollama_falls_back(services: Services, closed_port: int) -> None:
    """Settings with OLLAMA_* at a closed port: real ChatOllama fails fast, the turn is answered by the
    rules brain, and the reason is in the state and the API response."""
    ollama = {"ollama_base_url": f"http://127.0.0.1:{closed_port}", "ollama_chat_model": "llama3.2"}
    settings = services.settings.model_copy(update={**ollama, "ollama_timeout_s": 2.0})
    assert settings.llm_enabled
    svc = dataclasses.replace(services, settings=settings)
    deps = AgentDeps(svc)
    assert type(deps.chat_model).__name__ == "ChatOllama"
    graph = build_graph(InMemorySaver(), deps)
    s = graph.invoke(
        {"messages": [HumanMessage("ugg slippers")]}, {"configurable": {"thread_id": "y"}}, context=Context()
    )
    assert s["brain"] == "rules" and "ConnectError" in s["llm_fallback_reason"]
    assert s["shown"] and "language model is unavailable" in s["answer"]

    with TestClient(create_app(services=svc)) as client:
        body = client.post("/api/v1/chat/message", json={"user_id": "u-llm", "message": "tresemme shampoo"}).json()
        assert body["brain"] == "rules" and "ConnectError" in body["llm_fallback_reason"] and body["products"]
        health = client.get("/health").json()
        assert health["llm"]["status"] == "down" and health["status"] == "degraded"
