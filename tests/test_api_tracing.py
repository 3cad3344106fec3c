"""LangSmith tracing of the HTTP API, checked on the wire: the real app (lifespan, graph, database, Chroma)
with the real langsmith client posting to a recording server (or to nothing at all)."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import langsmith_recorder as recorder_module
import pytest
from fastapi.testclient import TestClient
from langsmith_recorder import LangSmithRecorder
from pydantic import SecretStr

from agent.api import create_app
from shopagent.embeddings.sbert import LocalMiniLMEmbeddings
from shopagent.observability import tracing
from shopagent.observability.privacy import HIDDEN, pseudonymise
from shopagent.services import Services, build_services
from shopagent.settings import Settings

langsmith_recorder = recorder_module.langsmith_recorder  # the shared fixtures
langsmith_env = recorder_module.langsmith_env

MSG = "/api/v1/chat/message"
FEEDBACK = "/api/v1/chat/feedback"
USER = "alice.smith@example.com"
SALT = "pepper"
FLUSH_S = 10.0
QUALITY_KEYS = {"mean_similarity", "zero_results", "fallback", "latency_ms"}


def traced_settings(base: Settings, endpoint: str, **overrides: Any) -> Settings:
    """`base` (the loaded slice) with tracing on to `endpoint`."""
    return base.model_copy(
        update={
            "langsmith_tracing": True,
            "langsmith_api_key": SecretStr("test-key"),
            "langsmith_endpoint": endpoint,
            "pseudonym_salt": SecretStr(SALT),
            **overrides,
        }
    )


def flush(client: TestClient) -> None:
    """Send everything the app's tracer has pending."""
    assert tracing.flush(client.app.state.chat.tracer, FLUSH_S)  # type: ignore[attr-defined]


def metadata(run: dict[str, Any]) -> dict[str, Any]:
    """A recorded run's metadata."""
    return run.get("extra", {}).get("metadata", {})


def names(rec: LangSmithRecorder, run_id: str) -> list[tuple[int, str]]:
    """(depth, name) of a run and its descendants, depth-first."""
    return [(depth, run["name"]) for depth, run in rec.tree(run_id)]


def feedback_for(rec: LangSmithRecorder, run_id: str) -> dict[str, dict[str, Any]]:
    """Feedback recorded for a run, by key."""
    return {f["key"]: f for f in list(rec.feedback) if f["run_id"] == run_id}


@pytest.fixture
def traced_client(
    services: Services, loaded_settings: Settings, langsmith_recorder: LangSmithRecorder
) -> Iterator[TestClient]:
    """The app with tracing on to the recorder (borrowed services over the loaded slice)."""
    with TestClient(create_app(traced_settings(loaded_settings, langsmith_recorder.url), services)) as c:
        yield c


def test_chat_turn_trace_tree_metadata_and_feedback(
    traced_client: TestClient, langsmith_recorder: LangSmithRecorder
) -> None:
    """One turn: root run == response run_id, nodes/tool/backends/fusion/answer nested, figures and tags,
    quality feedback, then the user's rating through /feedback; the raw user id never leaves."""
    rec = langsmith_recorder
    r = traced_client.post(MSG, json={"user_id": USER, "message": "I'm looking for tresemme shampoo"})
    assert r.status_code == 200, r.text
    body = r.json()
    run_id = body["run_id"]
    flush(traced_client)

    root = rec.runs[run_id]
    assert root["name"] == "chat_turn" and root.get("parent_run_id") is None and root["trace_id"] == run_id
    assert {"intent:search", "lang:en"} <= set(root["tags"])
    tree = names(rec, run_id)
    assert tree[:2] == [(0, "chat_turn"), (1, "product_agent")], tree
    assert [n for d, n in tree if d == 2] == ["understand", "search", "respond"], tree
    search_node = next(run for _, run in rec.tree(run_id) if run["name"] == "search")
    below_search = names(rec, search_node["id"])
    assert below_search == [
        (0, "search"),
        (1, "search_products"),
        (2, "product_search"),
        (3, "pgvector_search"),
        (3, "fulltext_search"),
        (3, "fusion"),
    ], below_search
    [tool] = rec.runs_named("search_products")
    assert tool["run_type"] == "tool" and "services" not in tool["inputs"]
    assert rec.runs_named("pgvector_search")[0]["run_type"] == "retriever"

    m = metadata(root)
    assert m["user"] == pseudonymise(USER, SALT) and m["thread_id"].startswith(m["user"] + ":")
    assert m["intent"] == "search" and m["language"] == "en" and m["endpoint"] == "message"
    assert m["strategy"] == body["strategy"] == "hybrid" and m["backend"] == body["backend"]
    assert m["embedding_model"].startswith("all-MiniLM-L6-v2") and m["chat_model"] == "offline"
    assert m["k"] == 5 and m["num_results"] == len(body["products"]) == 5
    assert m["pgvector_threshold"] == m["chroma_threshold"] == 0.39 and m["filters"] == {}
    sims = [p["similarity"] for p in body["products"]]
    assert m["top1_similarity"] == sims[0] and m["mean_similarity"] == pytest.approx(sum(sims) / 5, abs=1e-4)
    assert m["latency_ms"] == body["latency_ms"] > 0 and m["brain"] == "rules"
    assert "fallback_reason" not in m and m["fallback"] is False and m["zero_results"] is False
    assert root["outputs"]["product_ids"] == [p["product_id"] for p in body["products"]]

    understand = rec.runs_named("understand")[0]
    assert {"intent:search", "lang:en"} <= set(understand["tags"]) and metadata(understand)["intent"] == "search"
    node_keys = set(metadata(search_node))
    assert {"strategy", "backend", "k", "filters", "num_results", "top1_similarity", "mean_similarity"} <= node_keys
    respond = metadata(rec.runs_named("respond")[0])
    assert respond["kind"] == "search" and respond["num_products"] == 5
    pg = metadata(rec.runs_named("pgvector_search")[0])
    assert {
        "backend",
        "threshold",
        "k",
        "filters",
        "num_results",
        "top1_similarity",
        "mean_similarity",
        "latency_ms",
    } <= set(pg)
    assert {"rrf_k", "num_results", "mean_similarity"} <= set(metadata(rec.runs_named("fusion")[0]))

    assert rec.wait_for(lambda: QUALITY_KEYS <= set(feedback_for(rec, run_id)))
    quality = feedback_for(rec, run_id)
    assert quality["mean_similarity"]["score"] == m["mean_similarity"] and quality["fallback"]["score"] == 0.0
    assert quality["zero_results"]["score"] == 0.0 and quality["latency_ms"]["score"] == body["latency_ms"]

    r = traced_client.post(FEEDBACK, json={"run_id": run_id, "score": 1, "comment": "spot on"})
    assert r.status_code == 202 and r.json()["recorded"] is True, r.text
    flush(traced_client)
    user = feedback_for(rec, run_id)["user_score"]
    assert user["score"] == 1.0 and user["comment"] == "spot on" and user["trace_id"] == run_id

    raw = rec.raw_bodies()
    assert USER not in raw and "alice" not in raw and pseudonymise(USER, SALT) in raw
    assert "test-key" not in raw


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"run_id": "not-a-uuid", "score": 1}, 422),
        ({"score": 1}, 422),
        ({"run_id": "{run}", "score": 1.5}, 422),
        ({"run_id": "{run}", "score": -0.1}, 422),
        ({"run_id": "{run}", "score": "1"}, 422),
        ({"run_id": "{run}", "score": True}, 422),
        ({"run_id": "{run}", "score": 1, "comment": "x" * 2001}, 422),
        ({"run_id": "{run}", "score": 1, "extra": 1}, 422),
        ({"run_id": str(uuid.uuid4()), "score": 1}, 404),
    ],
)
def test_feedback_validation(
    traced_client: TestClient, langsmith_recorder: LangSmithRecorder, payload: dict[str, Any], status: int
) -> None:
    """Bad ratings are 422; a well-formed run id this server never traced is 404; nothing is sent for them."""
    run_id = traced_client.post(MSG, json={"user_id": "u1", "message": "ugg slippers"}).json()["run_id"]
    payload = {k: (run_id if v == "{run}" else v) for k, v in payload.items()}
    r = traced_client.post(FEEDBACK, json=payload)
    assert r.status_code == status, r.text
    flush(traced_client)
    assert "user_score" not in {f["key"] for f in langsmith_recorder.feedback}


def test_stream_is_traced_like_chat(traced_client: TestClient, langsmith_recorder: LangSmithRecorder) -> None:
    """SSE turns get the same root run; its id is in every progress event and the final answer."""
    rec = langsmith_recorder
    with traced_client.stream("POST", f"{MSG}/stream", json={"user_id": USER, "message": "tan strappy heels"}) as r:
        data = [json.loads(line.split(":", 1)[1]) for line in r.iter_lines() if line.startswith("data:")]
    final = data[-1]
    run_id = final["run_id"]
    assert final["products"] and {d["run_id"] for d in data[:-1]} == {run_id}
    flush(traced_client)
    root = rec.runs[run_id]
    assert root["name"] == "chat_turn" and root.get("parent_run_id") is None
    assert metadata(root)["endpoint"] == "stream" and {"intent:search", "lang:en"} <= set(root["tags"])
    tree = names(rec, run_id)
    assert {(2, "understand"), (2, "search"), (2, "respond"), (4, "product_search")} <= set(tree), tree
    assert rec.wait_for(lambda: QUALITY_KEYS <= set(feedback_for(rec, run_id)))
    assert USER not in rec.raw_bodies()


def test_fallback_turn_and_follow_up_tools(
    loaded_settings: Settings, embeddings: LocalMiniLMEmbeddings, langsmith_recorder: LangSmithRecorder
) -> None:
    """pgvector_primary with an impossible threshold: the fallback run and reason are traced and the fallback
    feedback is 1; a follow-up "compare" turn traces its tool."""
    rec = langsmith_recorder
    settings = traced_settings(
        loaded_settings, rec.url, product_search_strategy="pgvector_primary", pgvector_similarity_threshold=0.99
    )
    services = build_services(settings, embeddings)
    try:
        with TestClient(create_app(settings, services)) as c:
            first = c.post(MSG, json={"user_id": USER, "message": "ugg slippers for women"}).json()
            second = c.post(
                MSG, json={"user_id": USER, "message": "compare 1 and 2", "session_id": first["session_id"]}
            ).json()
            flush(c)
    finally:
        services.close()
    root = rec.runs[first["run_id"]]
    m = metadata(root)
    assert m["strategy"] == "pgvector_primary" and m["backend"] == "chroma" and "0.99" in m["fallback_reason"]
    assert "fallback" in {n for _, n in names(rec, first["run_id"])}
    [fb] = rec.runs_named("fallback")
    assert metadata(fb)["primary"] == "pgvector" and metadata(fb)["served_by"] == "chroma"
    assert rec.wait_for(lambda: "fallback" in feedback_for(rec, first["run_id"]))
    assert feedback_for(rec, first["run_id"])["fallback"]["score"] == 1.0
    assert "intent:compare" in rec.runs[second["run_id"]]["tags"]
    tree = names(rec, second["run_id"])
    assert (2, "compare") in tree and (3, "compare_products") in tree, tree
    assert not any(n == "product_search" for _, n in tree)


def test_hidden_inputs_never_leave(
    services: Services, loaded_settings: Settings, langsmith_recorder: LangSmithRecorder
) -> None:
    """LANGSMITH_HIDE_INPUTS: neither the message nor a feedback comment is sent; figures still are."""
    rec = langsmith_recorder
    message = "please find tresemme shampoo for my curls"
    settings = traced_settings(loaded_settings, rec.url, langsmith_hide_inputs=True)
    with TestClient(create_app(settings, services)) as c:
        body = c.post(MSG, json={"user_id": USER, "message": message}).json()
        r = c.post(FEEDBACK, json={"run_id": body["run_id"], "score": 0, "comment": "my private remark"})
        assert r.status_code == 202 and r.json()["recorded"] is True
        flush(c)
    root = rec.runs[body["run_id"]]
    assert root["inputs"] == {"message": HIDDEN} and root["outputs"]["answer"] == HIDDEN
    assert metadata(root)["num_results"] == len(body["products"]) > 0 and metadata(root)["strategy"] == "hybrid"
    assert feedback_for(rec, body["run_id"])["user_score"]["comment"] == HIDDEN
    raw = rec.raw_bodies()
    assert message not in raw and "curls" not in raw and "private remark" not in raw and USER not in raw


def test_tracing_off_sends_nothing(
    services: Services, loaded_settings: Settings, langsmith_recorder: LangSmithRecorder, langsmith_env: None
) -> None:
    """Settings say off (though langsmith's env says on): no request reaches the recorder and /feedback says
    not recorded; the response still carries a run id."""
    settings = loaded_settings.model_copy(
        update={
            "langsmith_tracing": False,
            "langsmith_api_key": SecretStr("k"),
            "langsmith_endpoint": langsmith_recorder.url,
        }
    )
    with TestClient(create_app(settings, services)) as c:
        body = c.post(MSG, json={"user_id": USER, "message": "ugg slippers"}).json()
        assert uuid.UUID(body["run_id"]) and body["products"]
        with c.stream("POST", f"{MSG}/stream", json={"user_id": USER, "message": "leather belts"}) as r:
            assert "event: final" in r.read().decode()
        r = c.post(FEEDBACK, json={"run_id": body["run_id"], "score": 1})
        assert r.status_code == 202 and r.json()["recorded"] is False and "tracing is off" in r.json()["detail"]
    time.sleep(1.0)  # langsmith's default sender would flush within 0.5 s
    assert langsmith_recorder.requests == []


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A LangSmith URL that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # connections complete in the kernel backlog; nobody ever reads or answers
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def test_black_hole_endpoint_neither_slows_turns_nor_hangs_shutdown(
    services: Services, loaded_settings: Settings, black_hole: str
) -> None:
    """A silent LangSmith: turns and feedback answer promptly and app shutdown completes within a bound."""
    settings = traced_settings(loaded_settings, black_hole, langsmith_flush_timeout_s=2.0)
    client = TestClient(create_app(settings, services))
    client.__enter__()
    try:
        for message in ("ugg slippers", "tresemme shampoo", "leather belts"):
            started = time.perf_counter()
            body = client.post(MSG, json={"user_id": USER, "message": message}).json()
            assert (time.perf_counter() - started) < 3.0 and body["products"]
        started = time.perf_counter()
        assert client.post(FEEDBACK, json={"run_id": body["run_id"], "score": 1}).status_code == 202
        assert time.perf_counter() - started < 1.0
    finally:
        started = time.perf_counter()
        client.__exit__(None, None, None)
        shutdown_s = time.perf_counter() - started
    assert shutdown_s < 10.0, f"shutdown took {shutdown_s:.1f} s"
