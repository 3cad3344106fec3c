"""`python -m agent serve` runs the HTTP API; `python -m agent chat` is a terminal chat.

Both trace to LangSmith when LANGSMITH_TRACING=true and LANGSMITH_API_KEY are set (the app's lifespan
configures the client and flushes it, bounded, at exit); in the terminal chat `/good` and `/bad` rate the
last answer as LangSmith feedback."""

from __future__ import annotations

import argparse
import logging
import sys
import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi.testclient import TestClient


def serve(args: argparse.Namespace) -> None:
    """Serve the API with uvicorn on settings.host:settings.port (overridable)."""
    import uvicorn

    from agent.api import create_app
    from shopagent.config import get_settings

    settings = get_settings()
    host, port = args.host or settings.host, args.port or settings.port
    sys.stdout.write(
        f"shopagent chat API on http://{host}:{port} (OpenAPI docs: /docs). Try:\n"
        f"  curl -s http://{host}:{port}/api/v1/chat/message -H 'content-type: application/json' \\\n"
        f'       -d \'{{"user_id": "ana", "message": "I am looking for a water bottle without straw"}}\'\n'
    )
    sys.stdout.flush()
    uvicorn.run(create_app(settings), host=host, port=port,
                log_level=args.log_level.lower())  # fmt: skip


def chat(args: argparse.Namespace) -> None:
    """Read messages from stdin and print the agent's answers (same graph and memory as the API)."""
    from fastapi.testclient import TestClient

    from agent.api import create_app

    session = args.session or uuid.uuid4().hex
    last_run: str | None = None
    with TestClient(create_app()) as client:
        sys.stdout.write(f"session {session} — /good or /bad rates the last answer; empty line or Ctrl-D quits\n")
        while True:
            try:
                message = input("you> ").strip()
            except EOFError:
                break
            if not message:
                break
            if message in RATINGS:
                sys.stdout.write(f"agent> {rate(client, last_run, RATINGS[message])}\n")
                continue
            r = client.post("/api/v1/chat/message",
                            json={"user_id": args.user, "message": message, "session_id": session})  # fmt: skip
            body = r.json()
            last_run = body.get("run_id")
            text = body["response"] if r.status_code == 200 else f"[{r.status_code}] {body.get('detail')}"
            sys.stdout.write(f"agent> {text}\n")


RATINGS = {"/good": 1.0, "/bad": 0.0}


def rate(client: TestClient, run_id: str | None, score: float) -> str:
    """Send a rating of the last answer through the feedback endpoint; what happened, in words."""
    if run_id is None:
        return "(nothing to rate yet)"
    r = client.post("/api/v1/chat/feedback", json={"run_id": run_id, "score": score})
    return f"(feedback {'recorded' if r.status_code == 202 and r.json()['recorded'] else 'not recorded'})"


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the chosen command."""
    parser = argparse.ArgumentParser(prog="python -m agent", description="shopagent product agent")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="run the HTTP API (docs at /docs)")
    p_serve.add_argument("--host", help="default: settings.host")
    p_serve.add_argument("--port", type=int, help="default: settings.port")
    p_serve.set_defaults(func=serve)
    p_chat = sub.add_parser("chat", help="chat in the terminal")
    p_chat.add_argument("--user", default="terminal", help="user id (sessions belong to a user)")
    p_chat.add_argument("--session", help="continue this session id")
    p_chat.set_defaults(func=chat)
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args.func(args)


if __name__ == "__main__":
    main()
