"""Graph nodes. Each takes (state, runtime) and returns a partial update; routers return a Literal.

`understand` reads the message once (`shopagent.understanding`); `llm_agent` is the LLM brain (skipped when
none is configured, falling back on failure); `search`/`details`/`compare`/`similar`/`chat` call the product
tools (the same LangChain tools the LLM gets); `respond` writes the deterministic answer from templates.

Traces: each node is a LangGraph run; the tools they call are `tool` runs under it (the product search
inside nests its backend, fusion and fallback runs); nodes add their figures to their run's metadata.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.runtime import Runtime

from agent import prompts
from agent.context import Context
from agent.deps import AgentDeps
from agent.llm.turn import LLMFallback, ToolRun, TurnLimits, run_turn
from agent.rendering import render
from agent.state import ResultKind, State, TurnResult, turn_result
from shopagent.domain import ProductView, SearchFilters, SearchOptions, SearchRequest, updated
from shopagent.observability.tracing import add_tags, annotate
from shopagent.understanding import understand
from tools.products import ToolResult

log = logging.getLogger(__name__)

Action = Literal["search", "details", "compare", "similar", "chat"]
# What a turn's result is, by the tool that produced it (the LLM brain's results are rendered like the rules').
TOOL_RESULT_KINDS: dict[str, ResultKind] = {
    "search_products": "search",
    "similar_products": "similar",
    "product_details": "details",
    "compare_products": "compare",
}


def last_user_text(state: State) -> str:
    """Text of the newest human message."""
    for message in reversed(state.get("messages") or []):
        if isinstance(message, HumanMessage):
            return message.content if isinstance(message.content, str) else str(message.content)
    return ""


def with_reasons(products: list[ProductView], lang: str) -> list[ProductView]:
    """Products as shown: each with why it is listed, in the shopper's language."""
    return [updated(p, reason=prompts.reason_text(lang, p.get("why") or {}, p["similarity"])) for p in products]


def as_shown(result: ToolResult, shown: list[ProductView]) -> ToolResult:
    """A details/compare result whose products keep the similarity they were shown with (a read by id has none)."""
    sims = {p["product_id"]: p["similarity"] for p in shown}
    products = [{**p, "similarity": sims.get(p["product_id"], p["similarity"])} for p in result.get("products") or []]
    return {**result, "products": products}  # type: ignore[typeddict-item]


def with_notes(answer: str, lang: str, result: TurnResult, state: State, context: Context) -> str:
    """The answer followed by what the shopper should know about how it was made: the catalog database was
    unavailable (results from the backup index), the conversation's memory is unavailable. (A fallback from the
    LLM brain adds its own note, `prompts.fallback_note`, in `respond`.)"""
    notes = [
        key
        for key, applies in (
            ("search_degraded", result.get("degraded")),
            ("memory_unavailable", not context.memory),
        )
        if applies
    ]
    return "\n".join([answer, *(prompts.t(lang, key) for key in notes)])


class AgentNodes:
    """The nodes, bound to a getter of the agent's dependencies (lazy for Studio, given for the API)."""

    def __init__(self, deps: Callable[[], AgentDeps]):
        """`deps` is called on first use, so compiling the graph does no work."""
        self._deps = deps

    # ------------------------------------------------------------ understanding and routing

    def understand(self, state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """Intent, language, references and this message's search request; resets the per-turn fields."""
        deps = self._deps()
        u = understand(
            last_user_text(state),
            deps.vocabulary,
            state.get("shown") or [],
            state.get("language"),
            off_topic=deps.off_topic,
            translate=deps.services.translator,
        )
        annotate(intent=u.intent, language=u.language, refs=u.refs, turn_filters=u.request.filters.as_dict())
        add_tags(f"intent:{u.intent}", f"lang:{u.language}")
        return {
            "intent": u.intent,
            "language": u.language,
            "refs": u.refs,
            "facet": u.facet,
            "turn": u.request,
            "notes": u.notes,
            "result": {},
            "answer": "",
            "brain": "rules",
            "llm_fallback": None,
            "llm_fallback_reason": None,
            "llm_calls": [],
        }

    def route_brain(self, state: State, runtime: Runtime[Context]) -> Literal["llm_agent", Action]:
        """The LLM brain when one is configured and allowed for this run, else the intent's action."""
        if runtime.context.use_llm and self._deps().chat_model is not None:
            return "llm_agent"
        return self.route_intent(state)

    @staticmethod
    def route_intent(state: State) -> Action:
        """The action node for the intent."""
        match state.get("intent", "search"):
            case "search" | "refine":
                return "search"
            case "details" | "compare" | "similar" as action:
                return action
            case _:
                return "chat"

    def route_after_llm(self, state: State) -> Literal[Action, "respond", "__end__"]:
        """Done when the LLM answered; its tool results without a usable answer are rendered by `respond` when they
        found products; otherwise (no call, or a call that found nothing: a small model asking for the details of a
        product that is not on screen) the deterministic action for the intent answers the turn."""
        if state.get("answer"):
            return "__end__"
        result = state.get("result") or {}
        return "respond" if result.get("kind") and result.get("products") else self.route_intent(state)

    # ------------------------------------------------------------ LLM brain

    def llm_agent(self, state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """Let the chat model call tools and answer. When its answer can't be used, record why (visibly) and keep
        the tool results it fetched for the offline rendering; with none, the rules brain answers the turn."""
        deps = self._deps()
        if (model := deps.chat_model) is None:
            raise RuntimeError("llm_agent runs only with a chat model (see route_brain)")
        try:
            out = run_turn(model, deps.tools, state, TurnLimits.from_settings(deps.services.settings))
        except LLMFallback as fallback:
            log.warning("LLM answer not used, the offline brain answers: %s", fallback.reason)
            annotate(brain="rules", llm_fallback=fallback.kind, llm_fallback_reason=fallback.reason,
                     tool_calls=[c["tool"] for c in fallback.calls])  # fmt: skip
            add_tags(f"llm_fallback:{fallback.kind}")
            update = self.llm_results(fallback.runs, state)
            return {**update, "llm_fallback": fallback.kind, "llm_fallback_reason": fallback.reason,
                    "llm_calls": fallback.calls}  # fmt: skip
        annotate(brain="llm", tool_calls=[c["tool"] for c in out.calls])
        update = self.llm_results(out.runs, state)
        lang = state.get("language") or "en"
        answer = with_notes(out.answer, lang, update.get("result") or TurnResult(), state, runtime.context)
        return {**update, "answer": answer, "brain": "llm", "messages": [AIMessage(answer)], "llm_calls": out.calls}

    @staticmethod
    def llm_results(runs: list[ToolRun], state: State) -> dict[str, Any]:
        """The state update from the LLM's tool results: the products on screen, the search, this turn's result
        (the last one with products, else the first)."""
        update: dict[str, Any] = {}
        lang = state.get("language") or "en"
        for run in runs:
            result = run.result
            if run.name in ("search_products", "similar_products") and result.get("products"):
                update["shown"] = with_reasons(result["products"], lang)
            if result.get("products") or "result" not in update:
                update["result"] = turn_result(TOOL_RESULT_KINDS[run.name], result)
            if run.name == "search_products":
                filters = SearchFilters.from_dict(result.get("filters"))
                update["search"] = SearchRequest(result.get("query") or str(run.args.get("query", "")), filters, lang)
        return update

    # ------------------------------------------------------------ deterministic actions

    def search(self, state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """New search, or refine the previous one with this message's filters and words."""
        ctx = runtime.context
        tool = self._deps().tools["search_products"]
        turn = state.get("turn") or SearchRequest(last_user_text(state))
        previous = state.get("search")
        refine = state.get("intent") == "refine" and previous is not None and bool(previous.text)
        request = turn
        if refine and previous is not None:
            words = " ".join(filter(None, [previous.text, turn.text]))
            native = " ".join(filter(None, [previous.native, turn.native]))
            request = SearchRequest(words, previous.filters.merged(turn.filters), turn.language, turn.original, native)
        options = SearchOptions(
            k=ctx.k,
            strategy=ctx.strategy,
            pgvector_threshold=ctx.pgvector_threshold,
            chroma_threshold=ctx.chroma_threshold,
        )
        kind: Literal["refine", "search"] = "refine" if refine else "search"
        result = turn_result(kind, tool.invoke({"query": request.text, "request": request, "options": options}))
        if not result["products"] and request.filters.colors:
            # Many products have no colour field: retry with the colour as words instead of a filter.
            colors = " ".join(request.filters.colors)
            request = replace(
                request,
                text=f"{colors} {request.text}",
                native=f"{colors} {request.native}".strip(),
                filters=replace(request.filters, colors=()),
            )
            relaxed = tool.invoke({"query": request.text, "request": request, "options": options})
            result = turn_result(kind, relaxed, colors_relaxed=True)
        annotate(
            kind=result["kind"],
            strategy=result["strategy"],
            backend=result["backend"],
            k=ctx.k,
            filters=result["filters"],
            fallback_reason=result["fallback_reason"],
            colors_relaxed=result.get("colors_relaxed"),
            **result["figures"],
        )
        update: dict[str, Any] = {"result": result}
        if result["products"] or not refine:
            # A refinement that finds nothing keeps the previous search and list on screen.
            update.update(search=request, shown=with_reasons(result["products"], state.get("language") or "en"))
        return update

    def _targets(self, state: State) -> list[ProductView]:
        """Shown products the message refers to."""
        shown = state.get("shown") or []
        return [shown[i] for i in state.get("refs") or [] if i < len(shown)]

    def details(self, state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """Details of the referenced product(s)."""
        shown = state.get("shown") or []
        targets = self._targets(state) or (shown[:1] if len(shown) == 1 else [])
        if not targets:
            return {"result": turn_result("details", ask="need_ref" if shown else "need_shown", products=[])}
        result = self._deps().tools["product_details"].invoke({"product_ids": [p["product_id"] for p in targets]})
        return {"result": turn_result("details", as_shown(result, targets))}

    def compare(self, state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """Compare the referenced products (the top three when none is named)."""
        shown = state.get("shown") or []
        # "compare them" compares the top three; "which one is the cheapest?" everything on screen.
        targets = self._targets(state) or (shown if state.get("facet") else shown[:3])
        if len(targets) < 2:
            return {"result": turn_result("compare", ask="need_two" if shown else "need_shown", products=[])}
        result = self._deps().tools["compare_products"].invoke({"product_ids": [p["product_id"] for p in targets]})
        return {"result": turn_result("compare", as_shown(result, targets))}

    def similar(self, state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """Diverse products similar to the referenced one (the first when none is named)."""
        shown = state.get("shown") or []
        targets = self._targets(state) or shown[:1]
        if not targets:
            return {"result": turn_result("similar", ask="need_shown", products=[])}
        ctx = runtime.context
        tool = self._deps().tools["similar_products"]
        result = tool.invoke({"product_id": targets[0]["product_id"], "k": ctx.k, "mmr_lambda": ctx.mmr_lambda})
        update: dict[str, Any] = {"result": turn_result("similar", result)}
        if result["products"]:
            update["shown"] = with_reasons(result["products"], state.get("language") or "en")
        return update

    def chat(self, state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """Greeting, help and out-of-scope need no tool."""
        return {"result": turn_result(state.get("intent", "help"), status="ok", products=[])}

    # ------------------------------------------------------------ answer

    def respond(self, state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """The deterministic answer from templates, in the user's language."""
        lang = state.get("language") or "en"
        result = state.get("result") or TurnResult()
        answer = render(result, state, lang)
        if kind := state.get("llm_fallback"):
            answer = f"{answer}\n{prompts.fallback_note(lang, kind)}"
        answer = with_notes(answer, lang, result, state, runtime.context)
        annotate(
            kind=result.get("kind", "help"),
            status=result.get("status", "ok"),
            language=lang,
            num_products=len(result.get("products") or []),
            answer_chars=len(answer),
        )
        return {"answer": answer, "messages": [AIMessage(answer)]}
