"""The chat service behind the HTTP API: one turn through the graph under its traced root run, streaming,
history, deletion and feedback. Owned by the app's lifespan (see `agent.api.app`).

Tracing (LangSmith, off by default): each turn, JSON or streamed, is one root run `chat_turn` whose id is
the response's `run_id`; graph nodes, tools, retriever backends, fusion and fallback nest under it. The
turn's quality figures are attached to it as feedback, and `POST /api/v1/chat/feedback` adds the user's.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.graph.state import CompiledStateGraph
from langsmith import Client as LangSmithClient

from agent.api.schemas import ChatRequest, ChatResponse, FeedbackRequest, FeedbackResponse
from agent.api.sessions import SessionStore
from agent.context import Context
from agent.deps import AgentDeps
from agent.state import InputState, State, TurnResult
from shopagent.db.connection import Pool, make_pool
from shopagent.domain import ProductView, figures
from shopagent.observability import feedback, tracing
from shopagent.observability.privacy import pseudonymise
from shopagent.services import Services
from shopagent.settings import Settings

log = logging.getLogger(__name__)

# Root runs this process traced, for /feedback to tell a real turn from a typo (oldest forgotten first).
MAX_TRACKED_RUNS = 10_000


def make_checkpointer(services: Services) -> tuple[BaseCheckpointSaver[Any], Pool | None]:
    """PostgresSaver on its own pool in the catalog database (memory when the database is down)."""
    if services.pool is None or services.dsn is None:
        log.error("database unavailable: chat history is kept in memory only")
        return InMemorySaver(), None
    pool = make_pool(services.settings, services.dsn, name="checkpointer", prepare_threshold=0)
    saver = PostgresSaver(pool)
    saver.setup()
    return saver, pool


def turn_products(state: State) -> list[ProductView]:
    """Products this turn's answer is about: the list shown, or the ones detailed/compared."""
    result = state.get("result") or TurnResult()
    if result.get("kind") in ("search", "refine", "similar") and result.get("products"):
        return list(state.get("shown") or [])
    return list(result.get("products") or [])


def notices(state: State, searched: bool) -> list[str]:
    """What a client may show beside the answer (calmly)."""
    result = state.get("result") or TurnResult()
    out = []
    if searched and result.get("weak_matches"):
        out.append("weak_matches")
    if searched and result.get("backend") == "chroma":
        out.append("served_by_chroma")
    if searched and result.get("fallback_reason"):
        out.append("fallback")
    if state.get("llm_fallback_reason"):
        out.append("llm_unavailable")
    return out


@dataclass
class ChatService:
    """The graph with its checkpointer, plus session ownership and the runs this process traced."""

    settings: Settings
    deps: AgentDeps
    graph: CompiledStateGraph[State, Context, InputState, State]
    checkpointer: BaseCheckpointSaver[Any]
    checkpoint_pool: Pool | None
    sessions: SessionStore
    tracer: LangSmithClient | None = None  # None: tracing off
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _traced_runs: OrderedDict[str, None] = field(default_factory=OrderedDict)

    def config(self, user_id: str, session_id: str) -> RunnableConfig:
        """Run config: the thread and pseudonymous metadata."""
        return {
            "configurable": {"thread_id": self.sessions.thread_id(user_id, session_id)},
            "metadata": {
                "user": pseudonymise(user_id, self.settings.pseudonym_salt.get_secret_value()),
                "session_id": session_id,
            },
            "tags": ["chat"],
        }

    def model_metadata(self) -> dict[str, Any]:
        """What every turn's root run records about the models and retrieval defaults."""
        settings, context = self.settings, Context()
        chat_model = self.deps.chat_model
        chat_name = "offline"
        if chat_model is not None:
            named = getattr(chat_model, "model", None) or getattr(chat_model, "model_name", None)
            chat_name = str(named or type(chat_model).__name__)
        return {
            "embedding_model": self.deps.services.embedding_model,
            "chat_model": chat_name,
            "default_strategy": context.strategy or settings.product_search_strategy,
            "k": context.k,
            "pgvector_threshold": settings.pgvector_similarity_threshold,
            "chroma_threshold": settings.chroma_similarity_threshold,
        }

    def respond(self, state: State, session_id: str, run_id: str, started: float) -> ChatResponse:
        """The API answer from the final graph state."""
        result = state.get("result") or TurnResult()
        searched = "strategy" in result
        return ChatResponse(
            response=state.get("answer") or "",
            products=turn_products(state),
            strategy=result.get("strategy") if searched else None,
            backend=result.get("backend") if searched else None,
            fallback_reason=result.get("fallback_reason") if searched else None,
            session_id=session_id,
            run_id=run_id,
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
            intent=state.get("intent"),
            brain=state.get("brain"),
            llm_fallback=state.get("llm_fallback"),
            llm_fallback_reason=state.get("llm_fallback_reason"),
            weak_matches=bool(searched and result.get("weak_matches")),
            notices=notices(state, searched),
        )

    def turn(
        self, request: ChatRequest, session_id: str, on_node: Callable[[str, str], None] | None = None
    ) -> ChatResponse:
        """Run one turn through the graph under its traced root run; `on_node(node, run_id)` streams progress."""
        started = time.perf_counter()
        config = self.config(request.user_id, session_id)
        inputs: InputState = {"messages": [HumanMessage(request.message)]}
        meta = {**self.model_metadata(), "session_id": session_id, "endpoint": "stream" if on_node else "message"}
        with tracing.traced_turn(
            self.tracer,
            self.settings,
            {"message": request.message},
            user_id=request.user_id,
            thread_id=config["configurable"]["thread_id"],
            metadata=meta,
        ) as turn:
            run_id = turn.run_id or str(uuid.uuid4())  # untraced turns still get an id (feedback: not recorded)
            if on_node is None:
                state = cast(State, self.graph.invoke(inputs, config, context=Context(), durability="exit"))
            else:
                for chunk in self.graph.stream(
                    inputs, config, context=Context(), stream_mode="updates", durability="exit"
                ):
                    for node in chunk:
                        on_node(node, run_id)
                state = cast(State, self.graph.get_state(config).values)
            response = self.respond(state, session_id, run_id, started)
            figs = self.turn_figures(state, response)
            turn.tag(intent=response.intent, language=state.get("language"), **figs)
            turn.set_outputs(
                {
                    "answer": response.response,
                    "product_ids": [p["product_id"] for p in response.products],
                    "num_results": figs["num_results"],
                }
            )
        if turn.run_id is not None:
            self._remember(turn.run_id)
            feedback.record_turn_feedback(
                self.tracer,
                turn.run_id,
                mean_similarity=figs.get("mean_similarity"),
                zero_results=figs["zero_results"],
                fallback=figs["fallback"],
                latency_ms=response.latency_ms,
            )
        return response

    @staticmethod
    def turn_figures(state: State, response: ChatResponse) -> dict[str, Any]:
        """The turn's retrieval and quality figures (root-run metadata and feedback)."""
        result = state.get("result") or TurnResult()
        searched = "strategy" in result
        return {
            "strategy": response.strategy,
            "backend": response.backend,
            "fallback_reason": response.fallback_reason,
            "filters": result.get("filters") if searched else None,
            **figures(response.products),
            "zero_results": searched and not response.products,
            "fallback": bool(response.fallback_reason),
            "weak_matches": response.weak_matches if searched else None,
            "brain": response.brain,
            "llm_fallback": response.llm_fallback,
            "latency_ms": response.latency_ms,
        }

    def chat(self, request: ChatRequest) -> ChatResponse:
        """Run one turn (blocking; FastAPI runs it in its threadpool)."""
        session_id = request.session_id or uuid.uuid4().hex
        self.sessions.claim(request.user_id, session_id)
        return self.turn(request, session_id)

    def stream(self, request: ChatRequest, session_id: str) -> Iterator[dict[str, str]]:
        """Server-sent events: one `progress` per finished node, then `final` (or `error`).

        The turn runs whole in one worker thread: a traced turn's context (LangSmith's parent run) lives in
        context variables, which would not survive the generator being resumed on different threads."""
        events: queue.Queue[dict[str, str] | None] = queue.Queue()

        def progress(node: str, run_id: str) -> None:
            events.put({"event": "progress", "data": json.dumps({"node": node, "run_id": run_id})})

        def work() -> None:
            """Run the turn, queueing its events."""
            try:
                events.put({"event": "final", "data": self.turn(request, session_id, progress).model_dump_json()})
            except Exception:  # noqa: BLE001 - the stream's boundary: log it, tell the client generically
                log.exception("chat stream failed (session %s)", session_id)
                events.put({"event": "error", "data": json.dumps({"detail": "internal server error"})})
            finally:
                events.put(None)

        threading.Thread(target=work, name="chat-stream", daemon=True).start()
        while (event := events.get()) is not None:
            yield event

    def _remember(self, run_id: str) -> None:
        """Note a traced root run id (bounded)."""
        with self._lock:
            self._traced_runs[run_id] = None
            while len(self._traced_runs) > MAX_TRACKED_RUNS:
                self._traced_runs.popitem(last=False)

    def feedback(self, body: FeedbackRequest) -> FeedbackResponse | None:
        """Pass a user's rating to LangSmith; None when the run id is not a turn this process traced."""
        run_id = str(body.run_id)
        if self.tracer is None:
            return FeedbackResponse(run_id=run_id, recorded=False, detail="tracing is off: feedback not recorded")
        with self._lock:
            known = run_id in self._traced_runs
        if not known:
            return None
        feedback.record_user_feedback(
            self.tracer, run_id, body.score, body.comment, hide_text=self.settings.langsmith_hide_inputs
        )
        return FeedbackResponse(run_id=run_id, recorded=True, detail="feedback queued for LangSmith")

    def history(self, user_id: str, session_id: str) -> list[dict[str, str]]:
        """The session's messages (user and assistant)."""
        state = self.graph.get_state(self.config(user_id, session_id))
        out = []
        for m in (state.values or {}).get("messages", []):
            if isinstance(m, HumanMessage | AIMessage):
                out.append({"role": "user" if isinstance(m, HumanMessage) else "assistant", "content": str(m.content)})
        return out

    def delete(self, user_id: str, session_id: str) -> None:
        """Forget the session: its checkpoints and its ownership record."""
        self.checkpointer.delete_thread(self.sessions.thread_id(user_id, session_id))
        self.sessions.forget(user_id, session_id)

    def close(self) -> None:
        """Close the checkpointer pool."""
        if self.checkpoint_pool is not None:
            self.checkpoint_pool.close()
