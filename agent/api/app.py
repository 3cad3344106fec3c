"""The FastAPI app factory: the lifespan owns the services, the chat service (its checkpointer and sessions pools,
the compiled graphs) and the LangSmith client; `agent.api.errors` maps failures to statuses."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from langchain_core.language_models import BaseChatModel

from agent.api import errors
from agent.api.chat import ChatService
from agent.api.routes import chat, ops
from agent.deps import AgentDeps
from agent.web import mount_web
from shopagent import __version__
from shopagent.observability import tracing
from shopagent.services import Services, build_services
from shopagent.settings import Settings, get_settings

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None, services: Services | None = None, chat_model: BaseChatModel | None = None
) -> FastAPI:
    """The API. Given `services` are borrowed (the caller closes them); otherwise built and closed here."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """Own the services, the chat service and the LangSmith client for the app's lifetime."""
        cfg = settings or (services.settings if services else get_settings())
        tracer = tracing.configure_tracing(cfg)
        svc = services or build_services(cfg)
        deps = AgentDeps(svc, chat_model)
        service = ChatService.create(cfg, deps, tracer)
        service.sessions.forget_old_runs()
        deps.warm_up()  # so the first shopper doesn't pay for it
        app.state.chat = service
        log.info("LangSmith tracing %s", f"on (project {cfg.langsmith_project})" if tracer else "off")
        try:
            yield
        finally:
            try:
                service.close()
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
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc come from mount_web, with assets served by the app (no CDN)
        redoc_url=None,
    )
    errors.install(app)
    app.include_router(chat.router)
    app.include_router(ops.router)
    mount_web(app)  # the chat page at /, its /static files, offline /docs and /redoc
    return app
