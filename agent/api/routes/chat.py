"""Chat routes: a message (JSON or server-sent events), history, session deletion, feedback."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from sse_starlette.sse import EventSourceResponse

from agent.api.deps import Chat
from agent.api.schemas import (
    ID_PATTERN,
    ChatRequest,
    ChatResponse,
    FeedbackRequest,
    FeedbackResponse,
    SessionRequest,
)

router = APIRouter(prefix="/api/v1/chat", tags=["chat"])


def _check_length(body: ChatRequest, chat: Chat) -> None:
    """Reject messages over settings.max_message_chars (422)."""
    limit = chat.settings.max_message_chars
    if len(body.message) > limit:
        raise HTTPException(422, detail=f"message is longer than max_message_chars ({limit} characters)")


def _owned(chat: Chat, user_id: str, session_id: str) -> None:
    """404 for an unknown session (403 for another user's: SessionForbiddenError)."""
    if not chat.sessions.check(user_id, session_id):
        raise HTTPException(404, detail="unknown session")


# Statuses every turn endpoint can answer besides 200 and 422 (see agent.api.errors).
TURN_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "The session belongs to another user."},
    409: {
        "description": "An earlier message of this session is still being answered after TURN_WAIT_TIMEOUT_S "
        "(turns of a session run one at a time, in order); retry after `Retry-After` seconds."
    },
}


@router.post("/message", response_model=ChatResponse, responses=TURN_RESPONSES)
def chat_message(body: ChatRequest, chat: Chat) -> ChatResponse:
    """Send a message; get the answer, the products it shows and how they were retrieved. Messages of one session
    are answered one at a time, in order. With the database down the answer comes from Chroma without the
    conversation's memory (notice `memory_unavailable`)."""
    _check_length(body, chat)
    return chat.chat(body)


@router.post("/message/stream", responses=TURN_RESPONSES)
def chat_stream(body: ChatRequest, chat: Chat) -> EventSourceResponse:
    """Same as /message, as server-sent events: `progress` per graph step, then `final` (or `error`)."""
    _check_length(body, chat)
    return EventSourceResponse(chat.stream(body))


# What needs the conversation memory answers 503 while the database is down.
MEMORY_RESPONSES: dict[int | str, dict[str, Any]] = {
    503: {"description": "The database is unavailable; retry after `Retry-After` seconds."}
}


@router.post(
    "/feedback",
    response_model=FeedbackResponse,
    status_code=202,
    responses={
        404: {"description": "Tracing is on but `run_id` is not a turn this service traced (in the last 30 days)."},
        **MEMORY_RESPONSES,
    },
)
def chat_feedback(body: FeedbackRequest, chat: Chat) -> FeedbackResponse:
    """Rate an answer: attach the user's `score` (0 = bad .. 1 = good) and optional `comment` to the
    LangSmith run of the turn (`run_id` from the chat response), as feedback key `user_score`.

    202 `{"recorded": true}`: queued for LangSmith (sent in the background). 202 `{"recorded": false}`:
    tracing is off, nothing is stored. 404: tracing is on but the run id is not a turn this service traced
    (any worker; run ids are kept in PostgreSQL for 30 days; turns answered while the database was down are not
    kept). 422: malformed run id, score outside [0, 1], comment over 2,000 characters. Comments are scrubbed of
    secrets, and hidden when LANGSMITH_HIDE_INPUTS is on."""
    result = chat.feedback(body)
    if result is None:
        raise HTTPException(404, detail="unknown run_id: not a turn traced by this service")
    return result


@router.get("/history", responses=MEMORY_RESPONSES)
def chat_history(
    chat: Chat,
    user_id: Annotated[str, Query(min_length=1, max_length=200, pattern=ID_PATTERN)],
    session_id: Annotated[str, Query(min_length=1, max_length=200, pattern=ID_PATTERN)],
) -> dict[str, Any]:
    """The messages of one of the user's sessions (404 if unknown, 403 if someone else's)."""
    _owned(chat, user_id, session_id)
    return {"session_id": session_id, "messages": chat.history(user_id, session_id)}


@router.delete("/session", responses=MEMORY_RESPONSES)
def delete_session(
    chat: Chat,
    body: SessionRequest | None = None,
    user_id: Annotated[str | None, Query(max_length=200, pattern=ID_PATTERN)] = None,
    session_id: Annotated[str | None, Query(max_length=200, pattern=ID_PATTERN)] = None,
) -> dict[str, Any]:
    """Delete one of the user's sessions (JSON body or query parameters), after its turn in flight if any."""
    if body is None:
        if not user_id or not session_id:
            raise HTTPException(422, detail="user_id and session_id are required (body or query)")
        body = SessionRequest(user_id=user_id, session_id=session_id)
    _owned(chat, body.user_id, body.session_id)
    chat.delete(body.user_id, body.session_id)
    return {"deleted": True, "session_id": body.session_id}
