"""HTTP API of the agent (FastAPI): chat (JSON and server-sent events), history, session deletion, health.

Sessions: a session id belongs to the user who first used it (table `chat_sessions`). Another user
sending the same id gets 403 and never sees its history; the LangGraph thread id is also derived
from both (`<pseudonymised user>:<session>`), so histories could not mix even without the check.

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
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.graph.state import CompiledStateGraph
from langsmith import Client as LangSmithClient
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool
from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator
from sse_starlette.sse import EventSourceResponse

from agent.context import Context
from agent.graph import build_graph
from agent.service import AgentDeps
from agent.state import InputState, State
from agent.web import mount_web
from shopagent import repository, tracing
from shopagent.bootstrap import Services, build_services
from shopagent.config import Settings, get_settings
from shopagent.embeddings import embedding_model_name
from shopagent.tracing import pseudonymise

log = logging.getLogger(__name__)

_ID = r"^[A-Za-z0-9_.:@-]+$"
# Root runs this process traced, for /feedback to tell a real turn from a typo (oldest forgotten first).
MAX_TRACKED_RUNS = 10_000


class ChatRequest(BaseModel):
    """One user message; `session_id` continues a conversation (a new one is created when absent)."""

    model_config = ConfigDict(extra="forbid")

    user_id: StrictStr = Field(min_length=1, max_length=200, pattern=_ID)
    message: StrictStr = Field(min_length=1)
    session_id: StrictStr | None = Field(default=None, min_length=1, max_length=200, pattern=_ID)

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        """Whitespace is not a message."""
        if not value.strip():
            raise ValueError("message must not be empty or whitespace")
        return value.strip()


class SessionRequest(BaseModel):
    """Identifies a user's session."""

    user_id: StrictStr = Field(min_length=1, max_length=200, pattern=_ID)
    session_id: StrictStr = Field(min_length=1, max_length=200, pattern=_ID)


class ProductOut(BaseModel):
    """A product in an answer."""

    product_id: str
    name: str
    price: float | None = None
    score: float | None = None
    brand: str | None = None
    similarity: float | None = None
    reason: str | None = None


class ChatResponse(BaseModel):
    """The agent's answer to one message."""

    response: str
    products: list[ProductOut]
    strategy: str | None
    backend: str | None
    fallback_reason: str | None
    session_id: str
    run_id: str
    latency_ms: float
    intent: str | None = None
    brain: str | None = None
    llm_fallback_reason: str | None = None


class FeedbackRequest(BaseModel):
    """A user's rating of one answer."""

    model_config = ConfigDict(extra="forbid")

    run_id: uuid.UUID = Field(description="The `run_id` of the chat response being rated.")
    score: float = Field(strict=True, ge=0, le=1, allow_inf_nan=False,
                         description="0 = bad answer, 1 = good answer; values in between for finer scales "
                                     "(e.g. 4 of 5 stars = 0.75).")  # fmt: skip
    comment: StrictStr | None = Field(default=None, max_length=2000, description="Optional free text.")


class FeedbackResponse(BaseModel):
    """Whether the rating was passed on to LangSmith."""

    run_id: str
    recorded: bool
    detail: str


class SessionForbiddenError(Exception):
    """The session belongs to another user."""


@dataclass
class ChatService:
    """The graph with its checkpointer, plus session ownership; owned by the app's lifespan."""

    settings: Settings
    deps: AgentDeps
    graph: CompiledStateGraph[State, Context, InputState, State]
    checkpointer: BaseCheckpointSaver
    checkpoint_pool: ConnectionPool | None
    tracer: LangSmithClient | None = None  # None: tracing off
    # Only when the database is down at start-up (memory checkpointer): ownership kept in memory.
    _owners: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _traced_runs: OrderedDict[str, None] = field(default_factory=OrderedDict)

    def thread_id(self, user_id: str, session_id: str) -> str:
        """LangGraph thread of a user's session (derived from both, so users never share one)."""
        return f"{pseudonymise(user_id, self.settings.pseudonym_salt.get_secret_value())}:{session_id}"

    def _owner(self, session_id: str, user_id: str | None) -> str | None:
        """Owner of a session; claims it for `user_id` when given and new."""
        pool = self.deps.services.pool
        if pool is None:
            with self._lock:
                if user_id is not None:
                    self._owners.setdefault(session_id, user_id)
                return self._owners.get(session_id)
        with pool.connection() as conn:
            if user_id is not None:
                return repository.claim_session(conn, session_id, user_id)
            return repository.session_owner(conn, session_id)

    def claim(self, user_id: str, session_id: str) -> None:
        """Use (or start) a session; another user's session raises SessionForbiddenError."""
        if self._owner(session_id, user_id) != user_id:
            raise SessionForbiddenError(session_id)

    def check(self, user_id: str, session_id: str) -> bool:
        """True if the session exists and is the user's; another user's raises; unknown is False."""
        owner = self._owner(session_id, None)
        if owner is not None and owner != user_id:
            raise SessionForbiddenError(session_id)
        return owner is not None

    def config(self, user_id: str, session_id: str) -> RunnableConfig:
        """Run config: the thread and pseudonymous metadata."""
        return {
            "configurable": {"thread_id": self.thread_id(user_id, session_id)},
            "metadata": {
                "user": pseudonymise(user_id, self.settings.pseudonym_salt.get_secret_value()),
                "session_id": session_id,
            },  # fmt: skip
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
            "embedding_model": embedding_model_name(settings, self.deps.services.embeddings),
            "chat_model": chat_name,
            "default_strategy": context.strategy or settings.product_search_strategy,
            "k": context.k,
            "pgvector_threshold": settings.pgvector_similarity_threshold,
            "chroma_threshold": settings.chroma_similarity_threshold,
        }

    def respond(self, state: dict[str, Any], session_id: str, run_id: str, started: float) -> ChatResponse:
        """The API answer from the final graph state."""
        result = state.get("result") or {}
        searched = "strategy" in result
        return ChatResponse(
            response=state.get("answer") or "",
            products=[ProductOut(**_product_fields(p)) for p in _turn_products(state)],
            strategy=result.get("strategy") if searched else None,
            backend=result.get("backend") if searched else None,
            fallback_reason=result.get("fallback_reason") if searched else None,
            session_id=session_id,
            run_id=run_id,
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
            intent=state.get("intent"),
            brain=state.get("brain"),
            llm_fallback_reason=state.get("llm_fallback_reason"),
        )

    def turn(
        self, request: ChatRequest, session_id: str, on_node: Callable[[str, str], None] | None = None
    ) -> ChatResponse:
        """Run one turn through the graph under its traced root run; `on_node(node, run_id)` streams progress."""
        started = time.perf_counter()
        config = self.config(request.user_id, session_id)
        inputs: InputState = {"messages": [HumanMessage(request.message)]}
        meta = {**self.model_metadata(), "session_id": session_id, "endpoint": "stream" if on_node else "message"}
        with tracing.traced_turn(self.tracer, self.settings, {"message": request.message}, user_id=request.user_id,
                                 thread_id=config["configurable"]["thread_id"], metadata=meta) as turn:  # fmt: skip
            run_id = turn.run_id or str(uuid.uuid4())  # untraced turns still get an id (feedback: not recorded)
            if on_node is None:
                state = self.graph.invoke(inputs, config, context=Context(), durability="exit")
            else:
                for chunk in self.graph.stream(inputs, config, context=Context(), stream_mode="updates",
                                               durability="exit"):  # fmt: skip
                    for node in chunk:
                        on_node(node, run_id)
                state = self.graph.get_state(config).values
            response = self.respond(state, session_id, run_id, started)
            figures = turn_figures(state, response)
            turn.tag(intent=response.intent, language=state.get("language"), **figures)
            turn.set_outputs({"answer": response.response, "product_ids": [p.product_id for p in response.products],
                              "num_results": figures["num_results"]})  # fmt: skip
        if turn.run_id is not None:
            self._remember(turn.run_id)
            tracing.record_turn_feedback(self.tracer, turn.run_id, mean_similarity=figures.get("mean_similarity"),
                                         zero_results=figures["zero_results"], fallback=figures["fallback"],
                                         latency_ms=response.latency_ms)  # fmt: skip
        return response

    def chat(self, request: ChatRequest) -> ChatResponse:
        """Run one turn (blocking; FastAPI runs it in its threadpool)."""
        session_id = request.session_id or uuid.uuid4().hex
        self.claim(request.user_id, session_id)
        return self.turn(request, session_id)

    def stream(self, request: ChatRequest, session_id: str) -> Iterator[dict[str, str]]:
        """Server-sent events: one `progress` per finished node, then `final` (or `error`).

        The turn runs whole in one worker thread: a traced turn's context (LangSmith's parent run) lives in
        context variables, which would not survive the generator being resumed on different threads."""
        events: queue.Queue[dict[str, str] | None] = queue.Queue()

        def work() -> None:
            """Run the turn, queueing its events."""
            try:
                progress = lambda node, run_id: events.put(  # noqa: E731
                    {"event": "progress", "data": json.dumps({"node": node, "run_id": run_id})}
                )
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
        tracing.record_user_feedback(self.tracer, run_id, body.score, body.comment,
                                     hide_text=self.settings.langsmith_hide_inputs)  # fmt: skip
        return FeedbackResponse(run_id=run_id, recorded=True, detail="feedback queued for LangSmith")

    def history(self, user_id: str, session_id: str) -> list[dict[str, str]]:
        """The session's messages (user and assistant)."""
        state = self.graph.get_state(self.config(user_id, session_id))
        out = []
        for m in (state.values or {}).get("messages", []):
            if isinstance(m, (HumanMessage, AIMessage)):
                out.append({"role": "user" if isinstance(m, HumanMessage) else "assistant", "content": str(m.content)})
        return out

    def delete(self, user_id: str, session_id: str) -> None:
        """Forget the session: its checkpoints and its ownership row."""
        self.checkpointer.delete_thread(self.thread_id(user_id, session_id))
        pool = self.deps.services.pool
        if pool is None:
            with self._lock:
                self._owners.pop(session_id, None)
            return
        with pool.connection() as conn:
            repository.delete_session(conn, session_id, user_id)

    def close(self) -> None:
        """Close the checkpointer pool."""
        if self.checkpoint_pool is not None:
            self.checkpoint_pool.close()


def _turn_products(state: dict[str, Any]) -> list[dict[str, Any]]:
    """Products this turn's answer is about: the list shown, or the ones detailed/compared."""
    result = state.get("result") or {}
    if result.get("kind") in ("search", "refine", "similar") and result.get("products"):
        return list(state.get("shown") or [])
    return list(result.get("products") or [])


def turn_figures(state: dict[str, Any], response: ChatResponse) -> dict[str, Any]:
    """The turn's retrieval and quality figures (root-run metadata and feedback)."""
    result = state.get("result") or {}
    searched = "strategy" in result
    sims = [p.similarity for p in response.products if p.similarity is not None]
    return {
        "strategy": response.strategy,
        "backend": response.backend,
        "fallback_reason": response.fallback_reason,
        "filters": result.get("filters") if searched else None,
        "num_results": len(response.products),
        "top1_similarity": sims[0] if sims else None,
        "mean_similarity": round(sum(sims) / len(sims), 4) if sims else None,
        "zero_results": searched and not response.products,
        "fallback": bool(response.fallback_reason),
        "weak_matches": bool(result.get("weak_matches")) if searched else None,
        "brain": response.brain,
        "latency_ms": response.latency_ms,
    }


def _product_fields(p: dict[str, Any]) -> dict[str, Any]:
    """ProductOut fields of a shown or detailed product."""
    return {k: p.get(k) for k in ProductOut.model_fields if k in p}


def make_checkpointer(services: Services) -> tuple[BaseCheckpointSaver, ConnectionPool | None]:
    """PostgresSaver on its own pool in the catalog database (memory when the database is down)."""
    if services.pool is None or services.dsn is None:
        log.error("database unavailable: chat history is kept in memory only")
        return InMemorySaver(), None
    pool = ConnectionPool(
        services.dsn,
        min_size=1,
        max_size=services.settings.db_pool_max_size,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        open=False,
        timeout=5,
        name="checkpointer",
    )
    pool.open(wait=True, timeout=10)
    saver = PostgresSaver(pool)  # type: ignore[arg-type]
    saver.setup()
    return saver, pool


def get_chat(request: Request) -> ChatService:
    """The app's ChatService."""
    return request.app.state.chat


Chat = Annotated[ChatService, Depends(get_chat)]


def create_app(
    settings: Settings | None = None, services: Services | None = None, chat_model: BaseChatModel | None = None
) -> FastAPI:
    """The API. Given `services` are borrowed (the caller closes them); otherwise built and closed here."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """Own the services, the checkpointer pool and the compiled graph for the app's lifetime."""
        cfg = settings or (services.settings if services else get_settings())
        tracer = tracing.configure_tracing(cfg)
        svc = services or build_services(cfg)
        deps = AgentDeps(svc, chat_model)
        checkpointer, pool = make_checkpointer(svc)
        chat = ChatService(cfg, deps, build_graph(checkpointer, deps), checkpointer, pool, tracer)
        _ = deps.vocabulary, deps.intent_examples  # warm up so the first user doesn't pay for it
        app.state.chat = chat
        log.info("LangSmith tracing %s", f"on (project {cfg.langsmith_project})" if tracer else "off")
        try:
            yield
        finally:
            try:
                chat.close()
                if services is None:
                    svc.close()
            finally:
                # Bounded: an unreachable LangSmith drops pending traces instead of holding shutdown.
                tracing.shutdown(tracer, cfg.langsmith_flush_timeout_s)
                if tracer is not None:
                    tracing.configure_tracing(cfg.model_copy(update={"langsmith_tracing": False}))

    app = FastAPI(
        title="shopagent",
        description="Product-search conversational agent (LangGraph over PostgreSQL + pgvector and Chroma).",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc come from mount_web, with assets served by the app (no CDN)
        redoc_url=None,
    )

    @app.middleware("http")
    async def catch_all(request: Request, call_next: Any) -> Any:
        """The one catch-all: log with traceback, answer a generic 500."""
        try:
            return await call_next(request)
        except Exception:  # noqa: BLE001 - boundary of the service
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            return JSONResponse({"detail": "internal server error"}, status_code=500)

    def check_length(body: ChatRequest, chat: ChatService) -> None:
        """Reject messages over settings.max_message_chars (422)."""
        limit = chat.settings.max_message_chars
        if len(body.message) > limit:
            raise HTTPException(422, detail=f"message is longer than max_message_chars ({limit} characters)")

    def forbidden() -> HTTPException:
        """403 for another user's session."""
        return HTTPException(403, detail="this session belongs to another user")

    @app.post("/api/v1/chat/message", response_model=ChatResponse, tags=["chat"])
    def chat_message(body: ChatRequest, chat: Chat) -> ChatResponse:
        """Send a message; get the answer, the products it shows and how they were retrieved."""
        check_length(body, chat)
        try:
            return chat.chat(body)
        except SessionForbiddenError:
            raise forbidden() from None

    @app.post("/api/v1/chat/message/stream", tags=["chat"])
    def chat_stream(body: ChatRequest, chat: Chat) -> EventSourceResponse:
        """Same as /message, as server-sent events: `progress` per graph step, then `final` (or `error`)."""
        check_length(body, chat)
        session_id = body.session_id or uuid.uuid4().hex
        try:
            chat.claim(body.user_id, session_id)
        except SessionForbiddenError:
            raise forbidden() from None
        return EventSourceResponse(chat.stream(body, session_id))

    @app.post(
        "/api/v1/chat/feedback",
        response_model=FeedbackResponse,
        status_code=202,
        tags=["chat"],
        responses={404: {"description": "Tracing is on but `run_id` is not a turn this server traced (recently)."}},
    )
    def chat_feedback(body: FeedbackRequest, chat: Chat) -> FeedbackResponse:
        """Rate an answer: attach the user's `score` (0 = bad .. 1 = good) and optional `comment` to the
        LangSmith run of the turn (`run_id` from the chat response), as feedback key `user_score`.

        202 `{"recorded": true}`: queued for LangSmith (sent in the background). 202 `{"recorded": false}`:
        tracing is off, nothing is stored. 404: tracing is on but the run id is not a turn this server process
        traced (the last 10,000 turns are remembered). 422: malformed run id, score outside [0, 1], comment
        over 2,000 characters. Comments are scrubbed of secrets, and hidden when LANGSMITH_HIDE_INPUTS is on."""
        result = chat.feedback(body)
        if result is None:
            raise HTTPException(404, detail="unknown run_id: not a turn traced by this server")
        return result

    @app.get("/api/v1/chat/history", tags=["chat"])
    def chat_history(
        chat: Chat,
        user_id: Annotated[str, Query(min_length=1, max_length=200, pattern=_ID)],
        session_id: Annotated[str, Query(min_length=1, max_length=200, pattern=_ID)],
    ) -> dict[str, Any]:
        """The messages of one of the user's sessions (404 if unknown, 403 if someone else's)."""
        try:
            if not chat.check(user_id, session_id):
                raise HTTPException(404, detail="unknown session")
        except SessionForbiddenError:
            raise forbidden() from None
        return {"session_id": session_id, "messages": chat.history(user_id, session_id)}

    @app.delete("/api/v1/chat/session", tags=["chat"])
    def delete_session(
        chat: Chat,
        body: SessionRequest | None = None,
        user_id: Annotated[str | None, Query(max_length=200, pattern=_ID)] = None,
        session_id: Annotated[str | None, Query(max_length=200, pattern=_ID)] = None,
    ) -> dict[str, Any]:
        """Delete one of the user's sessions (JSON body or query parameters)."""
        if body is None:
            if not user_id or not session_id:
                raise HTTPException(422, detail="user_id and session_id are required (body or query)")
            body = SessionRequest(user_id=user_id, session_id=session_id)
        try:
            if not chat.check(body.user_id, body.session_id):
                raise HTTPException(404, detail="unknown session")
        except SessionForbiddenError:
            raise forbidden() from None
        chat.delete(body.user_id, body.session_id)
        return {"deleted": True, "session_id": body.session_id}

    @app.get("/health", tags=["ops"])
    def health(chat: Chat) -> JSONResponse:
        """Database, Chroma, embedding model and LLM status; 503 when the database is down."""
        parts = chat.deps.health()
        down = [name for name, part in parts.items() if part.get("status") == "down"]
        status = "ok" if not down else ("down" if "database" in down else "degraded")
        return JSONResponse({"status": status, **parts}, status_code=503 if status == "down" else 200)

    mount_web(app)  # the chat page at /, its /static files, offline /docs and /redoc
    return app
