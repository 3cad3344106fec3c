"""Operations: health of every dependency."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from agent.api.deps import Chat

router = APIRouter(tags=["ops"])


@router.get("/health")
def health(chat: Chat) -> JSONResponse:
    """Database, Chroma, embedding model and LLM status; 503 when the database is down."""
    parts = chat.deps.health()
    down = [name for name, part in parts.items() if part.get("status") == "down"]
    status = "ok" if not down else ("down" if "database" in down else "degraded")
    return JSONResponse({"status": status, **parts}, status_code=503 if status == "down" else 200)
