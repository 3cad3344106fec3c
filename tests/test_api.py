"""The HTTP API over the real graph, database and checkpointer: chat, SSE, history, sessions, health, errors."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from agent.api import create_app
from shopagent.services import Services

MSG = "/api/v1/chat/message"


@pytest.fixture(scope="module")
def client(services: Services) -> Iterator[TestClient]:
    """One app for the module (borrowed services; the lifespan owns the checkpointer and graph)."""
    with TestClient(create_app(services=services)) as c:
        yield c


def user() -> str:
    """A fresh user id."""
    return f"user-{uuid.uuid4().hex[:8]}"


def test_chat_turns_share_a_session(client: TestClient) -> None:
    """A first message creates a session; follow-ups in it resolve "the second one"."""
    u = user()
    r = client.post(MSG, json={"user_id": u, "message": "I'm looking for tresemme shampoo"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= {
        "response",
        "products",
        "strategy",
        "backend",
        "fallback_reason",
        "session_id",
        "run_id",
        "latency_ms",
    }
    assert uuid.UUID(body["run_id"]) and body["strategy"] == "hybrid" and body["latency_ms"] > 0
    assert len(body["products"]) == 5 and all("tresemm" in p["name"].lower() for p in body["products"][:3])
    assert {"product_id", "name", "price", "score"} <= set(body["products"][0])
    second = body["products"][1]
    r = client.post(
        MSG, json={"user_id": u, "message": "tell me more about the second one", "session_id": body["session_id"]}
    )
    assert r.status_code == 200 and r.json()["response"].startswith(f"2. {second['name']}")
    assert [p["product_id"] for p in r.json()["products"]] == [second["product_id"]]
    assert r.json()["products"][0]["similarity"] == second["similarity"]  # as it was shown, not null
    assert r.json()["strategy"] is None  # no search this turn


def test_sessions_are_isolated_between_users(client: TestClient) -> None:
    """Another user sending the same session id gets 403 everywhere and never sees the history."""
    alice, mallory, sid = user(), user(), f"s-{uuid.uuid4().hex[:8]}"
    assert client.post(MSG, json={"user_id": alice, "message": "ugg slippers", "session_id": sid}).status_code == 200
    r = client.post(MSG, json={"user_id": mallory, "message": "the first one", "session_id": sid})
    assert r.status_code == 403 and "another user" in r.json()["detail"]
    assert client.get("/api/v1/chat/history", params={"user_id": mallory, "session_id": sid}).status_code == 403
    r = client.request("DELETE", "/api/v1/chat/session", json={"user_id": mallory, "session_id": sid})
    assert r.status_code == 403
    r = client.get("/api/v1/chat/history", params={"user_id": alice, "session_id": sid})
    assert r.status_code == 200 and [m["role"] for m in r.json()["messages"]] == ["user", "assistant"]
    assert r.json()["messages"][0]["content"] == "ugg slippers"


def test_history_and_delete(client: TestClient) -> None:
    """History lists the turns in order; DELETE (query or body) forgets the session."""
    u, sid = user(), f"s-{uuid.uuid4().hex[:8]}"
    for message in ("hi", "leather belts"):
        assert client.post(MSG, json={"user_id": u, "message": message, "session_id": sid}).status_code == 200
    messages = client.get("/api/v1/chat/history", params={"user_id": u, "session_id": sid}).json()["messages"]
    assert [m["content"] for m in messages if m["role"] == "user"] == ["hi", "leather belts"]
    r = client.delete("/api/v1/chat/session", params={"user_id": u, "session_id": sid})
    assert r.status_code == 200 and r.json()["deleted"] is True
    assert client.get("/api/v1/chat/history", params={"user_id": u, "session_id": sid}).status_code == 404
    # The id is free again, and the new conversation starts empty.
    r = client.post(MSG, json={"user_id": u, "message": "the second one", "session_id": sid})
    assert r.status_code == 200 and r.json()["intent"] == "search"
    assert client.request("DELETE", "/api/v1/chat/session", json={"user_id": u, "session_id": sid}).status_code == 200
    assert client.delete("/api/v1/chat/session", params={"user_id": u}).status_code == 422


def test_stream_sends_progress_then_final(client: TestClient) -> None:
    """SSE: one progress event per graph node, then the final answer with products."""
    u = user()
    with client.stream("POST", f"{MSG}/stream", json={"user_id": u, "message": "tan strappy heels"}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events, event = [], None
        for line in r.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((event, json.loads(line.split(":", 1)[1])))
    names = [e for e, _ in events]
    assert names[-1] == "final" and names.count("progress") >= 3
    assert [d["node"] for e, d in events if e == "progress"][:2] == ["understand", "search"]
    final = events[-1][1]
    assert final["products"] and final["response"].startswith("Here is what I found")
    history = client.get("/api/v1/chat/history", params={"user_id": u, "session_id": final["session_id"]})
    assert len(history.json()["messages"]) == 2


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ({"user_id": "u1", "message": ""}, "at least 1 character"),
        ({"user_id": "u1", "message": "   \n "}, "empty or whitespace"),
        ({"user_id": "u1", "message": "x" * 2001}, "max_message_chars"),
        ({"message": "hello"}, "user_id"),
        ({"user_id": "u1"}, "message"),
        ({"user_id": 123, "message": "hello"}, "string"),
        ({"user_id": "u1", "message": ["hello"]}, "string"),
        ({"user_id": "u1", "message": "hello", "session_id": "../../etc"}, "pattern"),
    ],
)
def test_invalid_input_is_422(client: TestClient, payload: dict, needle: str) -> None:
    """Bad input: 422 with a message that says what is wrong (both endpoints)."""
    for path in (MSG, f"{MSG}/stream"):
        r = client.post(path, json=payload)
        assert r.status_code == 422 and needle in json.dumps(r.json()), r.text


def test_health_and_docs(client: TestClient) -> None:
    """Health reports each dependency; the OpenAPI docs are served."""
    r = client.get("/health")
    body = r.json()
    assert r.status_code == 200 and body["status"] == "ok"
    assert body["database"]["status"] == "ok" and body["database"]["coverage"]["embedded"] > 400
    assert body["chroma"]["status"] == "ok" and body["chroma"]["count"] > 400
    # The exact model the vectors come from (this suite runs the torch runtime at 64 tokens), not a setting's name.
    assert body["embeddings"]["model"] == "all-MiniLM-L6-v2@64" and body["llm"]["status"] == "disabled"
    assert client.get("/docs").status_code == 200
    assert {
        "/api/v1/chat/message",
        "/api/v1/chat/message/stream",
        "/api/v1/chat/history",
        "/api/v1/chat/session",
        "/health",
    } <= set(client.get("/openapi.json").json()["paths"])


def test_internal_error_is_a_generic_500(services: Services, caplog: pytest.LogCaptureFixture) -> None:
    """A real failure (the checkpointer's pool closed under the app): 500, no details out, traceback logged."""
    with TestClient(create_app(services=services)) as c:
        c.app.state.chat.checkpointer.conn.close()
        with caplog.at_level(logging.ERROR, logger="agent.api.errors"):
            r = c.post(MSG, json={"user_id": user(), "message": "ugg slippers"})
        assert r.status_code == 500 and r.json() == {"detail": "internal server error"}
        assert "PoolClosed" not in r.text
        record = next(rec for rec in caplog.records if rec.name == "agent.api.errors")
        assert record.exc_info and "PoolClosed" in record.exc_info[0].__name__
        with c.stream("POST", f"{MSG}/stream", json={"user_id": user(), "message": "ugg slippers"}) as r:
            text = r.read().decode()
        assert "event: error" in text and "internal server error" in text
