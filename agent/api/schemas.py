"""Request and response bodies of the HTTP API. Products are the one `ProductView` shape.

Free text (`message`, `comment`) is cleaned on the way in (`shopagent.text.clean_text`: no NUL or other control
characters, lone surrogates replaced): it reaches PostgreSQL, the checkpointer's JSONB, LangSmith and JSON answers.
Ids have a strict pattern instead, so a bad one is a 422 naming the field."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictStr, field_validator

from shopagent.domain import ProductView
from shopagent.text import clean_text

ID_PATTERN = r"^[A-Za-z0-9_.:@-]+$"


def _clean(value: Any) -> Any:
    """Clean strings before validation (so a message of only NUL is empty, hence 422); leave other types to it."""
    return clean_text(value) if isinstance(value, str) else value


SafeText = Annotated[StrictStr, BeforeValidator(_clean)]


class ChatRequest(BaseModel):
    """One user message; `session_id` continues a conversation (a new one is created when absent)."""

    model_config = ConfigDict(extra="forbid")

    user_id: StrictStr = Field(min_length=1, max_length=200, pattern=ID_PATTERN)
    message: SafeText = Field(min_length=1)
    session_id: StrictStr | None = Field(default=None, min_length=1, max_length=200, pattern=ID_PATTERN)

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        """Whitespace is not a message."""
        if not value.strip():
            raise ValueError("message must not be empty or whitespace")
        return value.strip()


class SessionRequest(BaseModel):
    """Identifies a user's session."""

    user_id: StrictStr = Field(min_length=1, max_length=200, pattern=ID_PATTERN)
    session_id: StrictStr = Field(min_length=1, max_length=200, pattern=ID_PATTERN)


class ChatResponse(BaseModel):
    """The agent's answer to one message.

    `products` are those the answer is about (the list shown, or the ones detailed/compared); `notices` are
    codes a client may show calmly: `weak_matches`, `served_by_chroma`, `fallback`, `llm_unavailable`,
    `memory_unavailable` (the database is down: this turn neither saw nor saved the conversation). When the LLM
    brain's answer was not used, `llm_fallback` says why (unavailable, timeout, budget, malformed_call, no_answer,
    ungrounded) and `llm_fallback_reason` in detail; the answer then comes from the offline brain."""

    response: str
    products: list[ProductView]
    strategy: str | None
    backend: str | None
    fallback_reason: str | None
    session_id: str
    run_id: str
    latency_ms: float
    intent: str | None = None
    brain: str | None = None
    llm_fallback: str | None = None
    llm_fallback_reason: str | None = None
    weak_matches: bool = False
    notices: list[str] = Field(default_factory=list)


class FeedbackRequest(BaseModel):
    """A user's rating of one answer."""

    model_config = ConfigDict(extra="forbid")

    run_id: uuid.UUID = Field(description="The `run_id` of the chat response being rated.")
    score: float = Field(
        strict=True,
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="0 = bad answer, 1 = good answer; values in between for finer scales (e.g. 4 of 5 stars = 0.75).",
    )
    comment: SafeText | None = Field(default=None, max_length=2000, description="Optional free text.")


class FeedbackResponse(BaseModel):
    """Whether the rating was passed on to LangSmith."""

    run_id: str
    recorded: bool
    detail: str
