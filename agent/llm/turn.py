"""The LLM brain: ChatOllama (or any tool-calling chat model) routes the turn by calling the product
tools, then writes an answer grounded only in the tool results. Failures raise `LLMUnavailable` so the
graph can fall back to the deterministic brain."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import httpx
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import BaseTool

from agent import prompts
from agent.state import State
from shopagent.settings import Settings
from tools.products import ToolResult

log = logging.getLogger(__name__)

# Tool-call rounds per turn: one to fetch, one more to follow up (e.g. search then details).
MAX_TOOL_ROUNDS = 2
HISTORY_MESSAGES = 8


class LLMUnavailable(RuntimeError):
    """The chat model could not be used for this turn (unreachable, timed out, malformed output)."""


@dataclass
class LLMTurn:
    """The model's answer and every tool call it made: (tool name, arguments, result)."""

    answer: str
    tool_results: list[tuple[str, dict[str, Any], ToolResult]] = field(default_factory=list)


def make_chat_model(settings: Settings) -> BaseChatModel:
    """ChatOllama from the settings, with a bounded client timeout (a hung server must not hang a turn)."""
    from langchain_ollama import ChatOllama

    return ChatOllama(
        base_url=settings.ollama_base_url,
        model=settings.ollama_chat_model or "",
        temperature=0,
        client_kwargs={"timeout": settings.ollama_timeout_s},
    )


def ollama_reachable(settings: Settings) -> tuple[bool, str]:
    """(reachable, detail) from Ollama's model list, with a short timeout."""
    try:
        r = httpx.get(f"{settings.ollama_base_url.rstrip('/')}/api/tags", timeout=2.0)  # type: ignore[union-attr]
        r.raise_for_status()
    except httpx.HTTPError as exc:
        return False, f"{type(exc).__name__}: {exc}"
    names = [m.get("name") for m in r.json().get("models", [])]
    return True, "model present" if settings.ollama_chat_model in names else f"models: {names[:5]}"


def system_prompt(state: State) -> str:
    """The system prompt with the products on screen and the previous search."""
    shown = state.get("shown") or []
    listing = (
        "\n".join(
            f"{i}. {p['product_id']} | {p['name']} | {prompts.price_text('en', p.get('price'))}"
            for i, p in enumerate(shown, 1)
        )
        or "(none)"
    )
    search = state.get("search")
    return prompts.SYSTEM_PROMPT.format(
        shown=listing,
        search_text=search.text if search else "",
        filters=search.filters.as_dict() if search else {},
        language_name=prompts.LANGUAGE_NAMES.get(state.get("language") or "en", "English"),
    )


def run_turn(model: BaseChatModel, tools: list[BaseTool], state: State) -> LLMTurn:
    """One LLM turn: tool calls, then a grounded answer. Returns answer, tool results and the last search."""
    by_name = {t.name: t for t in tools}
    history: list[BaseMessage] = [m for m in state["messages"] if isinstance(m, (HumanMessage, AIMessage))]
    convo: list[BaseMessage] = [SystemMessage(system_prompt(state)), *history[-HISTORY_MESSAGES:]]
    bound = model.bind_tools(tools)
    results: list[tuple[str, dict[str, Any], ToolResult]] = []
    try:
        for _ in range(MAX_TOOL_ROUNDS + 1):
            reply = bound.invoke(convo)
            if not isinstance(reply, AIMessage) or not reply.tool_calls:
                break
            convo.append(reply)
            for call in reply.tool_calls:
                tool = by_name.get(call["name"])
                if tool is None:
                    out = ToolResult(status="error", message=f"unknown tool {call['name']}")
                else:
                    out = tool.invoke(call["args"])
                results.append((call["name"], call["args"], out))
                convo.append(ToolMessage(json.dumps(out, default=str)[:6000], tool_call_id=call["id"]))
        else:
            reply = model.invoke(convo)  # out of tool rounds: answer from what was fetched
    except Exception as exc:  # noqa: BLE001 - any model/transport failure means "use the other brain"
        raise LLMUnavailable(f"{type(exc).__name__}: {exc}") from exc
    answer = reply.content if isinstance(reply.content, str) else str(reply.content)
    if not answer.strip():
        raise LLMUnavailable("empty answer from the chat model")
    return LLMTurn(answer.strip(), results)
