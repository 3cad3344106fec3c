"""How failures become HTTP answers, in one place: the catch-all (logged with traceback, generic 500), and the
expected ones — 403 another user's session, 409 the session is busy (Retry-After), 503 the database is down
(Retry-After), and 422 bodies that can always be encoded (they echo the request's input, which may hold text that
UTF-8 cannot encode)."""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from agent.api.sessions import SessionBusyError, SessionForbiddenError
from shopagent.db.connection import DatabaseUnavailableError
from shopagent.text import clean_text

log = logging.getLogger(__name__)


def json_safe(value: Any) -> Any:
    """`value` with every string (and bytes, decoded leniently) cleaned so that it encodes as UTF-8 JSON."""
    if isinstance(value, bytes):
        return clean_text(value.decode("utf-8", "replace"))
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {json_safe(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return json_safe(jsonable_encoder(value))


def install(app: FastAPI) -> None:
    """Register the handlers and the catch-all on `app`."""

    @app.middleware("http")
    async def catch_all(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """The one catch-all: log with traceback, answer a generic 500."""
        try:
            return await call_next(request)
        except Exception:  # noqa: BLE001 - boundary of the service
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            return JSONResponse({"detail": "internal server error"}, status_code=500)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        """422 naming the field, with the offending input made encodable."""
        return JSONResponse({"detail": json_safe(exc.errors())}, status_code=422)

    @app.exception_handler(SessionForbiddenError)
    async def forbidden(request: Request, exc: SessionForbiddenError) -> JSONResponse:
        """403: the session belongs to another user."""
        return JSONResponse({"detail": "this session belongs to another user"}, status_code=403)

    @app.exception_handler(SessionBusyError)
    async def busy(request: Request, exc: SessionBusyError) -> JSONResponse:
        """409: the session's earlier turn is still running (or the server's turn slots are all taken)."""
        headers = {"Retry-After": str(exc.retry_after_s)}
        return JSONResponse({"detail": str(exc)}, status_code=409, headers=headers)

    @app.exception_handler(DatabaseUnavailableError)
    async def database_down(request: Request, exc: DatabaseUnavailableError) -> JSONResponse:
        """503: what was asked needs the conversation memory (PostgreSQL), which is down."""
        retry = math.ceil(request.app.state.chat.settings.db_probe_interval_s)
        detail = "the database is unavailable: conversation history cannot be read or changed right now"
        return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": str(retry)})
