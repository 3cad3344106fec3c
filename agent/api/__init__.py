"""HTTP API of the agent (FastAPI): the app factory and lifespan (`app`), request/response bodies
(`schemas`), the chat service (`chat`), session ownership (`sessions`), typed dependencies (`deps`) and one
router per resource (`routes`)."""

from agent.api.app import create_app

__all__ = ["create_app"]
