"""HTTP API of the agent (FastAPI): chat (JSON and server-sent events), history, session deletion, health.

Sessions: a session id belongs to the user who first used it (table `chat_sessions`). Another user
sending the same id gets 403 and never sees its history; the LangGraph thread id is also derived
from both (`<pseudonymised user>:<session>`), so histories could not mix even without the check.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
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
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool
from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator
from sse_starlette.sse import EventSourceResponse

from agent.context import Context
from agent.graph import build_graph
from agent.service import AgentDeps
from agent.state import InputState, State
from shopagent import repository
from shopagent.bootstrap import Services, build_services
from shopagent.config import Settings, get_settings
from shopagent.tracing import pseudonymise

log = logging.getLogger(__name__)

_ID = r"^[A-Za-z0-9_.:@-]+$"


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
    # Only when the database is down at start-up (memory checkpointer): ownership kept in memory.
    _owners: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

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

    def config(self, user_id: str, session_id: str, run_id: uuid.UUID | None = None) -> RunnableConfig:
        """Run config: the thread, the LangSmith run id and pseudonymous metadata."""
        config: RunnableConfig = {
            "configurable": {"thread_id": self.thread_id(user_id, session_id)},
            "metadata": {
                "user": pseudonymise(user_id, self.settings.pseudonym_salt.get_secret_value()),
                "session_id": session_id,
            },  # fmt: skip
            "tags": ["chat"],
        }
        if run_id is not None:
            config["run_id"] = run_id
        return config

    def respond(self, state: dict[str, Any], session_id: str, run_id: uuid.UUID, started: float) -> ChatResponse:
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
            run_id=str(run_id),
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
            intent=state.get("intent"),
            brain=state.get("brain"),
            llm_fallback_reason=state.get("llm_fallback_reason"),
        )

    def chat(self, request: ChatRequest) -> ChatResponse:
        """Run one turn through the graph (blocking; FastAPI runs it in its threadpool)."""
        started = time.perf_counter()
        session_id = request.session_id or uuid.uuid4().hex
        self.claim(request.user_id, session_id)
        run_id = uuid.uuid4()
        state = self.graph.invoke(
            {"messages": [HumanMessage(request.message)]}, self.config(request.user_id, session_id, run_id),
            context=Context(), durability="exit",
        )  # fmt: skip
        return self.respond(state, session_id, run_id, started)

    def stream(self, request: ChatRequest, session_id: str) -> Iterator[dict[str, str]]:
        """Server-sent events: one `progress` per finished node, then `final` (or `error`)."""
        started = time.perf_counter()
        run_id = uuid.uuid4()
        config = self.config(request.user_id, session_id, run_id)
        try:
            for chunk in self.graph.stream(
                {"messages": [HumanMessage(request.message)]}, config, context=Context(),
                stream_mode="updates", durability="exit",
            ):  # fmt: skip
                for node in chunk:
                    yield {"event": "progress", "data": json.dumps({"node": node, "run_id": str(run_id)})}
            state = self.graph.get_state(config).values
            yield {"event": "final", "data": self.respond(state, session_id, run_id, started).model_dump_json()}
        except Exception:  # noqa: BLE001 - the stream's boundary: log it, tell the client generically
            log.exception("chat stream failed (session %s)", session_id)
            yield {"event": "error", "data": json.dumps({"detail": "internal server error"})}

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
        svc = services or build_services(cfg)
        deps = AgentDeps(svc, chat_model)
        checkpointer, pool = make_checkpointer(svc)
        chat = ChatService(cfg, deps, build_graph(checkpointer, deps), checkpointer, pool)
        _ = deps.vocabulary, deps.intent_examples  # warm up so the first user doesn't pay for it
        app.state.chat = chat
        try:
            yield
        finally:
            chat.close()
            if services is None:
                svc.close()

    app = FastAPI(
        title="shopagent",
        description="Product-search conversational agent (LangGraph over PostgreSQL + pgvector and Chroma).",
        version="0.1.0",
        lifespan=lifespan,
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

    return app
