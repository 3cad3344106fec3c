"""Typed dependencies of the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from agent.api.chat import ChatService


def get_chat(request: Request) -> ChatService:
    """The app's ChatService (made by the lifespan)."""
    service: ChatService = request.app.state.chat
    return service


Chat = Annotated[ChatService, Depends(get_chat)]
