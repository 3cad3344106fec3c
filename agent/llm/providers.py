"""The chat model behind the LLM brain, from the settings: one factory for every provider, and its health check.

- `ollama`: `ChatOllama` against an Ollama server (`/api/chat`);
- `openai`: `ChatOpenAI` against any OpenAI-compatible server: llama.cpp's `llama-server` (`shopagent llm-serve`),
  vLLM, LM Studio, Ollama's `/v1`, or a hosted API.

Both get the connect and read timeouts from the settings and no retries, so a request's time is bounded by its
timeout; the whole turn is bounded by `LLM_TURN_BUDGET_S` (see `agent.llm.turn`).
"""

from __future__ import annotations

from typing import Any

import httpx
from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr

from shopagent.settings import Settings

OPENAI_DEFAULT_URL = "https://api.openai.com/v1"
# Local OpenAI-compatible servers ignore the key, but the client refuses to start without one.
NO_KEY = "not-needed"


def client_timeout(settings: Settings) -> httpx.Timeout:
    """Per-request timeout: connecting, and waiting for each read (a streamed token, or a whole reply)."""
    return httpx.Timeout(settings.llm_read_timeout_s, connect=settings.llm_connect_timeout_s)


def make_chat_model(settings: Settings) -> BaseChatModel:
    """The configured chat model (temperature 0, bounded output, no retries)."""
    api_key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    match settings.llm_provider:
        case "ollama":
            from langchain_ollama import ChatOllama

            client: dict[str, Any] = {"timeout": client_timeout(settings)}
            if api_key:  # an Ollama behind an authenticating proxy
                client["headers"] = {"Authorization": f"Bearer {api_key}"}
            return ChatOllama(
                base_url=settings.llm_url,
                model=settings.llm_model or "",
                temperature=0,
                num_predict=settings.llm_max_tokens,
                client_kwargs=client,
            )
        case "openai":
            from langchain_openai import ChatOpenAI

            return ChatOpenAI(
                base_url=settings.llm_url,
                api_key=SecretStr(api_key or NO_KEY),
                model=settings.llm_model or "",
                temperature=0,
                max_completion_tokens=settings.llm_max_tokens,
                timeout=client_timeout(settings),
                max_retries=0,
                stream_usage=True,
            )
        case other:
            raise ValueError(f"LLM_PROVIDER={other!r} is not one of: ollama, openai")


def llm_health(settings: Settings) -> dict[str, Any]:
    """The LLM's status for /health: the server's model list (Ollama `/api/tags`, OpenAI `GET /models`), whether
    the configured model is on it, with a short timeout."""
    base = (settings.llm_url or OPENAI_DEFAULT_URL).rstrip("/")
    out: dict[str, Any] = {"provider": settings.llm_provider, "model": settings.llm_model, "base_url": base}
    headers = {}
    if settings.llm_api_key is not None:
        headers["Authorization"] = f"Bearer {settings.llm_api_key.get_secret_value()}"
    url = f"{base}/api/tags" if settings.llm_provider == "ollama" else f"{base}/models"
    try:
        r = httpx.get(url, headers=headers, timeout=min(2.0, settings.llm_connect_timeout_s))
        r.raise_for_status()
        body = r.json()
    except (httpx.HTTPError, ValueError) as exc:
        return {**out, "status": "down", "detail": f"{type(exc).__name__}: {exc}"}
    listed = body.get("models", []) if settings.llm_provider == "ollama" else body.get("data", [])
    names = [m.get("name") or m.get("id") for m in listed if isinstance(m, dict)]
    if settings.llm_model in names or f"{settings.llm_model}:latest" in names:
        return {**out, "status": "ok", "detail": "model served"}
    return {**out, "status": "down", "detail": f"model not served; the server lists {names[:5]}"}
