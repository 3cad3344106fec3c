"""Operations: health of every dependency."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from agent.api.deps import Chat

router = APIRouter(tags=["ops"])


# With none of these up, no turn can be answered.
SEARCH_STORES = ("database", "chroma")


@router.get("/health")
def health(chat: Chat) -> JSONResponse:
    """Database, Chroma, embedding model and LLM status. `ok`; `degraded` (200) when a part is down but turns are
    still answered (database down: from Chroma, without conversation memory); `down` (503) when neither the database
    nor Chroma answers."""
    parts = chat.deps.health()
    down = [name for name, part in parts.items() if part.get("status") == "down"]
    status = "ok" if not down else ("down" if all(s in down for s in SEARCH_STORES) else "degraded")
    return JSONResponse({"status": status, **parts}, status_code=503 if status == "down" else 200)
