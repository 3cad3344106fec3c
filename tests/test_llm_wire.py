"""The real `ChatOllama` and `ChatOpenAI` clients against the scripted wire-format server (tests/llm_wire.py):
invoke and stream, native tool calls parsed into `AIMessage.tool_calls`, JSON-in-content left as content,
malformed calls, HTTP errors, and client timeouts that fire within their bound. No model runs here."""

from __future__ import annotations

import functools
import json
import time
from typing import Any, cast

import httpx
import llm_wire as wire_module
import openai
import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_ollama import ChatOllama
from langchain_openai import ChatOpenAI
from llm_wire import (
    OLLAMA_MODEL,
    OPENAI_MODEL,
    Reply,
    WireServer,
    delayed,
    http_error,
    json_in_content,
    malformed_call,
    qwen_pretty,
    text,
    tool_call,
    tool_calls,
)

from shopagent.services import Services
from tools import make_tools

llm_wire_server = wire_module.llm_wire_server  # the shared fixtures
llm_wire = wire_module.llm_wire

# The product's own tools, as `bind_tools` sends them; they are never run here, so no services are needed.
TOOLS = [t for t in make_tools(cast(Services, None)) if t.name in ("search_products", "compare_products")]
PROMPT: list[BaseMessage] = [SystemMessage("You are a shopping assistant."),
                             HumanMessage("I want running shoes under 80 dollars")]  # fmt: skip
ARGS = {"query": "running shoes", "max_price": 80}
# Verbatim `content` from llama-server for "I want running shoes under 80 dollars" (docs/llm-measurements.md).
SEEN_1_5B = '```json\n{\n  "name": "search_products",\n  "arguments": {\n    "query": "running shoes",\n    "max_price": 80,\n    "k": 5\n  }\n}\n```'  # noqa: E501
SEEN_0_5B_BARE = '{"name": "search_products", "arguments": {"query": "toddler water bottle without a straw", "max_price": null, "min_price": null, "brands": ["Nike Revolution 6 Running Shoe", "ASICS Gel-Contend 7 Running Shoe", "Brooks Ghost 14"], "colors": ["black", "white"], "exclude_terms": ["straw"], "in_stock": true, "k": 5}}'  # noqa: E501


def ollama(server: WireServer, timeout: float = 5.0) -> ChatOllama:
    """ChatOllama at the scripted server, with a bounded client timeout (one per timeout: each new ChatOllama
    builds two HTTP clients with TLS contexts, ~0.3 s apiece on a busy 2-core machine)."""
    return _ollama(server.base_url, timeout)


@functools.cache
def _ollama(base_url: str, timeout: float) -> ChatOllama:
    return ChatOllama(base_url=base_url, model=OLLAMA_MODEL, temperature=0, client_kwargs={"timeout": timeout})


def openai_chat(server: WireServer, timeout: float = 5.0, **kw: Any) -> ChatOpenAI:
    """ChatOpenAI at the scripted server (as at llama-server), no retries so errors surface at once."""
    return ChatOpenAI(base_url=server.openai_base_url, api_key="none", model=OPENAI_MODEL,  # type: ignore[arg-type]
                      temperature=0, timeout=timeout, max_retries=0, **kw)  # fmt: skip


def streamed(model: Any, messages: list[BaseMessage]) -> AIMessageChunk:
    """All chunks of `model.stream(messages)` added up (how a caller assembles a streamed reply)."""
    total: AIMessageChunk | None = None
    for chunk in model.stream(messages):
        total = chunk if total is None else total + chunk
    assert total is not None
    return total


def test_json_in_content_reproduces_what_the_models_wrote() -> None:
    """The scripted shapes are byte-for-byte what Qwen2.5-Coder wrote through llama-server."""
    assert json_in_content("search_products", {"query": "running shoes", "max_price": 80, "k": 5}).content == SEEN_1_5B
    seen = json.loads(SEEN_0_5B_BARE)
    assert json_in_content("search_products", seen["arguments"], "bare").content == SEEN_0_5B_BARE
    assert (
        qwen_pretty({"a": {"b": ["x", "y"], "c": None}}) == '{\n  "a": {\n    "b": ["x", "y"],\n    "c": null\n  }\n}'
    )


# ---------------------------------------------------------------- Ollama


def test_ollama_text_invoke_streams_by_default_and_validates_the_model(llm_wire: WireServer) -> None:
    """ChatOllama.invoke streams NDJSON under the hood; validate_model_on_init reads /api/tags."""
    llm_wire.script(text("Hello shopper! Here are some shoes."))
    model = ChatOllama(base_url=llm_wire.base_url, model=OLLAMA_MODEL, validate_model_on_init=True)
    reply = model.invoke(PROMPT)
    assert reply.content == "Hello shopper! Here are some shoes."
    assert reply.usage_metadata and reply.usage_metadata["input_tokens"] == 42
    assert [r.path for r in llm_wire.requests] == ["/api/tags", "/api/chat"]
    sent = llm_wire.chat_requests()[0]
    assert sent.streamed and sent.tools_offered == []
    assert [m["role"] for m in sent.body["messages"]] == ["system", "user"]


def test_ollama_unknown_model_fails_validation(llm_wire: WireServer) -> None:
    """A model missing from /api/tags fails at construction (what validate_model_on_init is for)."""
    with pytest.raises(ValueError, match="not found in Ollama"):
        ChatOllama(base_url=llm_wire.base_url, model="llama3.2", validate_model_on_init=True)


def test_ollama_non_streamed_request(llm_wire: WireServer) -> None:
    """`stream=False` gets one JSON object with `done: true`."""
    llm_wire.script(text("one piece"))
    reply = ollama(llm_wire).invoke(PROMPT, stream=False)
    assert reply.content == "one piece" and not llm_wire.chat_requests()[0].streamed


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_ollama_native_tool_calls(llm_wire: WireServer, stream: bool) -> None:
    """Tool calls arrive as `message.tool_calls` with object arguments and parse into AIMessage.tool_calls."""
    llm_wire.script(tool_calls(("search_products", ARGS), ("compare_products", {"product_ids": ["B1", "B2"]})))
    bound = ollama(llm_wire).bind_tools(TOOLS)
    reply = streamed(bound, PROMPT) if stream else bound.invoke(PROMPT)
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [
        ("search_products", ARGS), ("compare_products", {"product_ids": ["B1", "B2"]})]  # fmt: skip
    assert all(c["id"] for c in reply.tool_calls)
    assert llm_wire.chat_requests()[0].tools_offered == ["search_products", "compare_products"]


@pytest.mark.parametrize("shape", ["bare", "fenced", "tagged", "list"])
def test_ollama_json_in_content_is_content(llm_wire: WireServer, shape: Any) -> None:
    """A call written as JSON text is not a tool call for the client: it arrives as content."""
    reply_spec = json_in_content("search_products", ARGS, shape)
    llm_wire.script(reply_spec)
    reply = ollama(llm_wire).bind_tools(TOOLS).invoke(PROMPT)
    assert reply.tool_calls == [] and reply.content == reply_spec.content
    assert "search_products" in str(reply.content)


def test_ollama_malformed_arguments_raise(llm_wire: WireServer) -> None:
    """Arguments that are neither an object nor JSON make the client raise (no silent empty call)."""
    llm_wire.script(malformed_call())
    with pytest.raises(Exception) as err:
        ollama(llm_wire).bind_tools(TOOLS).invoke(PROMPT)
    assert "arguments" in str(err.value).lower() or "function" in str(err.value).lower()


def test_ollama_http_error(llm_wire: WireServer) -> None:
    """An HTTP error with Ollama's `{"error": ...}` body raises ollama.ResponseError with the status."""
    import ollama as ollama_client

    llm_wire.script(http_error(404, "model 'qwen2.5-coder:1.5b' not found"))
    with pytest.raises(ollama_client.ResponseError) as err:
        ollama(llm_wire).invoke(PROMPT)
    assert err.value.status_code == 404 and "not found" in err.value.error


def test_ollama_timeout_within_bound(llm_wire: WireServer) -> None:
    """A server that doesn't answer in time trips the client timeout (httpx.ReadTimeout), not a hang."""
    llm_wire.script(delayed(5.0))
    started = time.monotonic()
    with pytest.raises(httpx.TimeoutException):
        ollama(llm_wire, timeout=0.5).invoke(PROMPT)
    assert time.monotonic() - started < 1.5


def test_ollama_tool_result_round_trip(llm_wire: WireServer) -> None:
    """Second call: the tool result goes back as role "tool"; tools offered again when still bound."""
    llm_wire.script(tool_call("search_products", **ARGS), text("Found 2 shoes."), text("Found 2 shoes."))
    model = ollama(llm_wire)
    first = model.bind_tools(TOOLS).invoke(PROMPT)
    assert isinstance(first, AIMessage)
    result = ToolMessage(
        json.dumps({"status": "ok", "products": [{"name": "Shoe"}]}), tool_call_id=first.tool_calls[0]["id"]
    )
    convo = [*PROMPT, first, result]
    assert model.bind_tools(TOOLS).invoke(convo).content == "Found 2 shoes."
    assert model.invoke(convo).content == "Found 2 shoes."
    _, with_tools, without_tools = llm_wire.chat_requests()
    assert with_tools.tools_offered and not without_tools.tools_offered
    sent = with_tools.body["messages"]
    assert sent[2]["tool_calls"][0]["function"] == {"name": "search_products", "arguments": ARGS}
    assert sent[3]["role"] == "tool" and "Shoe" in sent[3]["content"]


# ---------------------------------------------------------------- OpenAI-compatible (llama-server)


def test_openai_models_health_and_timings(llm_wire: WireServer) -> None:
    """`GET /v1/models` through the openai client; `/health` and the `timings` object as llama-server sends them."""
    client = openai.OpenAI(base_url=llm_wire.openai_base_url, api_key="none", max_retries=0)
    assert [m.id for m in client.models.list()] == [OPENAI_MODEL]
    assert httpx.get(f"{llm_wire.base_url}/health").json() == {"status": "ok"}
    llm_wire.script(text("hi"))
    raw = httpx.post(f"{llm_wire.openai_base_url}/chat/completions", json={"messages": []}).json()
    assert raw["timings"]["predicted_n"] == 7 and raw["choices"][0]["message"]["content"] == "hi"


def test_openai_reply_cut_at_max_tokens(llm_wire: WireServer) -> None:
    """A reply cut at max_tokens (the 0.5B model looping on its own call) reports finish_reason "length"."""
    llm_wire.script(Reply(content=SEEN_0_5B_BARE[:120], finish_reason="length"))
    reply = openai_chat(llm_wire).bind_tools(TOOLS).invoke(PROMPT)
    assert reply.response_metadata["finish_reason"] == "length" and reply.tool_calls == []


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_openai_text(llm_wire: WireServer, stream: bool) -> None:
    """Plain text, non-streamed (one chat.completion) and streamed (SSE chunks, then [DONE])."""
    llm_wire.script(text("Aquí tienes audífonos inalámbricos."))
    model = openai_chat(llm_wire, stream_usage=True)
    reply = streamed(model, PROMPT) if stream else model.invoke(PROMPT)
    assert reply.content == "Aquí tienes audífonos inalámbricos."
    assert reply.usage_metadata and reply.usage_metadata["total_tokens"] == 49
    sent = llm_wire.chat_requests()[0]
    assert sent.streamed == stream and sent.body["model"] == OPENAI_MODEL


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_openai_native_tool_calls(llm_wire: WireServer, stream: bool) -> None:
    """Native calls (streamed as index/id/name then argument fragments) parse into AIMessage.tool_calls."""
    llm_wire.script(tool_calls(("search_products", ARGS), ("compare_products", {"product_ids": ["B1", "B2"]})))
    bound = openai_chat(llm_wire).bind_tools(TOOLS)
    reply = streamed(bound, PROMPT) if stream else bound.invoke(PROMPT)
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [
        ("search_products", ARGS), ("compare_products", {"product_ids": ["B1", "B2"]})]  # fmt: skip
    assert all((c["id"] or "").startswith("call_") for c in reply.tool_calls)
    assert llm_wire.chat_requests()[0].tools_offered == ["search_products", "compare_products"]


@pytest.mark.parametrize("shape", ["bare", "bare_lines", "fenced", "tagged", "list", "fenced_list"])
@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_openai_json_in_content_is_content(llm_wire: WireServer, shape: Any, stream: bool) -> None:
    """The Qwen-Coder shape: the call is JSON text in `content`; the client sees no tool call."""
    reply_spec = json_in_content("search_products", ARGS, shape)
    llm_wire.script(reply_spec)
    bound = openai_chat(llm_wire).bind_tools(TOOLS)
    reply = streamed(bound, PROMPT) if stream else bound.invoke(PROMPT)
    assert reply.tool_calls == [] and reply.content == reply_spec.content


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_openai_malformed_call_is_an_invalid_tool_call(llm_wire: WireServer, stream: bool) -> None:
    """Arguments that aren't JSON become `invalid_tool_calls` (the turn must not run a tool on them)."""
    llm_wire.script(malformed_call(raw_arguments="query=running shoes; max_price=80"))
    bound = openai_chat(llm_wire).bind_tools(TOOLS)
    reply = streamed(bound, PROMPT) if stream else bound.invoke(PROMPT)
    assert reply.tool_calls == []
    assert [(c["name"], c["args"]) for c in reply.invalid_tool_calls] == [
        ("search_products", "query=running shoes; max_price=80")]  # fmt: skip


def test_openai_truncated_arguments_invalid_when_invoked_but_repaired_when_streamed(llm_wire: WireServer) -> None:
    """Truncated JSON arguments: invoke gives an invalid tool call, but streaming's partial-JSON parser closes
    the object and yields a *valid* call with the cut-off argument silently dropped."""
    truncated = '{"query": "running shoes", "max_price": '
    llm_wire.script(malformed_call(raw_arguments=truncated), malformed_call(raw_arguments=truncated))
    bound = openai_chat(llm_wire).bind_tools(TOOLS)
    invoked = bound.invoke(PROMPT)
    assert invoked.tool_calls == [] and invoked.invalid_tool_calls[0]["args"] == truncated
    stream = streamed(bound, PROMPT)
    assert [(c["name"], c["args"]) for c in stream.tool_calls] == [("search_products", {"query": "running shoes"})]


@pytest.mark.parametrize("status, exc", [(500, openai.InternalServerError), (400, openai.BadRequestError)])
def test_openai_http_error(llm_wire: WireServer, status: int, exc: type[Exception]) -> None:
    """llama-server's error body `{"error": {"code", "message", "type"}}` raises the matching openai error."""
    llm_wire.script(http_error(status, "the request exceeds the available context size"))
    with pytest.raises(exc, match="context size"):
        openai_chat(llm_wire).invoke(PROMPT)


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_openai_timeout_within_bound(llm_wire: WireServer, stream: bool) -> None:
    """With max_retries=0 the configured timeout is the bound (default retries would multiply it)."""
    llm_wire.script(delayed(5.0))
    model = openai_chat(llm_wire, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        streamed(model, PROMPT) if stream else model.invoke(PROMPT)
    assert time.monotonic() - started < 1.5


def test_openai_tool_result_round_trip(llm_wire: WireServer) -> None:
    """Second call: the assistant's call and the tool result (role "tool", same id) go back; tools are
    offered again only while bound."""
    llm_wire.script(tool_call("search_products", **ARGS), text("Found 2 shoes."), text("Found 2 shoes."))
    model = openai_chat(llm_wire)
    first = model.bind_tools(TOOLS).invoke(PROMPT)
    assert isinstance(first, AIMessage)
    call_id = first.tool_calls[0]["id"]
    convo = [
        *PROMPT,
        first,
        ToolMessage(json.dumps({"status": "ok", "products": [{"name": "Shoe"}]}), tool_call_id=call_id),
    ]
    assert model.bind_tools(TOOLS).invoke(convo).content == "Found 2 shoes."
    assert model.invoke(convo).content == "Found 2 shoes."
    _, with_tools, without_tools = llm_wire.chat_requests()
    assert with_tools.tools_offered == ["search_products", "compare_products"] and not without_tools.tools_offered
    sent = with_tools.body["messages"]
    assert sent[2]["tool_calls"][0]["id"] == call_id
    assert json.loads(sent[2]["tool_calls"][0]["function"]["arguments"]) == ARGS
    assert (
        sent[3] == {"role": "tool", "tool_call_id": call_id, "content": sent[3]["content"]}
        and "Shoe" in sent[3]["content"]
    )


def test_unscripted_request_is_an_error(llm_wire: WireServer) -> None:
    """Nothing scripted: HTTP 500, so a test can't pass on a reply it didn't script."""
    with pytest.raises(openai.InternalServerError, match="no scripted reply"):
        openai_chat(llm_wire).invoke(PROMPT)
