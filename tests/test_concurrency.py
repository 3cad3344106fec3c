"""Overlapping turns of one session are enqueued (one at a time, in arrival order) on a PostgreSQL advisory lock:
no turn that answered 200 is missing from the history, on the JSON and the streaming endpoint; a delete waits for
the turn in flight and stays a delete; a turn that cannot get its turn in time gets 409 with Retry-After."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agent.api import create_app
from agent.api.chat import ChatService
from shopagent.services import Services

MSG = "/api/v1/chat/message"
FIVE = ("a desk lamp", "a yoga mat", "a leather belt", "a coffee mug", "a dog leash")


@pytest.fixture(scope="module")
def client(services: Services) -> Iterator[TestClient]:
    """One app for the module (a short wait for a busy session, for the 409 case)."""
    settings = services.settings.model_copy(update={"turn_wait_timeout_s": 2.0})
    with TestClient(create_app(settings=settings, services=services)) as c:
        yield c


def post(client: TestClient, user: str, session: str, message: str) -> tuple[int, dict[str, Any]]:
    """A JSON turn: (status, body)."""
    r = client.post(MSG, json={"user_id": user, "message": message, "session_id": session})
    return r.status_code, r.json()


def stream(client: TestClient, user: str, session: str, message: str) -> tuple[int, dict[str, Any]]:
    """A streamed turn: (status, the final event's data)."""
    with client.stream("POST", f"{MSG}/stream", json={"user_id": user, "message": message, "session_id": session}) as r:
        data = [json.loads(line[5:]) for line in r.iter_lines() if line.startswith("data:")]
    return r.status_code, (data[-1] if data else {})


def user_messages(client: TestClient, user: str, session: str) -> list[str]:
    """The user messages of a session's history."""
    r = client.get("/api/v1/chat/history", params={"user_id": user, "session_id": session})
    assert r.status_code == 200, r.text
    return [m["content"] for m in r.json()["messages"] if m["role"] == "user"]


def waiting_for_lock(services: Services) -> int:
    """How many sessions wait for an advisory lock right now."""
    with services.pool.connection() as conn:
        row = conn.execute("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").fetchone()
    return int(row["n"])


def wait_until(predicate: Callable[[], bool], timeout_s: float = 20.0) -> None:
    """Poll until `predicate()` holds."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.parametrize("send", [post, stream], ids=["message", "stream"])
def test_five_at_once_are_all_kept(client: TestClient, send: Callable[..., tuple[int, dict[str, Any]]]) -> None:
    """The issue's example: after a first turn, five messages at once in the same session; every one answers 200
    and all six are in the history, each answered."""
    user, session = f"u-{uuid.uuid4().hex[:6]}", f"s-{uuid.uuid4().hex[:8]}"
    assert send(client, user, session, "I need a kitchen timer")[0] == 200
    messages = [f"I am looking for {thing}" for thing in FIVE]
    with ThreadPoolExecutor(len(messages)) as pool:
        results = list(pool.map(lambda m: send(client, user, session, m), messages))
    assert [status for status, _ in results] == [200] * 5, results
    assert all("memory_unavailable" not in body["notices"] and body["response"] for _, body in results)
    history = user_messages(client, user, session)
    assert history[0] == "I need a kitchen timer" and sorted(history[1:]) == sorted(messages)
    r = client.get("/api/v1/chat/history", params={"user_id": user, "session_id": session})
    assert [m["role"] for m in r.json()["messages"]] == ["user", "assistant"] * 6


def test_json_and_stream_overlap(client: TestClient) -> None:
    """Both endpoints follow the same rule when they overlap in one session."""
    user, session = f"u-{uuid.uuid4().hex[:6]}", f"s-{uuid.uuid4().hex[:8]}"
    jobs = [(post if i % 2 else stream, f"I am looking for {thing}") for i, thing in enumerate(FIVE)]
    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(lambda job: job[0](client, user, session, job[1]), jobs))
    assert [status for status, _ in results] == [200] * 5
    assert sorted(user_messages(client, user, session)) == sorted(m for _, m in jobs)


def test_delete_wins_over_a_turn_in_flight(client: TestClient, services: Services) -> None:
    """A turn is waiting to run (the session is busy), then the session is deleted: the delete waits for the turn,
    and the next message with that session id starts a new conversation (the old one is not brought back)."""
    chat: ChatService = client.app.state.chat  # type: ignore[attr-defined]
    user, session = f"u-{uuid.uuid4().hex[:6]}", f"s-{uuid.uuid4().hex[:8]}"
    assert post(client, user, session, "ugg slippers")[0] == 200
    busy = chat.sessions.begin(user, session)  # what a long turn in flight holds
    outcomes: dict[str, Any] = {}
    try:
        turn = threading.Thread(target=lambda: outcomes.update(turn=post(client, user, session, "leather belts")))
        turn.start()
        wait_until(lambda: waiting_for_lock(services) == 1)
        delete = threading.Thread(
            target=lambda: outcomes.update(
                delete=client.delete("/api/v1/chat/session", params={"user_id": user, "session_id": session})
            )
        )
        delete.start()
        wait_until(lambda: waiting_for_lock(services) == 2)
    finally:
        busy.release()
    turn.join(30)
    delete.join(30)
    assert outcomes["turn"][0] == 200 and outcomes["delete"].status_code == 200
    r = client.get("/api/v1/chat/history", params={"user_id": user, "session_id": session})
    assert r.status_code == 404  # the turn ran first, then the delete: nothing is left
    assert post(client, user, session, "the second one")[1]["intent"] == "search"
    assert user_messages(client, user, session) == ["the second one"]


def test_busy_session_is_409_with_retry_after(client: TestClient) -> None:
    """A turn that waits longer than TURN_WAIT_TIMEOUT_S (2 s here) for the session: 409 with Retry-After, on both
    endpoints; other sessions are not held up."""
    chat: ChatService = client.app.state.chat  # type: ignore[attr-defined]
    user, session = f"u-{uuid.uuid4().hex[:6]}", f"s-{uuid.uuid4().hex[:8]}"
    busy = chat.sessions.begin(user, session)
    try:
        for path in (MSG, f"{MSG}/stream"):
            r = client.post(path, json={"user_id": user, "message": "ugg slippers", "session_id": session})
            assert r.status_code == 409 and r.headers["retry-after"] == "1", r.text
            assert "still being answered" in r.json()["detail"]
        assert post(client, user, f"s-{uuid.uuid4().hex[:8]}", "ugg slippers")[0] == 200
    finally:
        busy.release()
    assert post(client, user, session, "ugg slippers")[0] == 200
