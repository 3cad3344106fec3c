"""PostgreSQL going down under the running API and coming back (a real embedded server that the test stops and
restarts): turns are answered from Chroma without memory, saying so in English and Spanish; nothing is invented or
leaked; /health says degraded; history, deletion and the like answer 503; after the restart the very first turn
continues the conversation from its last saved state."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import start_server, stop_server
from fastapi.testclient import TestClient

from agent.api import create_app
from agent.prompts import T
from shopagent.services import Services, build_services

MSG = "/api/v1/chat/message"


@pytest.fixture
def outage(doomed: tuple[Services, Path]) -> Iterator[tuple[TestClient, Services, Path]]:
    """The API over the throwaway server's services."""
    services, data_dir = doomed
    with TestClient(create_app(services=services)) as client:
        yield client, services, data_dir


def turn(client: TestClient, user: str, message: str, session: str | None = None) -> dict[str, Any]:
    """One turn that must answer 200."""
    r = client.post(MSG, json={"user_id": user, "message": message, "session_id": session})
    assert r.status_code == 200, r.text
    return dict(r.json())


def assert_degraded(body: dict[str, Any], lang: str = "en") -> None:
    """Answered without the database, and the answer says so."""
    assert "memory_unavailable" in body["notices"], body
    assert T[lang]["memory_unavailable"] in body["response"]


@pytest.mark.slow
def test_postgres_down_then_back(outage: tuple[TestClient, Services, Path]) -> None:
    """The issue's example, end to end, plus a follow-up, Spanish, streaming, a new session, health and the
    endpoints that need the memory; then the first turn after the restart resumes the conversation."""
    client, services, data_dir = outage
    user, other = f"u-{uuid.uuid4().hex[:6]}", f"u-{uuid.uuid4().hex[:6]}"
    first = turn(client, user, "women slippers")
    session = first["session_id"]
    assert first["products"] and first["backend"] == "hybrid" and "memory_unavailable" not in first["notices"]
    second = first["products"][1]

    stop_server(data_dir)

    started = time.monotonic()
    body = turn(client, user, "ugg slippers", session)  # an existing session
    assert body["products"] and body["backend"] == "chroma" and "pgvector unavailable" in body["fallback_reason"]
    assert {"served_by_chroma", "fallback"} <= set(body["notices"])
    assert T["en"]["search_degraded"] in body["response"]
    assert all(p["similarity"] is not None for p in body["products"])
    assert_degraded(body)
    assert time.monotonic() - started < 10  # no pool timeouts stacked up

    new = turn(client, other, "slippers for women")  # a new session
    assert new["products"] and new["backend"] == "chroma"
    assert_degraded(new)

    # A follow-up cannot see the list shown before the outage: nothing of it is invented, and the answer says why.
    follow = turn(client, user, "tell me more about the second one", session)
    assert follow["intent"] == "search" and second["product_id"] not in {p["product_id"] for p in follow["products"]}
    assert second["name"] not in follow["response"] and "unavailable right now; please try" not in follow["response"]
    assert_degraded(follow)
    # Another user's session id: nothing of it is read, so nothing can leak (ownership is not checkable now).
    leak = turn(client, other, "compare the first two", session)
    assert second["name"] not in leak["response"]
    assert_degraded(leak)

    es = turn(client, user, "busco zapatillas de casa para mujer")
    assert es["products"] and T["es"]["search_degraded"] in es["response"]
    assert_degraded(es, "es")

    with client.stream("POST", f"{MSG}/stream", json={"user_id": user, "message": "warm slippers"}) as r:
        final = [json.loads(line[5:]) for line in r.iter_lines() if line.startswith("data:")][-1]
    assert r.status_code == 200 and final["products"] and "memory_unavailable" in final["notices"]

    health = client.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "degraded"
    assert health.json()["database"]["status"] == "down" and health.json()["chroma"]["status"] == "ok"
    for r in (
        client.get("/api/v1/chat/history", params={"user_id": user, "session_id": session}),
        client.delete("/api/v1/chat/session", params={"user_id": user, "session_id": session}),
    ):
        assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text

    # A service started while the database is down (here with pgvector_primary) answers the same way.
    settings = services.settings.model_copy(update={"product_search_strategy": "pgvector_primary"})
    cold = build_services(settings, services.embeddings)
    try:
        assert cold.pool is None
        with TestClient(create_app(services=cold)) as cold_client:
            body = turn(cold_client, user, "ugg slippers")
            assert body["strategy"] == "pgvector_primary" and body["backend"] == "chroma" and body["products"]
            assert_degraded(body)
            assert cold_client.get("/health").json()["status"] == "degraded"
    finally:
        cold.close()

    start_server(data_dir)

    # The first turn after the restart: memory is back, and the conversation resumes where it was saved.
    resumed = turn(client, user, "tell me more about the second one", session)
    assert "memory_unavailable" not in resumed["notices"], resumed
    assert resumed["response"].startswith(f"2. {second['name']}")
    history = client.get("/api/v1/chat/history", params={"user_id": user, "session_id": session})
    users = [m["content"] for m in history.json()["messages"] if m["role"] == "user"]
    assert users == ["women slippers", "tell me more about the second one"]  # turns of the outage were not kept
    assert client.get("/health").json()["status"] == "ok"
    assert turn(client, user, "ugg slippers", session)["backend"] == "hybrid"

    # A restart that no request saw: the pooled connections are all stale, and the first turn still succeeds.
    stop_server(data_dir)
    start_server(data_dir)
    after = turn(client, user, "compare the first two", session)
    assert "memory_unavailable" not in after["notices"] and after["intent"] == "compare", after
