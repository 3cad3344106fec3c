"""Graph state: the conversation (messages) plus what the agent showed, so "the second one" resolves.

Everything here is plain JSON-able data because the Postgres checkpointer stores it per session.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

Intent = Literal["search", "refine", "details", "compare", "similar", "greeting", "help", "out_of_scope"]


class ShownProduct(TypedDict, total=False):
    """A product listed to the user (numbered 1..n in the answer)."""

    product_id: str
    name: str
    price: float | None
    brand: str | None
    score: float
    similarity: float | None
    reason: str


class InputState(TypedDict):
    """What a caller sends: the conversation so far (one new human message per turn)."""

    messages: Annotated[list[AnyMessage], add_messages]


class State(InputState, total=False):
    """Full state. `search_text`, `filters` and `shown` carry over between turns; the rest is per turn."""

    language: str
    intent: Intent
    refs: list[int]  # 0-based positions in `shown` the message points at ("the second one" -> [1])
    search_text: str
    filters: dict[str, Any]  # SearchFilters.as_dict() of the last search
    turn_filters: dict[str, Any]  # filters understood from this message only
    turn_text: str  # this message's search words (for a refinement: the words it adds)
    notes: list[str]
    shown: list[ShownProduct]
    result: dict[str, Any]  # the tool result this turn's answer is written from
    answer: str
    strategy: str | None
    backend: str | None
    fallback_reason: str | None
    weak_matches: bool
    brain: Literal["rules", "llm"]
    llm_fallback_reason: str | None
