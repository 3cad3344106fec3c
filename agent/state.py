"""Graph state: the conversation (messages) plus what the agent showed, so "the second one" resolves.

The Postgres checkpointer stores it per session: products are `ProductView` dicts, the search requests are
frozen dataclasses, which the checkpointer's serializer must allow by name (`checkpoint_serde`): LangGraph warns
on unlisted types and blocks them in strict mode (LANGGRAPH_STRICT_MSGPACK).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

from langchain_core.messages import AnyMessage
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict

from shopagent.domain import ProductView, SearchFilters, SearchRequest
from shopagent.settings import Language
from shopagent.understanding.intent import Intent
from tools.products import ToolResult

ResultKind = Literal["search", "refine", "details", "compare", "similar", "greeting", "help", "out_of_scope"]
# Why the LLM brain's answer was not used: the server failed (unavailable), a request or the whole turn ran out of
# time (timeout, budget), the model's tool call was unusable (malformed_call), it gave no answer after the tool
# results (no_answer), it answered a request for products without searching (no_search), or its answer named
# products, ids or prices not in the results (ungrounded).
FallbackKind = Literal["unavailable", "timeout", "budget", "malformed_call", "no_answer", "no_search", "ungrounded"]


def checkpoint_serde() -> JsonPlusSerializer:
    """The checkpointers' serializer: LangGraph's, with the state's own dataclasses allowed."""
    return JsonPlusSerializer(allowed_msgpack_modules=[SearchFilters, SearchRequest])


class TurnResult(ToolResult, total=False):
    """The tool result this turn's answer is written from, and what kind of answer it is."""

    kind: ResultKind
    ask: Literal["need_shown", "need_ref", "need_two"]  # what the shopper must say first (no tool was run)
    colors_relaxed: bool  # no product had the colour: searched with the colour as words instead


def turn_result(kind: ResultKind, result: ToolResult | None = None, **extra: Any) -> TurnResult:
    """A tool result (or none) as this turn's result of the given kind."""
    return cast(TurnResult, {**(result or {}), **extra, "kind": kind})


class ToolCallRecord(TypedDict):
    """One tool call the LLM made this turn, valid or not (traces and the evaluation's tool-call validity)."""

    round: int
    tool: str
    args: dict[str, Any]
    format: Literal["native", "json_fenced", "json_bare", "xml_tag"]
    error: str | None


class InputState(TypedDict):
    """What a caller sends: the conversation so far (one new human message per turn)."""

    messages: Annotated[list[AnyMessage], add_messages]


class State(InputState, total=False):
    """Full state. `search` and `shown` carry over between turns; the rest is about this turn."""

    language: Language
    intent: Intent
    refs: list[int]  # 0-based positions in `shown` the message points at ("the second one" -> [1])
    facet: str | None  # what a question about shown products asks ("brand", "price", "color", "rating")
    turn: SearchRequest  # what this message asks to search (for a refinement: what it adds)
    notes: list[str]
    search: SearchRequest  # the search the products on screen came from
    shown: list[ProductView]  # the products on screen, numbered 1..n in the answer
    result: TurnResult
    answer: str
    brain: Literal["rules", "llm"]
    llm_fallback: FallbackKind | None
    llm_fallback_reason: str | None
    llm_calls: list[ToolCallRecord]
