"""The chat service behind the HTTP API: one turn through the graph under its traced root run, streaming,
history, deletion and feedback. Owned by the app's lifespan (see `agent.api.app`).

Memory: a turn runs on the graph with the Postgres checkpointer while it holds its session's lease
(`agent.api.sessions`: one turn at a time per conversation). When the database is unavailable (at the start of the
turn, or lost during it) the turn runs again on the same graph compiled without a checkpointer: it is answered from
Chroma, reads and writes no history, and its answer says that the conversation's memory is unavailable (notice
`memory_unavailable`). When the database is back the conversation continues from its last saved state.

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.graph.state import CompiledStateGraph
from langsmith import Client as LangSmithClient

from agent.api.schemas import ChatRequest, ChatResponse, FeedbackRequest, FeedbackResponse
from agent.api.sessions import SessionStore, TurnLease
from agent.context import Context
from agent.deps import AgentDeps
from agent.graph import build_graph
from agent.state import InputState, State, TurnResult, checkpoint_serde
from shopagent.db import schema
from shopagent.db.connection import DatabaseUnavailableError, Pool
from shopagent.domain import ProductView, figures
from shopagent.observability import feedback, tracing
from shopagent.observability.privacy import pseudonymise
from shopagent.services import Services
from shopagent.settings import Settings

log = logging.getLogger(__name__)

Graph = CompiledStateGraph[State, Context, InputState, State]
Event = dict[str, str]


def make_checkpointer(services: Services) -> tuple[PostgresSaver | None, Pool | None]:
    """PostgresSaver on its own pool in the catalog database; (None, None) when the database was down at start-up
    (every turn then runs without memory). Its tables are set up under the migration lock (several workers)."""
    pool = services.make_pool("checkpointer", prepare_threshold=0)
    if pool is None or services.pool is None:
        log.error("database unavailable at start-up: turns run without conversation memory")
        return None, None
    saver = PostgresSaver(pool, serde=checkpoint_serde())
    with services.pool.connection() as conn, schema.migration_lock(conn):
        saver.setup()
    return saver, pool


def turn_products(state: State) -> list[ProductView]:
    """Products this turn's answer is about: the list shown, or the ones detailed/compared."""
    result = state.get("result") or TurnResult()
    if result.get("kind") in ("search", "refine", "similar") and result.get("products"):
        return list(state.get("shown") or [])
    return list(result.get("products") or [])


def notices(state: State, searched: bool, memory: bool) -> list[str]:
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
    if not memory:
        out.append("memory_unavailable")
    return out


@dataclass
class ChatService:
    """The graph with and without its checkpointer, the session store, and the pools this service owns."""

    settings: Settings
    deps: AgentDeps
    graph: Graph | None  # with the Postgres checkpointer; None when the database was down at start-up
    stateless: Graph  # the same graph without a checkpointer: turns without memory
    checkpointer: PostgresSaver | None
    sessions: SessionStore
    tracer: LangSmithClient | None = None  # None: tracing off
    pools: tuple[Pool, ...] = ()  # closed by `close`

    @classmethod
    def create(cls, settings: Settings, deps: AgentDeps, tracer: LangSmithClient | None) -> ChatService:
        """The checkpointer and sessions pools on the catalog database (gated by its availability), and the graphs."""
        services = deps.services
        checkpointer, checkpoint_pool = make_checkpointer(services)
        session_pool = services.make_pool(
            "sessions", max_size=settings.max_concurrent_turns, timeout=settings.turn_wait_timeout_s
        )
        sessions = SessionStore(session_pool, settings.pseudonym_salt.get_secret_value(), settings.turn_wait_timeout_s)
        graph = build_graph(checkpointer, deps) if checkpointer is not None else None
        pools = tuple(p for p in (checkpoint_pool, session_pool) if p is not None)
        return cls(settings, deps, graph, build_graph(None, deps), checkpointer, sessions, tracer, pools)

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

    def respond(self, state: State, session_id: str, run_id: str, started: float, memory: bool) -> ChatResponse:
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
            notices=notices(state, searched, memory),
        )

    def turn(
        self, request: ChatRequest, lease: TurnLease, on_node: Callable[[str, str], None] | None = None
    ) -> ChatResponse:
        """Run one turn through the graph under its traced root run; `on_node(node, run_id)` streams progress."""
        started = time.perf_counter()
        session_id = lease.session_id
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
            progress = (lambda node: on_node(node, run_id)) if on_node else None
            state, memory = self._run(inputs, config, lease.memory, progress)
            response = self.respond(state, session_id, run_id, started, memory)
            figs = self.turn_figures(state, response)
            turn.tag(intent=response.intent, language=state.get("language"), memory=memory, **figs)
            turn.set_outputs(
                {
                    "answer": response.response,
                    "product_ids": [p["product_id"] for p in response.products],
                    "num_results": figs["num_results"],
                }
            )
        if turn.run_id is not None:
            if memory:
                lease.record_run(turn.run_id)
            feedback.record_turn_feedback(
                self.tracer,
                turn.run_id,
                mean_similarity=figs.get("mean_similarity"),
                zero_results=figs["zero_results"],
                fallback=figs["fallback"],
                latency_ms=response.latency_ms,
            )
        return response

    def _run(
        self, inputs: InputState, config: RunnableConfig, memory: bool, on_node: Callable[[str], None] | None
    ) -> tuple[State, bool]:
        """(final state, whether the conversation's memory served the turn): with the checkpointer when the lease
        has memory; without it when it has none, or when the database is lost during the turn."""
        if memory and self.graph is not None:
            try:
                return _invoke(self.graph, inputs, config, Context(), on_node), True
            except psycopg.OperationalError as exc:
                if not self._database_lost(exc):
                    raise
                log.warning("database lost during a turn (%s): answering without memory", type(exc).__name__)
        return _invoke(self.stateless, inputs, config, Context(memory=False), on_node), False

    def _database_lost(self, exc: psycopg.OperationalError) -> bool:
        """True if `exc` means the database is down (not a bug that happens to be an OperationalError)."""
        availability = self.deps.services.availability
        return isinstance(exc, DatabaseUnavailableError) or (availability is not None and not availability.verify())

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

    def begin(self, request: ChatRequest) -> TurnLease:
        """The lease of the request's session (a new session when it names none): waits for the session's turn in
        flight; SessionForbiddenError / SessionBusyError as the session store says."""
        return self.sessions.begin(request.user_id, request.session_id or uuid.uuid4().hex)

    def chat(self, request: ChatRequest) -> ChatResponse:
        """Run one turn (blocking; FastAPI runs it in its threadpool)."""
        lease = self.begin(request)
        try:
            return self.turn(request, lease)
        finally:
            lease.release()

    def stream(self, request: ChatRequest) -> Iterator[Event]:
        """Server-sent events: one `progress` per finished node, then `final` (or `error`).

        The lease is taken here, so 403 and 409 are still HTTP statuses; the turn then runs whole in one worker
        thread that starts at once and releases the lease (a client that leaves early never leaves its session
        locked), and a traced turn's context (LangSmith's parent run, in context variables) stays on one thread."""
        lease = self.begin(request)
        events: queue.Queue[Event | None] = queue.Queue()

        def progress(node: str, run_id: str) -> None:
            events.put({"event": "progress", "data": json.dumps({"node": node, "run_id": run_id})})

        def work() -> None:
            """Run the turn, queueing its events."""
            try:
                events.put({"event": "final", "data": self.turn(request, lease, progress).model_dump_json()})
            except Exception:  # noqa: BLE001 - the stream's boundary: log it, tell the client generically
                log.exception("chat stream failed (session %s)", lease.session_id)
                events.put({"event": "error", "data": json.dumps({"detail": "internal server error"})})
            finally:
                lease.release()
                events.put(None)

        threading.Thread(target=work, name="chat-stream", daemon=True).start()
        return _until_done(events)

    def feedback(self, body: FeedbackRequest) -> FeedbackResponse | None:
        """Pass a user's rating to LangSmith; None when the run id is not a traced turn (of any worker)."""
        run_id = str(body.run_id)
        if self.tracer is None:
            return FeedbackResponse(run_id=run_id, recorded=False, detail="tracing is off: feedback not recorded")
        if not self.sessions.run_known(run_id):
            return None
        feedback.record_user_feedback(
            self.tracer, run_id, body.score, body.comment, hide_text=self.settings.langsmith_hide_inputs
        )
        return FeedbackResponse(run_id=run_id, recorded=True, detail="feedback queued for LangSmith")

    def history(self, user_id: str, session_id: str) -> list[dict[str, str]]:
        """The session's messages (user and assistant); DatabaseUnavailableError without the database."""
        if self.graph is None:
            raise DatabaseUnavailableError("conversation memory unavailable")
        state = self.graph.get_state(self.config(user_id, session_id))
        out = []
        for m in (state.values or {}).get("messages", []):
            if isinstance(m, HumanMessage | AIMessage):
                out.append({"role": "user" if isinstance(m, HumanMessage) else "assistant", "content": str(m.content)})
        return out

    def delete(self, user_id: str, session_id: str) -> None:
        """Forget the session (its checkpoints and its ownership record) once its turn in flight is over."""
        checkpointer = self.checkpointer
        if checkpointer is None:
            raise DatabaseUnavailableError("conversation memory unavailable")
        self.sessions.forget(user_id, session_id, checkpointer.delete_thread)

    def close(self) -> None:
        """Close the pools this service opened."""
        for pool in self.pools:
            pool.close()


def _invoke(
    graph: Graph, inputs: InputState, config: RunnableConfig, context: Context, on_node: Callable[[str], None] | None
) -> State:
    """Run the graph to its final state, calling `on_node` after each node when given."""
    if on_node is None:
        return cast(State, graph.invoke(inputs, config, context=context, durability="exit"))
    state: dict[str, Any] = {}
    for mode, chunk in graph.stream(
        inputs, config, context=context, stream_mode=["updates", "values"], durability="exit"
    ):
        if mode == "updates":
            for node in cast(dict[str, Any], chunk):
                on_node(node)
        else:
            state = cast(dict[str, Any], chunk)
    return cast(State, state)


def _until_done(events: queue.Queue[Event | None]) -> Iterator[Event]:
    """The queued events until the end marker."""
    while (event := events.get()) is not None:
        yield event
