"""One turn of the LLM brain: the chat model calls the product tools, then answers from their results.

- Tool calls are native or written as JSON in the content (`agent.llm.toolcalls`), validated against the tools'
  schemas; an invalid call is not run.
- After `tool_rounds` rounds of calls the answer is asked for WITHOUT tools bound: small models given the tools
  again call again instead of answering (docs/llm-measurements.md).
- The whole turn has a budget in seconds: each model call runs in a worker thread and the turn stops waiting when
  the budget is spent (a streamed generation is then cancelled at its next token).
- The answer must be grounded (`shopagent.grounding`) in this turn's tool results and the products on screen.

Anything that keeps the answer from being used raises `LLMFallback` with its kind, a readable detail, and the tool
results already fetched, so the offline brain can render those (or answer the turn itself when there are none).
"""

from __future__ import annotations

import contextvars
import json
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.messages.utils import message_chunk_to_message
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from pydantic import ValidationError

from agent import prompts
from agent.llm.toolcalls import ParsedCall, is_data_dump, parse_reply
from agent.state import FallbackKind, State, ToolCallRecord
from shopagent import grounding
from shopagent.domain import ProductView
from shopagent.settings import Settings
from tools.products import ToolResult

HISTORY_MESSAGES = 6  # earlier user messages and answers the model sees (the products on screen are in the prompt)
HISTORY_CHARS = 600  # an earlier answer is cut here: prompt tokens cost seconds on a CPU
NAME_CHARS = 120  # product names in prompts and tool results (catalog names run to 200+ characters)
TOOL_MESSAGE_CHARS = 4000


@dataclass(frozen=True)
class TurnLimits:
    """How long and how many tool rounds a turn may take, and whether replies are streamed."""

    budget_s: float
    tool_rounds: int = 1
    stream: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> TurnLimits:
        """LLM_TURN_BUDGET_S, LLM_TOOL_ROUNDS, LLM_STREAM."""
        return cls(settings.llm_turn_budget_s, settings.llm_tool_rounds, settings.llm_stream)


@dataclass(frozen=True)
class ToolRun:
    """A tool the model called, with the validated arguments and what the tool returned."""

    name: str
    args: dict[str, Any]
    result: ToolResult


@dataclass
class LLMTurn:
    """A usable LLM answer, the tools run for it, and every call the model made."""

    answer: str
    runs: list[ToolRun] = field(default_factory=list)
    calls: list[ToolCallRecord] = field(default_factory=list)


# Intents (from the shared understanding) whose answer must come from a search or similar-products call.
SEARCH_INTENTS = frozenset({"search", "refine", "similar"})


class LLMFallback(Exception):
    """The LLM's answer can't be used this turn. `runs` holds the tool results fetched before (the offline brain
    renders them), `calls` every call the model made."""

    def __init__(self, kind: FallbackKind, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind: FallbackKind = kind
        self.runs: list[ToolRun] = []
        self.calls: list[ToolCallRecord] = []

    @property
    def reason(self) -> str:
        """ "kind: detail", for the state, the trace and the response."""
        return str(self)


def failure_kind(exc: BaseException) -> FallbackKind:
    """What a client exception means: a timeout (httpx, openai and LangChain timeouts all say so in their class
    name), a reply the client could not parse (Ollama's client rejects a call whose arguments are not an object),
    or an unavailable server."""
    if any("Timeout" in cls.__name__ for cls in type(exc).__mro__):
        return "timeout"
    if isinstance(exc, ValidationError | json.JSONDecodeError):
        return "malformed_call"
    return "unavailable"


def short(name: str) -> str:
    """A product name cut for a prompt."""
    return name if len(name) <= NAME_CHARS else name[: NAME_CHARS - 1] + "…"


def turn_prompt(state: State) -> str:
    """What changes per turn: the products on screen and the search they came from, the shopper's language."""
    shown = state.get("shown") or []
    screen = ""
    if shown:
        search = state.get("search")
        screen = prompts.SCREEN_PROMPT.format(
            shown="\n".join(
                f"{i}. {p['product_id']} | {short(p['name'])} | {prompts.price_text('en', p.get('price'))}"
                for i, p in enumerate(shown, 1)
            ),
            search_text=search.text if search else "",
            filters=search.filters.as_dict() if search else {},
        )
    return prompts.TURN_PROMPT.format(
        screen=screen, language_name=prompts.LANGUAGE_NAMES.get(state.get("language") or "en", "English")
    )


def conversation(state: State) -> list[BaseMessage]:
    """What the model is sent: the fixed system prompt first (a server's prompt cache keeps it, and the tool
    schemas after it, from turn to turn), the latest messages with earlier answers cut short, and this turn's
    context right before the shopper's latest message."""
    kept = [m for m in state["messages"] if isinstance(m, HumanMessage | AIMessage)][-HISTORY_MESSAGES:]
    past: list[BaseMessage] = []
    for m in kept[:-1]:
        text = m.content if isinstance(m.content, str) else str(m.content)
        past.append(m if isinstance(m, HumanMessage) else AIMessage(text[:HISTORY_CHARS]))
    return [SystemMessage(prompts.SYSTEM_PROMPT), *past, SystemMessage(turn_prompt(state)), *kept[-1:]]


def warm_up(model: BaseChatModel, tools: Mapping[str, BaseTool]) -> None:
    """One short request with the fixed prompt and the tool schemas, so a local server has them in its prompt
    cache before the first shopper (on a 2-core CPU reading them takes over a minute)."""
    bound = model.bind_tools(list(tools.values()))
    bound.invoke([SystemMessage(prompts.SYSTEM_PROMPT), HumanMessage("hi")])


def _product_facts(n: int, p: ProductView) -> dict[str, Any]:
    """What a model needs of one product: number, id, name, brand, price, and the details when fetched."""
    facts: dict[str, Any] = {"n": n, "product_id": p["product_id"], "name": short(p["name"]), "brand": p["brand"]}
    facts["price"] = p["price"]
    for key in ("rating", "rating_count", "color", "category", "in_stock"):
        if p.get(key) is not None:
            facts[key] = p.get(key)
    if highlights := p.get("highlights"):
        facts["highlights"] = [h[:160] for h in highlights[:3]]
    return facts


def tool_message(result: ToolResult) -> str:
    """A tool result as the model reads it: compact JSON (every prompt token costs time on a CPU)."""
    payload: dict[str, Any] = {"status": result.get("status"), "message": result.get("message")}
    if result.get("weak_matches"):
        payload["weak_matches"] = True
    if filters := {k: v for k, v in (result.get("filters") or {}).items() if v not in (None, [], ())}:
        payload["filters"] = filters
    if source := result.get("source"):
        payload["similar_to"] = _product_facts(0, source)
    payload["products"] = [_product_facts(i, p) for i, p in enumerate(result.get("products") or [], 1)]
    for key in ("cheapest", "best_rated", "missing"):
        if result.get(key):
            payload[key] = result.get(key)
    return json.dumps(payload, ensure_ascii=False, default=str)[:TOOL_MESSAGE_CHARS]


def grounding_problems(answer: str, state: State, runs: Sequence[ToolRun]) -> list[str]:
    """Why the answer is not grounded in this turn's tool results and the products on screen (empty: it is)."""
    products: list[ProductView] = list(state.get("shown") or [])
    amounts: list[float] = []
    for run in runs:
        products += run.result.get("products") or []
        if source := run.result.get("source"):
            products.append(source)
        filters = run.result.get("filters") or {}
        amounts += [float(v) for k in ("price_min", "price_max") if (v := filters.get(k)) is not None]
    if search := state.get("search"):
        amounts += [v for v in (search.filters.price_min, search.filters.price_max) if v is not None]
    said = next((m for m in reversed(state["messages"]) if isinstance(m, HumanMessage)), None)
    if said is not None:
        amounts += grounding.said_amounts(str(said.content))
    return grounding.problems(answer, grounding.known_products(products), amounts)


class _Turn:
    """The working state of one turn: the conversation sent, the deadline, the tools run, the calls made."""

    def __init__(self, model: BaseChatModel, tools: Mapping[str, BaseTool], state: State, limits: TurnLimits):
        self.model, self.tools, self.state, self.limits = model, tools, state, limits
        self.deadline = time.monotonic() + limits.budget_s
        self.convo: list[BaseMessage] = conversation(state)
        self.runs: list[ToolRun] = []
        self.calls: list[ToolCallRecord] = []

    def ask(self, runnable: Runnable[LanguageModelInput, BaseMessage]) -> AIMessage:
        """One model reply, within what is left of the budget (the call runs in a worker thread that carries
        this context, so the model's run nests under the node's in traces)."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise LLMFallback("budget", f"the turn budget of {self.limits.budget_s:g} s was spent before the answer")
        stop = threading.Event()
        convo = list(self.convo)

        def call() -> BaseMessage:
            """Invoke, or stream and add up the chunks (stopping when the turn gave up waiting)."""
            if not self.limits.stream:
                return runnable.invoke(convo)
            total: Any = None
            chunks = runnable.stream(convo)
            try:
                for chunk in chunks:
                    total = chunk if total is None else total + chunk
                    if stop.is_set():
                        break
            finally:
                getattr(chunks, "close", lambda: None)()  # closes the HTTP stream: the server stops generating
            if total is None:
                raise LLMFallback("unavailable", "the model sent an empty stream")
            return message_chunk_to_message(total)

        future: Future[BaseMessage] = Future()
        context = contextvars.copy_context()

        def work() -> None:
            try:
                future.set_result(context.run(call))
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting turn
                future.set_exception(exc)

        threading.Thread(target=work, name="llm-call", daemon=True).start()
        try:
            reply = future.result(timeout=remaining)
        except FutureTimeout:
            stop.set()
            raise LLMFallback("budget", f"no reply within the turn budget of {self.limits.budget_s:g} s") from None
        except LLMFallback:
            raise
        except Exception as exc:  # noqa: BLE001 - any client failure means "answer with the offline brain"
            raise LLMFallback(failure_kind(exc), f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(reply, AIMessage):
            raise LLMFallback("unavailable", f"unexpected reply type {type(reply).__name__}")
        return reply

    def record(self, round_no: int, calls: Iterable[ParsedCall]) -> None:
        """Note the calls of one reply."""
        self.calls += [
            ToolCallRecord(round=round_no, tool=c.name, args=c.args, format=c.format, error=c.error) for c in calls
        ]

    def run_tools(self, calls: list[ParsedCall]) -> None:
        """Run valid calls; their results go back to the model as tool messages."""
        self.convo.append(AIMessage("", tool_calls=[{"name": c.name, "args": c.args, "id": c.id} for c in calls]))
        for c in calls:
            result: ToolResult = self.tools[c.name].invoke(c.args)
            self.runs.append(ToolRun(c.name, c.args, result))
            self.convo.append(ToolMessage(tool_message(result), tool_call_id=c.id))

    def answer(self) -> str:
        """Tool rounds while the model calls tools, then the answer step without tools; the answer checked."""
        bound = self.model.bind_tools(list(self.tools.values()))
        text = ""
        for round_no in range(1, self.limits.tool_rounds + 1):
            parsed = parse_reply(self.ask(bound), self.tools)
            self.record(round_no, parsed.calls)
            if parsed.errors:
                raise LLMFallback("malformed_call", "; ".join(parsed.errors))
            if not parsed.calls:
                text = parsed.text
                break
            self.run_tools(parsed.calls)
        else:
            parsed = parse_reply(self.ask(self.model), self.tools)
            self.record(self.limits.tool_rounds + 1, parsed.calls)
            if parsed.calls:
                raise LLMFallback("no_answer", "the model called a tool again instead of answering from the results")
            text = parsed.text
        if not text or is_data_dump(text):
            raise LLMFallback("no_answer", "empty answer" if not text else "the answer is data, not words")
        if not self.runs and self.state.get("intent") in SEARCH_INTENTS:
            # Small models re-list the old results for "in black" or "under $15", or say there is nothing, without
            # searching: the understanding knows the message asks for products, and no tool result backs the answer.
            raise LLMFallback("no_search", "the model answered a request for products without searching")
        if problems := grounding_problems(text, self.state, self.runs):
            raise LLMFallback("ungrounded", "; ".join(problems[:3]))
        return text


def run_turn(model: BaseChatModel, tools: Mapping[str, BaseTool], state: State, limits: TurnLimits) -> LLMTurn:
    """One LLM turn. Raises `LLMFallback` (with the tool results fetched so far) when its answer can't be used."""
    turn = _Turn(model, tools, state, limits)
    try:
        answer = turn.answer()
    except LLMFallback as fallback:
        fallback.runs, fallback.calls = turn.runs, turn.calls
        raise
    return LLMTurn(answer, turn.runs, turn.calls)
