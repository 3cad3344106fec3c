"""LangSmith tracing checked on the wire: the real langsmith client posts to a recording server.

Covers the run tree of real searches (nesting + metadata), feedback, pseudonymised users, hidden
text, secret scrubbing, LangGraph nesting, tracing off, and a bounded exit when LangSmith is down.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any, TypedDict

import langsmith_recorder as recorder_module
import pytest
from langsmith import run_trees
from langsmith_recorder import LangSmithRecorder
from pydantic import SecretStr

from shopagent.domain import SearchOptions
from shopagent.observability import feedback, tracing
from shopagent.observability.privacy import HIDDEN, REDACTED, TraceScrubber, pseudonymise, scrub_secrets
from shopagent.services import Services
from shopagent.settings import PROJECT_ROOT, Settings
from tests.conftest import run_search

langsmith_recorder = recorder_module.langsmith_recorder  # the shared fixtures
langsmith_env = recorder_module.langsmith_env

USER = "alice@example.com"
FLUSH_S = 10.0


@pytest.fixture
def traced(loaded_settings: Settings, langsmith_recorder: LangSmithRecorder) -> Iterator[tuple[Settings, Any]]:
    """Tracing settings pointing at the recorder, and the client made from them."""
    settings = loaded_settings.model_copy(
        update={
            "langsmith_tracing": True,
            "langsmith_api_key": SecretStr("test-key"),
            "langsmith_endpoint": langsmith_recorder.url,
            "pseudonym_salt": SecretStr("pepper"),
        }
    )
    client = tracing.make_client(settings)
    assert client is not None
    yield settings, client
    tracing.shutdown(client, 1.0)


def turn(services: Services, settings: Settings, client: Any, query: str, options: SearchOptions) -> Any:
    """One traced 'turn' that runs a search; returns (turn handle, response) after a flush."""
    with tracing.traced_turn(client, settings, {"message": query}, user_id=USER, thread_id="thread-1") as t:
        response = run_search(services, query, options)
        t.tag(intent="search", language="en")
        t.set_outputs({"answer": f"{len(response.products)} products", "num_results": len(response.products)})
    assert tracing.flush(client, FLUSH_S)
    return t, response


def metadata(run: dict[str, Any]) -> dict[str, Any]:
    """A recorded run's metadata."""
    return run.get("extra", {}).get("metadata", {})


def assert_nested(rec: LangSmithRecorder, parent: dict[str, Any], child: dict[str, Any]) -> None:
    """`child` is a direct child of `parent` in the same trace (parent id and dotted order agree)."""
    assert child["parent_run_id"] == parent["id"]
    assert child["trace_id"] == parent["trace_id"]
    assert child["dotted_order"].startswith(parent["dotted_order"] + ".")


def test_hybrid_turn_tree_and_metadata(
    services: Services, traced: tuple[Settings, Any], langsmith_recorder: LangSmithRecorder, queries: dict[str, str]
) -> None:
    """chat_turn -> product_search -> pgvector_search, fulltext_search, fusion, each with its figures."""
    settings, client = traced
    t, response = turn(services, settings, client, queries["q013"], SearchOptions(strategy="hybrid"))
    rec = langsmith_recorder
    root = rec.runs[t.run_id]
    assert root["name"] == "chat_turn" and root.get("parent_run_id") is None
    assert {"intent:search", "lang:en"} <= set(root["tags"])
    assert metadata(root)["user"] == pseudonymise(USER, "pepper") and metadata(root)["thread_id"] == "thread-1"
    [search] = rec.children(t.run_id)
    assert search["name"] == "product_search"
    assert_nested(rec, root, search)
    children = {c["name"]: c for c in rec.children(search["id"])}
    assert set(children) == {"pgvector_search", "fulltext_search", "fusion"}
    for child in children.values():
        assert_nested(rec, search, child)
    m = metadata(search)
    assert m["strategy"] == "hybrid" and m["backend"] == "hybrid" and m["k"] == 10
    assert m["num_results"] == len(response.products) > 0
    assert m["top1_similarity"] == pytest.approx(response.products[0]["similarity"], abs=1e-4)
    assert 0 < m["mean_similarity"] <= m["top1_similarity"] + 1e-9 and m["latency_ms"] > 0
    assert "fallback_reason" not in m  # None values are not recorded
    pg = metadata(children["pgvector_search"])
    assert pg["backend"] == "pgvector" and pg["threshold"] == settings.relaxed_similarity_floor and pg["k"] == 50
    assert {"num_results", "top1_similarity", "mean_similarity", "latency_ms", "filters"} <= set(pg)
    assert {"backend", "k", "num_results", "latency_ms"} <= set(metadata(children["fulltext_search"]))
    assert {"rrf_k", "weights", "num_results", "top1_similarity", "mean_similarity"} <= set(
        metadata(children["fusion"])
    )
    assert root["outputs"]["num_results"] == len(response.products)
    assert USER not in rec.raw_bodies()
    assert not any(r.compressed for r in rec.requests)  # compression is off: its sender could block exit


def test_pgvector_primary_and_forced_fallback(
    services: Services, traced: tuple[Settings, Any], langsmith_recorder: LangSmithRecorder, queries: dict[str, str]
) -> None:
    """pgvector_primary records its threshold; an impossible threshold shows the fallback to Chroma and why."""
    settings, client = traced
    rec = langsmith_recorder
    t, _ = turn(services, settings, client, queries["q024"], SearchOptions(strategy="pgvector_primary"))
    [search] = rec.children(t.run_id)
    assert [c["name"] for c in rec.children(search["id"])] == ["pgvector_search"]
    assert metadata(rec.children(search["id"])[0])["threshold"] == settings.pgvector_similarity_threshold

    t, response = turn(
        services, settings, client, queries["q024"], SearchOptions(strategy="pgvector_primary", pgvector_threshold=0.99)
    )
    [search] = rec.children(t.run_id)
    children = rec.children(search["id"])
    assert [c["name"] for c in children] == ["pgvector_search", "chroma_search", "fallback"]
    assert metadata(children[0])["num_results"] == 0 and metadata(children[0])["threshold"] == 0.99
    assert metadata(children[1])["backend"] == "chroma" and metadata(children[1])["num_results"] > 0
    fb = metadata(children[2])
    assert fb["primary"] == "pgvector" and fb["served_by"] == "chroma" and "0.99" in fb["fallback_reason"]
    assert metadata(search)["fallback_reason"] == response.fallback_reason
    assert metadata(search)["backend"] == "chroma"


def test_langgraph_nodes_nest_under_the_turn(
    services: Services, traced: tuple[Settings, Any], langsmith_recorder: LangSmithRecorder
) -> None:
    """A LangGraph graph invoked inside `traced_turn` nests its node runs (and their searches) under the root."""
    from langgraph.graph import END, START, StateGraph

    class S(TypedDict, total=False):
        """Toy state."""

        query: str
        count: int

    def retrieve(state: S) -> S:
        """A node that searches."""
        return {"count": len(run_search(services, state["query"]).products)}

    graph = StateGraph(S).add_node("retrieve", retrieve).add_edge(START, "retrieve").add_edge("retrieve", END).compile()
    settings, client = traced
    with tracing.traced_turn(client, settings, {"message": "ugg slippers"}) as t:
        graph.invoke({"query": "ugg slippers"})
    assert tracing.flush(client, FLUSH_S)
    names = [(depth, run["name"]) for depth, run in langsmith_recorder.tree(t.run_id)]
    assert names[:4] == [(0, "chat_turn"), (1, "LangGraph"), (2, "retrieve"), (3, "product_search")], names


def test_feedback_reaches_the_root_run(traced: tuple[Settings, Any], langsmith_recorder: LangSmithRecorder) -> None:
    """Turn figures and a user rating arrive as feedback on the turn's root run; comments are scrubbed."""
    settings, client = traced
    with tracing.traced_turn(client, settings, {"message": "hi"}) as t:
        pass
    feedback.record_turn_feedback(
        client, t.run_id, mean_similarity=0.61, zero_results=False, fallback=True, latency_ms=123.4
    )
    feedback.record_user_feedback(client, t.run_id, 1, "great, my db is postgresql://bob:pw@db:5432/shop")
    assert tracing.flush(client, FLUSH_S)
    got = {f["key"]: f for f in langsmith_recorder.feedback}
    assert set(got) == {"mean_similarity", "zero_results", "fallback", "latency_ms", "user_score"}
    assert all(f["run_id"] == t.run_id == f["trace_id"] for f in got.values())
    assert got["mean_similarity"]["score"] == 0.61 and got["fallback"]["score"] == 1.0
    assert got["zero_results"]["score"] == 0.0 and got["latency_ms"]["score"] == 123.4
    assert got["user_score"]["comment"] == f"great, my db is {REDACTED}"


def test_hidden_text_keeps_figures(
    services: Services, loaded_settings: Settings, langsmith_recorder: LangSmithRecorder, queries: dict[str, str]
) -> None:
    """LANGSMITH_HIDE_INPUTS: message and search text become a placeholder; numbers and strategy stay."""
    settings = loaded_settings.model_copy(
        update={
            "langsmith_tracing": True,
            "langsmith_api_key": SecretStr("test-key"),
            "langsmith_endpoint": langsmith_recorder.url,
            "langsmith_hide_inputs": True,
        }
    )
    client = tracing.make_client(settings)
    try:
        t, response = turn(services, settings, client, queries["q013"], SearchOptions(strategy="hybrid"))
        feedback.record_user_feedback(client, t.run_id, 0, "my secret shopping list", hide_text=True)
        assert tracing.flush(client, FLUSH_S)
    finally:
        tracing.shutdown(client, 1.0)
    rec = langsmith_recorder
    root = rec.runs[t.run_id]
    assert root["inputs"] == {"message": HIDDEN} and root["outputs"]["answer"] == HIDDEN
    [search] = rec.runs_named("product_search")
    m = metadata(search)
    assert search["inputs"]["query"] == HIDDEN and m["search_text"] == HIDDEN
    assert m["strategy"] == "hybrid" and m["num_results"] == len(response.products) and m["top1_similarity"] > 0
    assert root["outputs"]["num_results"] == len(response.products)
    raw = rec.raw_bodies()
    assert queries["q013"] not in raw and "shopping list" not in raw


def test_no_secrets_on_the_wire(
    services: Services, traced: tuple[Settings, Any], langsmith_recorder: LangSmithRecorder
) -> None:
    """Connection strings and keys never leave the process, even when a user types them."""
    settings, client = traced
    leaky = "postgresql://admin:hunter2@db.internal:5432/shop lsv2_pt_0123456789abcdef password=swordfish"
    turn(services, settings, client, f"water bottle {leaky}", SearchOptions(strategy="hybrid"))
    raw = langsmith_recorder.raw_bodies()
    assert "water bottle" in raw  # the text itself is traced (hiding is off) ...
    for secret in (
        "hunter2",
        "postgresql://",
        "lsv2_pt_",
        "swordfish",
        "test-key",
        "pepper",
        loaded_settings_dsn(settings),
    ):
        assert secret not in raw, secret  # ... the secrets are not


def loaded_settings_dsn(settings: Settings) -> str:
    """The test database's DSN."""
    assert settings.database_url is not None
    return settings.database_url.get_secret_value()


def test_scrubber_rules() -> None:
    """DSNs, key=value secrets, key-like tokens, secret-named fields and raw user ids are rewritten."""
    assert scrub_secrets("see postgresql+psycopg://u:p@h/db?x=1 now") == f"see {REDACTED} now"
    assert scrub_secrets("mysql://root:toor@10.0.0.1/x") == REDACTED
    assert scrub_secrets("conn: host=h password=s3cret dbname=d") == f"conn: host=h password={REDACTED} dbname=d"
    assert scrub_secrets("Authorization: Bearer abc.def") == f"Authorization: {REDACTED}"
    assert scrub_secrets("key sk-abcdefghijklmnopqrstu and lsv2_sk_123") == f"key {REDACTED} and {REDACTED}"
    assert scrub_secrets("plain text about postgres") == "plain text about postgres"
    scrub = TraceScrubber(hide_text=False, salt="s", secrets=["literal-secret"])
    out = scrub(
        {
            "api_key": "x",
            "user_id": "bob",
            "user": pseudonymise("al", "s"),
            "note": "has literal-secret",
            "n": 3,
            "nested": [{"database_url": "anything"}],
        }
    )
    assert out == {
        "api_key": REDACTED,
        "user_id": pseudonymise("bob", "s"),
        "user": pseudonymise("al", "s"),
        "note": f"has {REDACTED}",
        "n": 3,
        "nested": [{"database_url": REDACTED}],
    }
    hide = TraceScrubber(hide_text=True, salt="s")
    assert hide({"messages": [{"type": "human", "content": "hi"}], "strategy": "hybrid", "score": 0.5}) == {
        "messages": [{"type": "human", "content": HIDDEN}],
        "strategy": "hybrid",
        "score": 0.5,
    }


def test_configured_client_traces_outside_turns(
    services: Services, traced: tuple[Settings, Any], langsmith_recorder: LangSmithRecorder, langsmith_env: None
) -> None:
    """After configure_tracing, a search outside any turn goes through shopagent's client (scrubbed, uncompressed)."""
    settings, _ = traced
    client = tracing.configure_tracing(settings)
    langsmith_recorder.requests.clear()
    run_search(services, "water bottle postgresql://admin:hunter2@db/shop")
    assert tracing.flush(client, FLUSH_S)
    [run] = langsmith_recorder.runs_named("product_search")
    assert run["inputs"]["query"] == f"water bottle {REDACTED}"
    assert langsmith_recorder.requests and not any(r.compressed for r in langsmith_recorder.requests)
    tracing.shutdown(client, 1.0)


def test_tracing_off_sends_nothing(
    services: Services, loaded_settings: Settings, langsmith_recorder: LangSmithRecorder, langsmith_env: None
) -> None:
    """With LANGSMITH_TRACING=false in the settings nothing is sent, even though langsmith's env says on."""
    run_search(services, "ugg slippers")  # control: the env alone would trace this search
    done = lambda: any(r.get("end_time") for r in langsmith_recorder.runs_named("product_search"))  # noqa: E731
    assert langsmith_recorder.wait_for(done), "control failed: env tracing did not reach the recorder"
    control = run_trees.get_cached_client()
    control.flush(timeout=FLUSH_S)
    time.sleep(1.0)  # the default client's compressed sender flushes every 0.5 s
    langsmith_recorder.requests.clear()
    langsmith_recorder.runs.clear()

    settings = loaded_settings.model_copy(update={"langsmith_tracing": False, "langsmith_api_key": SecretStr("k")})
    client = tracing.configure_tracing(settings)
    assert client is None and not tracing.tracing_enabled(settings)
    run_search(services, "ugg slippers")  # outside a turn: the global switch is now off
    with tracing.traced_turn(client, settings, {"message": "ugg slippers"}, user_id=USER) as t:
        run_search(services, "ugg slippers")
    feedback.record_turn_feedback(
        client, t.run_id, mean_similarity=0.5, zero_results=False, fallback=False, latency_ms=1.0
    )
    assert t.run_id is None and tracing.flush(client, 1.0)
    control.flush(timeout=FLUSH_S)
    time.sleep(1.0)  # the default client's compressed sender flushes every 0.5 s
    control.cleanup(timeout=0)
    assert langsmith_recorder.requests == []


CHILD = textwrap.dedent("""
    import json, sys, time
    from shopagent.observability import feedback, tracing
    from shopagent.retrieval.retriever import ProductRetriever
    from shopagent.services import build_services
    from shopagent.settings import get_settings
    settings = get_settings()
    services = build_services(settings)
    client = tracing.configure_tracing(settings)
    assert client is not None
    retriever = ProductRetriever(services=services)
    retriever.search("warm up")  # outside a turn: traced through the same (daemon) client
    started = time.perf_counter()
    with tracing.traced_turn(client, settings, {"message": "ugg slippers"}, user_id="u1") as t:
        retriever.search("ugg slippers")
    turn_ms = (time.perf_counter() - started) * 1000
    feedback.record_turn_feedback(client, t.run_id, mean_similarity=0.5, zero_results=False, fallback=False,
                                 latency_ms=turn_ms)
    services.close()
    print(json.dumps({"turn_ms": turn_ms}), flush=True)
    tracing.shutdown(client, settings.langsmith_flush_timeout_s)
""")


@pytest.fixture(params=["refused", "silent"])
def dead_endpoint(request: pytest.FixtureRequest) -> Iterator[str]:
    """A LangSmith URL that refuses connections, or one that accepts them and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    if request.param == "refused":
        sock.close()
        yield f"http://127.0.0.1:{port}"
        return
    sock.listen(64)  # connections complete in the kernel backlog; nobody ever reads or answers
    yield f"http://127.0.0.1:{port}"
    sock.close()


@pytest.mark.slow
def test_dead_endpoint_does_not_hang_exit(loaded_settings: Settings, dead_endpoint: str, tmp_path) -> None:
    """A process that traced a search to a dead LangSmith exits within a bound (bounded flush, daemon senders)."""
    assert loaded_settings.database_url is not None
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "HF_HUB_OFFLINE": "1",
        "DATABASE_URL": loaded_settings.database_url.get_secret_value(),
        "CHROMA_PERSIST_DIR": str(loaded_settings.chroma_persist_dir),
        "CHROMA_COLLECTION": loaded_settings.chroma_collection,
        "LANGSMITH_TRACING": "true",
        "LANGSMITH_ENDPOINT": dead_endpoint,
        "LANGSMITH_API_KEY": "test-key",
        "LANGSMITH_FLUSH_TIMEOUT_S": "2",
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        printed = time.monotonic()
        proc.wait(timeout=60)
    finally:
        proc.kill()
    exit_s = time.monotonic() - printed
    assert proc.returncode == 0, proc.stderr.read()  # type: ignore[union-attr]
    turn_ms = json.loads(line)["turn_ms"]
    assert exit_s < 15, f"exit took {exit_s:.1f} s after the turn"
    assert turn_ms < 5_000, turn_ms  # a generous bound: the dead endpoint is never waited on inside a turn


def test_traced_turn_reraises_and_records_error(
    traced: tuple[Settings, Any], langsmith_recorder: LangSmithRecorder
) -> None:
    """An exception inside a turn propagates unchanged and the root run carries the (scrubbed) error."""
    settings, client = traced

    with pytest.raises(RuntimeError, match="boom"):
        with tracing.traced_turn(client, settings, {"message": "x"}) as t:
            raise RuntimeError("boom at postgresql://u:pw@h/db")
    assert tracing.flush(client, FLUSH_S)
    error = langsmith_recorder.runs[t.run_id]["error"]
    assert "boom" in error and "pw@h" not in error


def test_experiments_recorded(
    loaded_settings: Settings, langsmith_recorder: LangSmithRecorder, queries: dict[str, str], labels
) -> None:
    """A dataset of graded queries is created once and reused; each strategy becomes an experiment whose
    runs and ndcg/recall/mrr feedback arrive; scores match the local metrics."""
    from shopagent.evals.experiments import record_retrieval_experiments, retrieval_dataset_name
    from shopagent.evals.metrics import ndcg_at_k

    settings = loaded_settings.model_copy(
        update={"langsmith_api_key": SecretStr("test-key"), "langsmith_endpoint": langsmith_recorder.url}
    )
    subset = {q: queries[q] for q in ("q013", "q024", "q008")}
    best = {q: sorted(labels[q], key=lambda p: -labels[q][p])[:10] for q in subset}
    runs = {"hybrid": best, "pgvector_primary": {q: [] for q in subset}}
    report = record_retrieval_experiments(settings, subset, labels, runs, 10, {"k": 10})
    rec = langsmith_recorder
    assert report["dataset"] == retrieval_dataset_name(subset, labels)
    [dataset] = rec.datasets.values()
    assert dataset["name"] == report["dataset"] and len(rec.examples) == 3
    example = next(e for e in rec.examples.values() if e["inputs"]["qid"] == "q013")
    assert example["inputs"]["query"] == queries["q013"] and example["outputs"]["labels"] == labels["q013"]
    expected = round(sum(ndcg_at_k(best[q], labels[q], 10) for q in subset) / 3, 4)
    assert report["experiments"]["hybrid"]["ndcg@10"] == expected > 0
    assert report["experiments"]["pgvector_primary"] == {
        **report["experiments"]["pgvector_primary"],
        "ndcg@10": 0.0,
        "recall@10": 0.0,
        "mrr": 0.0,
    }
    keys = [f["key"] for f in rec.feedback]
    assert sorted(set(keys)) == ["mrr", "ndcg@10", "recall@10"] and len(keys) == 3 * 3 * 2
    names = {e["name"] for e in report["experiments"].values()}
    experiments = [x for x in rec.sessions.values() if x.get("reference_dataset_id") == dataset["id"]]
    assert {x["name"] for x in experiments} == names and len(names) == 2
    targets = [r for r in rec.runs.values() if r.get("parent_run_id") is None and r.get("session_name") in names]
    assert len(targets) == 3 * 2 and {r["session_name"] for r in targets} == names  # one run per query and strategy
    assert {r["reference_example_id"] for r in targets} == set(rec.examples)

    record_retrieval_experiments(settings, subset, labels, runs, 10, {"k": 10})  # again: the dataset is reused
    assert len(rec.datasets) == 1 and len(rec.examples) == 3
