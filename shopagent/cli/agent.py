"""Agent commands: `serve` (the HTTP API and chat page), `chat` (in the terminal, same graph and memory),
`evaluate-agent` (whole conversations through the graph) and `llm-serve` (a local chat model for the LLM brain).

Both `serve` and `chat` trace to LangSmith when LANGSMITH_TRACING=true and LANGSMITH_API_KEY are set (the app's
lifespan configures the client and flushes it, bounded, at exit); in the terminal chat `/good` and `/bad` rate
the last answer as LangSmith feedback."""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from shopagent.settings import PROJECT_ROOT, STRATEGIES, get_settings

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

log = logging.getLogger("shopagent.cli")
RATINGS = {"/good": 1.0, "/bad": 0.0}


def serve(
    host: str | None = typer.Option(None, "--host", help="default: HOST"),
    port: int | None = typer.Option(None, "--port", help="default: PORT"),
    workers: int | None = typer.Option(None, "--workers", min=1, help="worker processes (default: WORKERS)"),
) -> None:
    """Serve the chat API with uvicorn on HOST:PORT, in WORKERS processes (each builds its own app from the
    settings; sessions, turn locks and traced runs are shared through PostgreSQL)."""
    import uvicorn

    settings = get_settings()
    host, port, workers = host or settings.host, port or settings.port, workers or settings.workers
    typer.echo(
        f"shopagent chat API on http://{host}:{port} ({workers} worker{'s' if workers > 1 else ''}; OpenAPI docs: "
        "/docs). Try:\n"
        f"  curl -s http://{host}:{port}/api/v1/chat/message -H 'content-type: application/json' \\\n"
        f'       -d \'{{"user_id": "ana", "message": "I am looking for a water bottle without straw"}}\''
    )
    uvicorn.run(
        "agent.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=logging.getLogger().level,
    )


def rate(client: TestClient, run_id: str | None, score: float) -> str:
    """Send a rating of the last answer through the feedback endpoint; what happened, in words."""
    if run_id is None:
        return "(nothing to rate yet)"
    r = client.post("/api/v1/chat/feedback", json={"run_id": run_id, "score": score})
    return f"(feedback {'recorded' if r.status_code == 202 and r.json()['recorded'] else 'not recorded'})"


def chat(
    user: str = typer.Option("terminal", "--user", help="user id (sessions belong to a user)"),
    session: str | None = typer.Option(None, "--session", help="continue this session id"),
) -> None:
    """Chat in the terminal (same graph and memory as the API); an empty line or Ctrl-D quits."""
    from fastapi.testclient import TestClient

    from agent.api import create_app

    session = session or uuid.uuid4().hex
    last_run: str | None = None
    with TestClient(create_app()) as client:
        typer.echo(f"session {session} — /good or /bad rates the last answer; empty line or Ctrl-D quits")
        while True:
            try:
                message = input("you> ").strip()
            except EOFError:
                break
            if not message:
                break
            if message in RATINGS:
                typer.echo(f"agent> {rate(client, last_run, RATINGS[message])}")
                continue
            r = client.post("/api/v1/chat/message", json={"user_id": user, "message": message, "session_id": session})
            body = r.json()
            last_run = body.get("run_id")
            typer.echo("agent> " + (body["response"] if r.status_code == 200 else f"[{r.status_code}] {body}"))


def evaluate_agent(
    conversations: Path = typer.Option(PROJECT_ROOT / "data" / "eval" / "conversations.jsonl", "--conversations"),
    queries: int = typer.Option(
        0, "--queries", min=0, help="also N single-turn conversations from the dev split ('I'm looking for <query>')"
    ),
    split: Path = typer.Option(PROJECT_ROOT / "data" / "eval" / "split.json", "--split", help="query id split"),
    brain: str = typer.Option("auto", "--brain", help="llm, offline, or auto (llm when one is configured)"),
    output: Path | None = typer.Option(None, "--output", help="write the JSON report here"),
    strategy: str | None = typer.Option(None, "--strategy", help=f"one of {', '.join(STRATEGIES)}"),
    no_langsmith: bool = typer.Option(False, "--no-langsmith", help="don't record a LangSmith experiment"),
) -> None:
    """Run whole conversations through the agent and score every turn (relevant product shown, language, no
    hallucinated ids or prices, intent, action, filters) and the brain (LLM answers, fallbacks, tool-call validity,
    latency p50/p95); with LANGSMITH_API_KEY set, also a LangSmith dataset and experiment."""
    from agent.context import Context
    from agent.evaluation import evaluate_local, record_experiment, run_settings
    from shopagent.evals.conversations import load_conversations, query_conversations, to_table
    from shopagent.evals.metrics import load_labels, load_queries
    from shopagent.services import build_services

    if strategy is not None and strategy not in STRATEGIES:
        raise typer.BadParameter(f"{strategy!r} is not one of {', '.join(STRATEGIES)}", param_hint="--strategy")
    if brain not in ("llm", "offline", "auto"):
        raise typer.BadParameter(f"{brain!r} is not one of llm, offline, auto", param_hint="--brain")
    settings = get_settings()
    if brain == "llm" and not settings.llm_enabled:
        raise typer.BadParameter(
            "no chat model is configured (LLM_PROVIDER, LLM_BASE_URL, LLM_MODEL)", param_hint="--brain"
        )
    convs = load_conversations(conversations)
    singles = []
    if queries:
        data = PROJECT_ROOT / "data" / "esci-us"
        dev = json.loads(split.read_text(encoding="utf-8"))["dev"][:queries]
        singles = query_conversations(load_queries(data / "queries.tsv"), load_labels(data / "labels.tsv"), dev)
    services = build_services(settings)
    context = Context(strategy=strategy, use_llm=brain != "offline")
    try:
        report = evaluate_local(services, convs, context)
        if singles:
            report["queries"] = evaluate_local(services, singles, context)
        report["settings"] = run_settings(settings, services, context)
        if settings.langsmith_api_key is not None and not no_langsmith:
            report["langsmith"] = record_experiment(settings, services, convs, context)
    finally:
        services.close()
    typer.echo(to_table(report))
    if singles:
        typer.echo(f"\nsingle-turn queries (dev split, first {queries}):\n{to_table(report['queries'])}")
    if output:
        output.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
        typer.echo(f"report written to {output}")


def llm_serve(ctx: typer.Context) -> None:
    """Serve a local chat model (llama.cpp, OpenAI API), building/assembling it into the cache first if needed;
    arguments go to `python -m shopagent.llm_server` (`shopagent llm-serve --help-server` lists them)."""
    from shopagent.llm_server import main

    args = ["--help" if arg == "--help-server" else arg for arg in ctx.args]
    raise typer.Exit(main(args))


def register(app: typer.Typer) -> None:
    """Add this module's commands."""
    app.command("serve")(serve)
    app.command("chat")(chat)
    app.command("evaluate-agent")(evaluate_agent)
    app.command("llm-serve", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(llm_serve)
