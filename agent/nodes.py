"""Graph nodes. Each takes (state, runtime) and returns a partial update; routers return a Literal.

`understand` classifies the message (rules + an embedding scope check); `llm_agent` is the LLM brain
(skipped when none is configured, falling back on failure); `search`/`details`/`compare`/`similar`/
`chat` call the tools; `respond` writes the deterministic answer from templates.

Traces: each node is a LangGraph run; the tools they call are `tool` runs under it (the product search
inside nests its backend, fusion and fallback runs); nodes add their figures to their run's metadata.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import fields
from typing import Any, Literal

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.runtime import Runtime
from langsmith import traceable

from agent import llm, nlu, prompts
from agent.context import Context
from agent.service import AgentDeps
from agent.state import ShownProduct, State
from shopagent.models import SearchFilters
from shopagent.tracing import add_tags, annotate, without_inputs
from tools import products

log = logging.getLogger(__name__)

_FILTER_FIELDS = {f.name for f in fields(SearchFilters)}


def _traced_tool(fn: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """A product operation as a LangSmith `tool` run (its Services argument is left out of the trace)."""
    return traceable(run_type="tool", name=fn.__name__, process_inputs=without_inputs("services"))(fn)


search_products = _traced_tool(products.search_products)
product_details = _traced_tool(products.product_details)
compare_products = _traced_tool(products.compare_products)
similar_products = _traced_tool(products.similar_products)


def filters_from_dict(data: dict[str, Any] | None) -> SearchFilters:
    """SearchFilters from its `as_dict()` form (as stored in the checkpoint)."""
    data = {k: v for k, v in (data or {}).items() if k in _FILTER_FIELDS}
    return SearchFilters(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})  # type: ignore[arg-type]


def last_user_text(state: State) -> str:
    """Text of the newest human message."""
    for message in reversed(state.get("messages") or []):
        if isinstance(message, HumanMessage):
            return message.content if isinstance(message.content, str) else str(message.content)
    return ""


def _shown(products: list[dict[str, Any]], lang: str) -> list[ShownProduct]:
    """Tool-result products as the on-screen list (with a readable reason)."""
    return [
        ShownProduct(product_id=p["product_id"], name=p["name"], price=p.get("price"), brand=p.get("brand"),
                     score=p.get("score", 0.0), similarity=p.get("similarity"),
                     reason=prompts.reason_text(lang, p.get("why") or {}, p.get("similarity")))
        for p in products
    ]  # fmt: skip


class AgentNodes:
    """The nodes, bound to a getter of the agent's dependencies (lazy for Studio, given for the API)."""

    def __init__(self, deps: Callable[[], AgentDeps]):
        """`deps` is called on first use, so compiling the graph does no work."""
        self._deps = deps

    # ------------------------------------------------------------ understanding and routing

    def understand(self, state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """Intent, language, references and this message's filters; resets the per-turn fields."""
        deps = self._deps()
        text = last_user_text(state)
        shown = list(state.get("shown") or [])
        u = nlu.understand(text, deps.vocabulary, shown, state.get("language"))  # type: ignore[arg-type]
        if u.intent == "search" and nlu.looks_like_question(text):
            shopping, off_topic = deps.intent_examples
            if nlu.out_of_scope_by_embedding(deps.services.embeddings.embed_query(text), shopping, off_topic):
                u.intent = "out_of_scope"
        annotate(intent=u.intent, language=u.language, refs=u.refs, turn_filters=u.filters.as_dict())
        add_tags(f"intent:{u.intent}", f"lang:{u.language}")
        return {
            "intent": u.intent, "language": u.language, "refs": u.refs, "turn_filters": u.filters.as_dict(),
            "turn_text": u.search_text, "result": {}, "answer": "", "brain": "rules", "llm_fallback_reason": None,
            "notes": u.notes,
        }  # fmt: skip

    def route_brain(
        self, state: State, runtime: Runtime[Context]
    ) -> Literal["llm_agent", "search", "details", "compare", "similar", "chat"]:
        """The LLM brain when one is configured and allowed for this run, else the intent's action."""
        if runtime.context.use_llm and self._deps().chat_model is not None:
            return "llm_agent"
        return self.route_intent(state)

    @staticmethod
    def route_intent(state: State) -> Literal["search", "details", "compare", "similar", "chat"]:
        """The action node for the intent."""
        intent = state.get("intent", "search")
        if intent in ("search", "refine"):
            return "search"
        if intent in ("details", "compare", "similar"):
            return intent  # type: ignore[return-value]
        return "chat"

    def route_after_llm(self, state: State) -> Literal["search", "details", "compare", "similar", "chat", "__end__"]:
        """Done when the LLM answered; otherwise the deterministic action for the intent."""
        return "__end__" if state.get("answer") else self.route_intent(state)

    # ------------------------------------------------------------ LLM brain

    def llm_agent(self, state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """Let the chat model call tools and answer; on failure record why and leave the answer empty."""
        deps = self._deps()
        try:
            out = llm.run_turn(deps.chat_model, deps.tools, state)  # type: ignore[arg-type]
        except llm.LLMUnavailable as exc:
            log.warning("LLM unavailable, falling back to the deterministic brain: %s", exc)
            annotate(llm_fallback_reason=str(exc))
            return {"llm_fallback_reason": str(exc)}
        update: dict[str, Any] = {"answer": out["answer"], "brain": "llm", "messages": [AIMessage(out["answer"])]}
        lang = state.get("language") or "en"
        for name, args, result in out["tool_results"]:
            if name in ("search_products", "similar_products") and result.get("products"):
                update["shown"] = _shown(result["products"], lang)
                update["result"] = {"kind": "search" if name == "search_products" else "similar", **result}
            if name == "search_products":
                update.update(search_text=args.get("query", ""), filters=result.get("filters", {}),
                              strategy=result.get("strategy"), backend=result.get("backend"),
                              fallback_reason=result.get("fallback_reason"),
                              weak_matches=result.get("weak_matches", False))  # fmt: skip
        annotate(brain="llm", tool_calls=[n for n, _, _ in out["tool_results"]])
        return update

    # ------------------------------------------------------------ deterministic actions

    def search(self, state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """New search, or refine the previous one with this message's filters and words."""
        ctx = runtime.context
        deps = self._deps()
        turn_filters = filters_from_dict(state.get("turn_filters"))
        refine = state.get("intent") == "refine" and bool(state.get("search_text"))
        if refine:
            text = " ".join(filter(None, [state.get("search_text"), state.get("turn_text")]))
            filters = filters_from_dict(state.get("filters")).merged(turn_filters)
        else:
            text, filters = state.get("turn_text") or last_user_text(state), turn_filters

        def run(query: str, f: SearchFilters) -> dict[str, Any]:
            """The search tool with this run's context."""
            return search_products(deps.services, query, f, ctx.k, ctx.strategy, ctx.pgvector_threshold,
                                         ctx.chroma_threshold)  # fmt: skip

        result = run(text, filters)
        if not result["products"] and filters.colors:
            # Many products have no colour field: retry with the colour as words instead of a filter.
            relaxed = SearchFilters(**{**filters.__dict__, "colors": ()})
            result = {**run(f"{' '.join(filters.colors)} {text}", relaxed), "colors_relaxed": True}
        result["kind"] = "refine" if refine else "search"
        sims = [p["similarity"] for p in result["products"] if p.get("similarity") is not None]
        annotate(kind=result["kind"], strategy=result["strategy"], backend=result["backend"], k=ctx.k,
                 filters=result["filters"], num_results=len(result["products"]),
                 top1_similarity=sims[0] if sims else None,
                 mean_similarity=round(sum(sims) / len(sims), 4) if sims else None,
                 fallback_reason=result["fallback_reason"], colors_relaxed=result.get("colors_relaxed"))  # fmt: skip
        update: dict[str, Any] = {
            "result": result, "strategy": result["strategy"], "backend": result["backend"],
            "fallback_reason": result["fallback_reason"], "weak_matches": result["weak_matches"],
        }  # fmt: skip
        if result["products"] or not refine:
            # A refinement that finds nothing keeps the previous search and list on screen.
            update.update(search_text=text, filters=result["filters"],
                          shown=_shown(result["products"], state.get("language") or "en"))  # fmt: skip
        return update

    def _targets(self, state: State) -> list[ShownProduct]:
        """Shown products the message refers to."""
        shown = state.get("shown") or []
        return [shown[i] for i in state.get("refs") or [] if i < len(shown)]

    def details(self, state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """Details of the referenced product(s)."""
        shown = state.get("shown") or []
        targets = self._targets(state) or (shown[:1] if len(shown) == 1 else [])
        if not targets:
            return {"result": {"kind": "details", "status": "need_ref" if shown else "need_shown", "products": []}}
        result = product_details(self._deps().services, [p["product_id"] for p in targets])
        return {"result": {"kind": "details", **result}}

    def compare(self, state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """Compare the referenced products (the top three when none is named)."""
        shown = state.get("shown") or []
        targets = self._targets(state)
        if not targets:
            targets = shown[:3]
        if len(targets) < 2:
            return {"result": {"kind": "compare", "status": "need_two" if shown else "need_shown", "products": []}}
        result = compare_products(self._deps().services, [p["product_id"] for p in targets])
        return {"result": {"kind": "compare", **result}}

    def similar(self, state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """Diverse products similar to the referenced one (the first when none is named)."""
        shown = state.get("shown") or []
        targets = self._targets(state) or shown[:1]
        if not targets:
            return {"result": {"kind": "similar", "status": "need_shown", "products": []}}
        ctx = runtime.context
        result = similar_products(self._deps().services, targets[0]["product_id"], ctx.k, ctx.mmr_lambda)
        update: dict[str, Any] = {"result": {"kind": "similar", **result}}
        if result["products"]:
            update["shown"] = _shown(result["products"], state.get("language") or "en")
        return update

    def chat(self, state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """Greeting, help and out-of-scope need no tool."""
        return {"result": {"kind": state.get("intent", "help"), "status": "ok", "products": []}}

    # ------------------------------------------------------------ answer

    def respond(self, state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """The deterministic answer from templates, in the user's language."""
        lang = state.get("language") or "en"
        result = state.get("result") or {}
        answer = render(result, state, lang)
        if state.get("llm_fallback_reason"):
            answer = f"{answer}\n{prompts.t(lang, 'llm_unavailable')}"
        annotate(kind=result.get("kind", "help"), status=result.get("status", "ok"), language=lang,
                 num_products=len(result.get("products") or []), answer_chars=len(answer))  # fmt: skip
        return {"answer": answer, "messages": [AIMessage(answer)]}


def render(result: dict[str, Any], state: State, lang: str) -> str:
    """Answer text for a tool result."""
    kind, status = result.get("kind", "help"), result.get("status", "ok")
    n_shown = len(state.get("shown") or [])
    if kind in ("greeting", "help", "out_of_scope"):
        return prompts.t(lang, kind)
    if status in ("need_shown", "need_ref", "need_two"):
        return prompts.t(lang, status, n=n_shown)
    if status == "error":
        return prompts.t(lang, "error")
    if kind in ("search", "refine"):
        return _render_search(result, state, lang)
    if kind == "details":
        return _render_details(result, state, lang)
    if kind == "compare":
        return _render_compare(result, state, lang)
    return _render_similar(result, state, lang)


def _render_search(result: dict[str, Any], state: State, lang: str) -> str:
    """Search/refine answer: header (weaker matches said so) and numbered products with reasons."""
    query, filters = result.get("query", ""), prompts.filters_text(lang, result.get("filters") or {})
    if not result["products"]:
        key = "no_results_refine" if result["kind"] == "refine" else "no_results"
        return prompts.t(lang, key, query=query, filters=filters)
    key = "weak" if result.get("weak_matches") else result["kind"]
    lines = [prompts.t(lang, key, query=query, filters=filters)]
    if result.get("colors_relaxed"):
        lines.append(prompts.t(lang, "colors_relaxed"))
    lines += [prompts.product_line(lang, i, dict(p)) for i, p in enumerate(state.get("shown") or [], 1)]
    return "\n".join(lines)


def _number(state: State, product_id: str) -> int:
    """1-based position of a product on screen (0 when not shown)."""
    ids = [p["product_id"] for p in state.get("shown") or []]
    return ids.index(product_id) + 1 if product_id in ids else 0


def _render_details(result: dict[str, Any], state: State, lang: str) -> str:
    """Details of each product: headline, rating/colour/category, highlights."""
    if not result["products"]:
        return result.get("message", "")
    blocks = []
    for p in result["products"]:
        brand = f" ({p['brand']})" if p.get("brand") else ""
        lines = [prompts.t(lang, "details", n=_number(state, p["product_id"]), name=p["name"], brand=brand,
                           price=prompts.price_text(lang, p["price"]))]  # fmt: skip
        lines.append(prompts.t(lang, "details_extra", rating=p.get("rating") or "–", count=p.get("rating_count") or 0,
                               color=p.get("color") or "–", category=p.get("category") or "–"))  # fmt: skip
        lines += [f"- {h}" for h in p.get("highlights") or []]
        if not p.get("highlights") and p.get("description"):
            lines.append(p["description"])
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _render_compare(result: dict[str, Any], state: State, lang: str) -> str:
    """One row per product, then the cheapest and the best rated."""
    if len(result["products"]) < 2:
        return result.get("message", "")
    names = {p["product_id"]: p["name"] for p in result["products"]}
    lines = [prompts.t(lang, "compare")]
    for p in result["products"]:
        brand = f" ({p['brand']})" if p.get("brand") else ""
        lines.append(prompts.t(lang, "compare_row", n=_number(state, p["product_id"]), name=p["name"], brand=brand,
                               price=prompts.price_text(lang, p["price"]), rating=p.get("rating") or "–"))  # fmt: skip
    if result.get("cheapest"):
        lines.append(prompts.t(lang, "cheapest", name=names[result["cheapest"]]))
    if result.get("best_rated"):
        lines.append(prompts.t(lang, "best_rated", name=names[result["best_rated"]]))
    return "\n".join(lines)


def _render_similar(result: dict[str, Any], state: State, lang: str) -> str:
    """Similar products with why each is similar."""
    source = (result.get("source") or {}).get("name", "")
    if not result["products"]:
        if result.get("status") == "not_found":
            return str(result.get("message", ""))
        return prompts.t(lang, "no_similar", name=source)
    lines = [prompts.t(lang, "similar", name=source)]
    lines += [prompts.product_line(lang, i, dict(p)) for i, p in enumerate(state.get("shown") or [], 1)]
    return "\n".join(lines)
