"""What the graph's nodes use: Services (search, pool, Chroma), the catalog vocabulary, the off-topic check, the
tools and the optional chat model. Built lazily on first use (never at import), once per process for Studio."""

from __future__ import annotations

import logging
import threading
from functools import cached_property, lru_cache
from typing import Any

import numpy as np
from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool

from shopagent.db import catalog
from shopagent.services import Services, build_services
from shopagent.settings import get_settings
from shopagent.understanding import Vocabulary, language
from shopagent.understanding.intent import OUT_OF_SCOPE_EXAMPLES, SHOPPING_EXAMPLES, out_of_scope_by_embedding
from tools.products import make_tools

log = logging.getLogger(__name__)


class AgentDeps:
    """Long-lived dependencies of the agent; derived data is computed once, on first use."""

    def __init__(self, services: Services, chat_model: BaseChatModel | None = None, *, use_settings_llm: bool = True):
        """`chat_model` wins; otherwise the settings' chat model when they configure one (and `use_settings_llm`)."""
        self.services = services
        self._chat_model = chat_model
        self._use_settings_llm = use_settings_llm

    @property
    def vocabulary(self) -> Vocabulary:
        """Catalog brands, categories and name words (read once by the services)."""
        return self.services.vocabulary

    def warm_up(self) -> None:
        """Load what the first turn would otherwise wait for: the vocabulary, the examples, the language models;
        and, in the background (a slow local model must not hold start-up), the chat model's prompt cache."""
        _ = self.vocabulary, self.intent_examples
        language.warm_up()
        self.services.warm_up()
        if self.chat_model is not None:
            threading.Thread(target=self.warm_up_llm, name="llm-warm-up", daemon=True).start()

    def warm_up_llm(self) -> None:
        """One request with the fixed prompt and the tool schemas (see `agent.llm.turn.warm_up`); a failure is
        only logged: the first turn then falls back as any other would."""
        from agent.llm.turn import warm_up

        if self.chat_model is None:
            return
        try:
            warm_up(self.chat_model, self.tools)
        except Exception as exc:  # noqa: BLE001 - a warm-up never fails start-up
            log.warning("chat model warm-up failed: %s: %s", type(exc).__name__, exc)

    @cached_property
    def intent_examples(self) -> tuple[np.ndarray, np.ndarray]:
        """Embedded (shopping, out-of-scope) example messages for the embedding-based scope check."""
        emb = self.services.embeddings
        return (
            np.asarray(emb.embed_documents(SHOPPING_EXAMPLES), dtype=np.float32),
            np.asarray(emb.embed_documents(OUT_OF_SCOPE_EXAMPLES), dtype=np.float32),
        )

    def off_topic(self, text: str) -> bool:
        """True when `text` is closer to off-topic examples than to shopping ones (by a margin)."""
        shopping, off_topic = self.intent_examples
        return out_of_scope_by_embedding(self.services.embeddings.embed_query(text), shopping, off_topic)

    @cached_property
    def tools(self) -> dict[str, BaseTool]:
        """The product tools bound to these services, by name (the same set for both brains)."""
        return {tool.name: tool for tool in make_tools(self.services)}

    @cached_property
    def chat_model(self) -> BaseChatModel | None:
        """The LLM brain, or None for the deterministic one."""
        if self._chat_model is not None:
            return self._chat_model
        if self._use_settings_llm and self.services.settings.llm_enabled:
            from agent.llm.providers import make_chat_model  # only the LLM path needs the provider clients

            return make_chat_model(self.services.settings)
        return None

    def health(self) -> dict[str, Any]:
        """Status of each dependency (for /health)."""
        out: dict[str, Any] = {}
        try:
            if self.services.pool is None:
                raise RuntimeError("; ".join(self.services.startup_errors) or "no database pool")
            with self.services.pool.connection(timeout=2) as conn:
                out["database"] = {"status": "ok", "coverage": _jsonable(catalog.coverage(conn))}
        except Exception as exc:  # noqa: BLE001 - health reports every failure as "down"
            out["database"] = {"status": "down", "error": f"{type(exc).__name__}: {exc}"}
        try:
            if self.services.chroma is None:
                raise RuntimeError("Chroma not configured")
            out["chroma"] = {"status": "ok", "count": self.services.chroma.count()}
        except Exception as exc:  # noqa: BLE001
            out["chroma"] = {"status": "down", "error": f"{type(exc).__name__}: {exc}"}
        settings = self.services.settings
        out["embeddings"] = {
            "status": "ok",
            "provider": settings.embedding_provider,
            "model": self.services.embedding_model,
        }
        if self._chat_model is not None:
            out["llm"] = {"status": "ok", "model": type(self._chat_model).__name__}
        elif not settings.llm_enabled:
            out["llm"] = {"status": "disabled", "brain": "deterministic"}
        else:
            from agent.llm.providers import llm_health

            out["llm"] = llm_health(settings)
        return out


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """Coverage row values as JSON-friendly scalars."""
    return {k: (v if isinstance(v, int | float | str | list | type(None)) else str(v)) for k, v in row.items()}


@lru_cache(maxsize=1)
def default_deps() -> AgentDeps:
    """The process-wide dependencies (Studio / `langgraph dev`), built on first use from the settings."""
    settings = get_settings()
    log.info("building agent services (strategy %s)", settings.product_search_strategy)
    return AgentDeps(build_services(settings))
