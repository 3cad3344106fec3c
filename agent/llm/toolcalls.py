"""Tool calls out of a chat model's reply, validated against the offered tools' argument schemas.

A reply's calls are its native `tool_calls`, or, when it has none, the calls the model wrote as JSON in its
content: small open models served by llama.cpp (Qwen2.5-Coder 0.5B/1.5B, docs/llm-measurements.md) never emit
native calls, they write `{"name": ..., "arguments": {...}}` pretty-printed in a ```json fence or as one bare
line (sometimes the same call twice, or inside `<tool_call>` tags, or in a list); the 1.5B also writes
`<tools><function name="search_products" arguments='{...}'/></tools>` (issue 13 evaluation). Every JSON value
in the content is read, and every such tag; objects with a `name` and `arguments` (or `parameters`) are call
attempts. A call is valid when it names an offered tool and its arguments validate against that tool's LLM-facing
schema (`null` meaning "not given", unknown keys dropped: injected arguments can never come from the model).
Content with no call attempt is text.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from langchain_core.messages import AIMessage
from langchain_core.tools import BaseTool
from pydantic import BaseModel, ValidationError

CallFormat = Literal["native", "json_fenced", "json_bare", "xml_tag"]
_FENCE = re.compile(r"```[A-Za-z]*[ \t]*\n?(.*?)```", re.S)
_JSON_START = re.compile(r"[\[{]")
# <function name="NAME" arguments='{...}'/> (the arguments quoted with either quote; apostrophes inside are fine:
# the value ends only at a quote followed by the tag's end).
_XML_CALL = re.compile(
    r"""<function\s+name\s*=\s*(["'])(?P<name>[^"']+)\1\s+(?:arguments|parameters)\s*=\s*"""
    r"""(?P<q>["'])(?P<args>.*?)(?P=q)\s*/?>""",
    re.S,
)
_DECODER = json.JSONDecoder()


@dataclass(frozen=True)
class ParsedCall:
    """One tool call the model made: valid when `error` is None (then `args` are the validated arguments)."""

    name: str
    args: dict[str, Any]
    id: str
    format: CallFormat
    error: str | None = None


@dataclass(frozen=True)
class ParsedReply:
    """A reply as calls (valid or not) or, when the model attempted none, text."""

    calls: list[ParsedCall]
    text: str

    @property
    def errors(self) -> list[str]:
        """Why each invalid call is invalid."""
        return [c.error for c in self.calls if c.error]


def json_values(text: str) -> Iterator[Any]:
    """Every top-level JSON object or array in `text`, in order (prose around them is skipped)."""
    pos = 0
    while match := _JSON_START.search(text, pos):
        try:
            value, end = _DECODER.raw_decode(text, match.start())
        except ValueError:
            pos = match.start() + 1
            continue
        yield value
        pos = end


def _call_objects(value: Any) -> Iterator[dict[str, Any]]:
    """The call-shaped objects in a JSON value: `{"name", "arguments"|"parameters"}`, also nested under
    `"function"` (OpenAI's shape) or in a list."""
    if isinstance(value, list):
        for item in value:
            yield from _call_objects(item)
    elif isinstance(value, dict):
        inner = value.get("function")
        if isinstance(inner, dict) and "name" in inner:
            yield from _call_objects(inner)
        elif isinstance(value.get("name"), str) and ("arguments" in value or "parameters" in value):
            yield value


def content_calls(content: str) -> list[tuple[str, Any, CallFormat]]:
    """(name, raw arguments, format) of the calls written in `content`, repeats removed."""
    found: list[tuple[str, Any, CallFormat]] = []
    fenced = [m.group(1) for m in _FENCE.finditer(content)]
    outside = _FENCE.sub(" ", content)
    for block, fmt in [*((b, "json_fenced") for b in fenced), (outside, "json_bare")]:
        for value in json_values(block):
            for obj in _call_objects(value):
                args = obj.get("arguments", obj.get("parameters"))
                found.append((obj["name"], args, fmt))  # type: ignore[arg-type]
    found += [(m.group("name"), m.group("args"), "xml_tag") for m in _XML_CALL.finditer(content)]
    unique: dict[str, tuple[str, Any, CallFormat]] = {}
    for name, args, fmt in found:
        unique.setdefault(json.dumps([name, args], sort_keys=True, default=str), (name, args, fmt))
    return list(unique.values())


def validate_args(name: str, raw: Any, tools: Mapping[str, BaseTool]) -> tuple[dict[str, Any], str | None]:
    """(arguments, None) when `raw` are valid arguments of the offered tool `name`, else ({}, why not)."""
    tool = tools.get(name)
    if tool is None:
        return {}, f"unknown tool {name!r} (offered: {', '.join(tools)})"
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError:
            return {}, f"{name}: arguments are not valid JSON"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        return {}, f"{name}: arguments are not a JSON object"
    schema = tool.tool_call_schema
    if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        return {k: v for k, v in raw.items() if v is not None}, None
    args = {k: v for k, v in raw.items() if k in schema.model_fields and v is not None}
    try:
        schema.model_validate(args)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "arguments"
        return {}, f"{name}: invalid {where}: {first['msg']}"
    return args, None


def parse_reply(reply: AIMessage, tools: Mapping[str, BaseTool]) -> ParsedReply:
    """The calls of a reply (native first, else written in the content), each validated, or its text."""
    content = reply.content if isinstance(reply.content, str) else str(reply.content)
    calls: list[ParsedCall] = []
    for native in reply.tool_calls:
        args, error = validate_args(native["name"], native["args"], tools)
        calls.append(ParsedCall(native["name"], args, native.get("id") or _new_id(), "native", error))
    for bad in reply.invalid_tool_calls:
        name = bad.get("name") or "?"
        error = f"{name}: arguments are not valid JSON"
        calls.append(ParsedCall(name, {}, bad.get("id") or _new_id(), "native", error))
    if not calls:
        for name, raw, fmt in content_calls(content):
            args, error = validate_args(name, raw, tools)
            calls.append(ParsedCall(name, args, _new_id(), fmt, error))
    if calls and was_cut(reply):
        # A streamed call cut off mid-arguments still parses (the partial-JSON parser closes it): don't run it.
        calls = [replace(c, error=c.error or f"{c.name}: the reply was cut at the token limit") for c in calls]
    return ParsedReply(calls, "" if calls else content.strip())


def was_cut(reply: AIMessage) -> bool:
    """The reply stopped at the token limit (OpenAI `finish_reason`, Ollama `done_reason`)."""
    meta = reply.response_metadata
    return "length" in (meta.get("finish_reason"), meta.get("done_reason"))


def is_data_dump(text: str) -> bool:
    """Text that is a JSON value or a code block rather than words for a shopper (e.g. an echoed tool result)."""
    stripped = text.strip()
    if stripped.startswith("```"):
        return True
    values = list(json_values(stripped))
    return bool(values) and stripped[0] in "[{" and stripped[-1] in "]}"


def _new_id() -> str:
    """An id for a call that came without one (content calls), so its tool message can refer to it."""
    return f"call_{uuid.uuid4().hex[:16]}"
