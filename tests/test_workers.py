"""More than one worker against one database: `shopagent serve` with WORKERS=2 on one port and a second server
process on another (as two replicas behind a load balancer would be). Session ownership, the feedback endpoint's
record of traced runs and the turn lock all live in PostgreSQL, so any process answers any request."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest
from conftest import free_port, server_env, stop_processes, wait_for_http
from langsmith_recorder import LangSmithRecorder, start_recorder

from shopagent.settings import PROJECT_ROOT, Settings

MSG = "/api/v1/chat/message"


@pytest.fixture(scope="module")
def recorder() -> Iterator[LangSmithRecorder]:
    """One recording LangSmith server for the module (the servers below trace to it)."""
    rec, server = start_recorder()
    yield rec
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def servers(
    loaded_settings: Settings, recorder: LangSmithRecorder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    """(url of a 2-worker server, url of a 1-worker server, the 2-worker server's process), both on the test
    database and Chroma collection, tracing to the recorder."""
    env = server_env(
        loaded_settings, LANGSMITH_TRACING="true", LANGSMITH_API_KEY="test-key", LANGSMITH_ENDPOINT=recorder.url
    )
    logs = tmp_path_factory.mktemp("workers")
    cli = str(Path(sys.executable).parent / "shopagent")
    procs, urls = [], []
    try:
        for workers in (2, 1):
            port = free_port()
            log = logs / f"serve-{workers}.log"
            with open(log, "w") as out:
                proc = subprocess.Popen(
                    [cli, "serve", "--port", str(port)],
                    cwd=PROJECT_ROOT,
                    env={**env, "WORKERS": str(workers)},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            procs.append((proc, log))
            urls.append(f"http://127.0.0.1:{port}")
        for (proc, log), url in zip(procs, urls, strict=True):
            wait_for_http(f"{url}/health", proc, log, timeout_s=180)
        yield urls[0], urls[1], procs[0][0]
    finally:
        stop_processes(*(proc for proc, _ in procs))


def turn(url: str, user: str, message: str, session: str | None = None) -> httpx.Response:
    """One chat turn."""
    return httpx.post(f"{url}{MSG}", json={"user_id": user, "message": message, "session_id": session}, timeout=60)


@pytest.mark.slow
def test_two_workers_and_a_replica_share_everything(
    servers: tuple[str, str, subprocess.Popen[bytes]], recorder: LangSmithRecorder
) -> None:
    """WORKERS=2 runs two worker processes; ownership holds across processes (403 for another user), a rating
    reaches a process that did not serve the turn, and overlapping turns of one session sent to both are kept."""
    two, one, proc = servers
    assert len(psutil.Process(proc.pid).children()) >= 2  # uvicorn's supervisor and its workers

    alice, mallory, session = f"a-{uuid.uuid4().hex[:6]}", f"m-{uuid.uuid4().hex[:6]}", f"s-{uuid.uuid4().hex[:8]}"
    first = turn(two, alice, "ugg slippers", session)
    assert first.status_code == 200, first.text
    assert turn(one, mallory, "the first one", session).status_code == 403
    assert (
        httpx.get(f"{two}/api/v1/chat/history", params={"user_id": mallory, "session_id": session}).status_code == 403
    )
    history = httpx.get(f"{one}/api/v1/chat/history", params={"user_id": alice, "session_id": session})
    assert history.status_code == 200 and history.json()["messages"][0]["content"] == "ugg slippers"

    # Feedback for a run served by the other process.
    run_id = first.json()["run_id"]
    r = httpx.post(f"{one}/api/v1/chat/feedback", json={"run_id": run_id, "score": 1, "comment": "nice"})
    assert r.status_code == 202 and r.json()["recorded"] is True, r.text
    assert recorder.wait_for(lambda: any(f["key"] == "user_score" and f["run_id"] == run_id for f in recorder.feedback))
    r = httpx.post(f"{two}/api/v1/chat/feedback", json={"run_id": str(uuid.uuid4()), "score": 0})
    assert r.status_code == 404

    # Overlapping turns of one session, alternating between the two servers (and so across three processes).
    messages = [
        f"I am looking for {thing}" for thing in ("a desk lamp", "a yoga mat", "a leather belt", "a coffee mug")
    ]
    messages += ["I am looking for a dog leash", "I am looking for tresemme shampoo"]
    with ThreadPoolExecutor(len(messages)) as pool:
        statuses = list(
            pool.map(lambda im: turn((two, one)[im[0] % 2], alice, im[1], session).status_code, enumerate(messages))
        )
    assert statuses == [200] * len(messages)
    history = httpx.get(f"{two}/api/v1/chat/history", params={"user_id": alice, "session_id": session}).json()
    users = [m["content"] for m in history["messages"] if m["role"] == "user"]
    assert users[0] == "ugg slippers" and sorted(users[1:]) == sorted(messages)
