"""Tool calls out of replies (native, or JSON in the content in the shapes small models write), validated against
the real product tools' schemas; the compact tool message; how client failures are classified. No network."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage
from langchain_core.tools import BaseTool
from llm_wire import json_in_content
from pydantic import BaseModel

from agent.llm.toolcalls import content_calls, is_data_dump, parse_reply, validate_args
from agent.llm.turn import failure_kind, tool_message
from tools.products import make_tools

# Verbatim contents from llama-server (docs/llm-measurements.md).
SEEN_1_5B = '```json\n{\n  "name": "search_products",\n  "arguments": {\n    "query": "running shoes",\n    "max_price": 80,\n    "k": 5\n  }\n}\n```'  # noqa: E501
SEEN_0_5B = '{"name": "search_products", "arguments": {"query": "toddler water bottle without a straw", "max_price": null, "min_price": null, "brands": ["Nike Revolution 6 Running Shoe"], "colors": ["black", "white"], "exclude_terms": ["straw"], "in_stock": true, "k": 5, "required": ["query"]}}'  # noqa: E501


@pytest.fixture(scope="module")
def tools() -> dict[str, BaseTool]:
    """The real tools (never invoked here: only their schemas are used)."""
    return {t.name: t for t in make_tools(None)}  # type: ignore[arg-type]


def reply(content: str = "", **kw: Any) -> AIMessage:
    """An AI message."""
    return AIMessage(content, **kw)


def test_what_the_models_wrote_is_a_valid_call(tools: dict[str, BaseTool]) -> None:
    """The 1.5B's fenced pretty call and the 0.5B's bare line with nulls and a key copied from the schema."""
    parsed = parse_reply(reply(SEEN_1_5B), tools)
    assert [(c.name, c.args, c.format, c.error) for c in parsed.calls] == [
        ("search_products", {"query": "running shoes", "max_price": 80, "k": 5}, "json_fenced", None)
    ]
    assert parsed.text == ""
    (call,) = parse_reply(reply(SEEN_0_5B), tools).calls
    assert call.error is None and call.format == "json_bare"
    assert "required" not in call.args and "max_price" not in call.args and call.args["exclude_terms"] == ["straw"]


@pytest.mark.parametrize("shape", ["bare", "bare_lines", "fenced", "tagged", "list", "fenced_list"])
def test_every_shape_gives_one_call(tools: dict[str, BaseTool], shape: Any) -> None:
    """Fenced, bare, repeated lines (deduplicated), tagged, lists: one call each."""
    content = json_in_content("search_products", {"query": "belts", "max_price": 30}, shape).content
    calls = parse_reply(reply(f"Sure! {content}"), tools).calls
    assert [(c.name, c.args, c.error) for c in calls] == [
        ("search_products", {"query": "belts", "max_price": 30}, None)
    ]


def test_openai_function_shape_and_string_arguments(tools: dict[str, BaseTool]) -> None:
    """`{"type": "function", "function": {"name", "arguments": "<json string>"}}` is a call too."""
    content = json.dumps(
        {"type": "function", "function": {"name": "product_details", "arguments": '{"product_ids": ["B0A"]}'}}
    )
    (call,) = content_calls(content)
    assert call[:2] == ("product_details", '{"product_ids": ["B0A"]}')
    assert parse_reply(reply(content), tools).calls[0].args == {"product_ids": ["B0A"]}


@pytest.mark.parametrize(
    ("name", "args", "error"),
    [
        ("Gardening Gift", {"query": "x"}, "unknown tool 'Gardening Gift'"),
        ("search_products", {"max_price": 30}, "invalid query"),
        ("search_products", {"query": "x", "k": "many"}, "invalid k"),
        ("compare_products", "not json", "not valid JSON"),
        ("compare_products", [1, 2], "not a JSON object"),
    ],
)
def test_invalid_calls_say_why(tools: dict[str, BaseTool], name: str, args: Any, error: str) -> None:
    """Unknown tools, missing or mistyped arguments, arguments that aren't an object."""
    got, why = validate_args(name, args, tools)
    assert got == {} and why is not None and error in why


def test_injected_arguments_never_come_from_the_model(tools: dict[str, BaseTool]) -> None:
    """`request` and `options` are the offline brain's injected arguments: dropped, not validated or passed."""
    args, error = validate_args("search_products", {"query": "x", "request": "DROP TABLE", "options": {}}, tools)
    assert error is None and args == {"query": "x"}


def test_native_calls_and_invalid_native_calls(tools: dict[str, BaseTool]) -> None:
    """Native calls are validated the same way; `invalid_tool_calls` (arguments not JSON) are errors."""
    ok = reply(tool_calls=[{"name": "similar_products", "args": {"product_id": "B0A", "k": 3}, "id": "c1"}])
    (call,) = parse_reply(ok, tools).calls
    assert (call.format, call.id, call.error) == ("native", "c1", None)
    bad = reply(invalid_tool_calls=[{"name": "search_products", "args": "query=x", "id": "c2", "error": None}])
    assert "not valid JSON" in (parse_reply(bad, tools).calls[0].error or "")


def test_a_call_cut_at_the_token_limit_is_not_run(tools: dict[str, BaseTool]) -> None:
    """finish_reason "length": a call that still parsed (streaming closes partial JSON) is an error."""
    cut = reply(tool_calls=[{"name": "search_products", "args": {"query": "x"}, "id": "c"}],
                response_metadata={"finish_reason": "length"})  # fmt: skip
    assert "cut at the token limit" in (parse_reply(cut, tools).calls[0].error or "")


@pytest.mark.parametrize(
    "content",
    ["Here are 3 products: 1. A - $5", "Prices are {min} to {max}.", '{"status": "ok", "products": [{"name": "x"}]}'],
)
def test_text_without_a_call_attempt_is_text(tools: dict[str, BaseTool], content: str) -> None:
    """Prose, braces that aren't JSON, and JSON without name+arguments (an echoed tool result) are text."""
    parsed = parse_reply(reply(content), tools)
    assert parsed.calls == [] and parsed.text == content


def test_data_dumps_are_not_answers() -> None:
    """An echoed tool result or a code block is not an answer for a shopper; prose with a number list is."""
    assert is_data_dump('{"status": "ok", "products": []}') and is_data_dump("```\nfoo\n```")
    assert not is_data_dump("I found 2: {a} and {b}") and not is_data_dump("1. Foo - $5")


def test_tool_message_is_compact() -> None:
    """Numbered products with id, name, brand, price; scores, reasons and figures left out."""
    product = {"product_id": "B0A", "name": "N" * 300, "brand": "Acme", "price": 9.5, "image_url": "http://x",
               "score": 0.1, "similarity": 0.5, "backend": "hybrid", "why": {"matched_terms": ["n"]}}  # fmt: skip
    result = {"status": "ok", "message": "1 products", "products": [product], "figures": {"latency_ms": 3},
              "filters": {"price_max": 10.0, "brands": []}, "strategy": "hybrid"}  # fmt: skip
    sent = json.loads(tool_message(result))  # type: ignore[arg-type]
    assert sent == {"status": "ok", "message": "1 products", "filters": {"price_max": 10.0},
                    "products": [{"n": 1, "product_id": "B0A", "name": "N" * 119 + "…", "brand": "Acme",
                                  "price": 9.5}]}  # fmt: skip


class _Invalid(BaseModel):
    x: int


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (httpx.ReadTimeout("slow"), "timeout"),
        (TimeoutError(), "timeout"),
        (httpx.ConnectError("refused"), "unavailable"),
        (RuntimeError("500"), "unavailable"),
        (json.JSONDecodeError("x", "", 0), "malformed_call"),
    ],
)
def test_failure_kinds(exc: BaseException, kind: str) -> None:
    """Timeouts by any client, parse failures, everything else unavailable."""
    assert failure_kind(exc) == kind


def test_pydantic_validation_error_is_a_malformed_call() -> None:
    """Ollama's client validates its response with pydantic: a call with non-object arguments fails there."""
    with pytest.raises(Exception) as err:
        _Invalid.model_validate({"x": "not a number"})
    assert failure_kind(err.value) == "malformed_call"


# Verbatim content of qwen2.5-coder-1.5b on llama-server in `evaluate-agent --brain llm` (issue 13): it was shown to
# the shopper as the answer, because no call was recognised in it.
SEEN_1_5B_XML = """<tools>\n  <function name="search_products" arguments='{"query": "pantuflas ugg mujer", "max_price": null, "min_price": null, "brands": null, "colors": null, "exclude_terms": null, "in_stock": null, "k": 5, "strategy": null}'/>\n</tools>"""  # noqa: E501


def test_function_tags_are_calls(tools: dict[str, BaseTool]) -> None:
    """`<function name="..." arguments='{...}'/>` is a call (nulls dropped; an apostrophe inside is no end)."""
    parsed = parse_reply(reply(SEEN_1_5B_XML), tools)
    assert [(c.name, c.args, c.format, c.error) for c in parsed.calls] == [
        ("search_products", {"query": "pantuflas ugg mujer", "k": 5}, "xml_tag", None)
    ]
    assert parsed.text == ""
    content = """<function name="search_products" arguments='{"query": "men's belts"}' />"""
    (call,) = parse_reply(reply(content), tools).calls
    assert call.args == {"query": "men's belts"} and call.error is None
    (bad,) = parse_reply(reply("""<function name="compare" arguments='{}'/>"""), tools).calls
    assert bad.error is not None and bad.error.startswith("unknown tool")
