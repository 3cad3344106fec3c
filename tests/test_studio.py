"""LangGraph Studio: `langgraph dev` serves `product_agent` from langgraph.json, offline, and runs it
through its HTTP API (langgraph-sdk) with a per-run context; importing the graph does no work."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port, server_env, stop_processes, wait_for_http

from shopagent.settings import PROJECT_ROOT, Settings


def test_import_does_no_work() -> None:
    """Compiling the module-level graph builds no services (they are built on the first run)."""
    code = (
        "import agent.graph as g, agent.deps as s; "
        "assert s.default_deps.cache_info().currsize == 0; print(sorted(g.graph.nodes))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "understand" in out.stdout and "llm_agent" in out.stdout


@pytest.fixture(scope="module")
def studio(loaded_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`langgraph dev` on a free port, pointed at the test database and Chroma collection."""
    port = free_port()
    env = server_env(
        loaded_settings,
        LANGGRAPH_CLI_NO_ANALYTICS="1",
        LANGGRAPH_NO_VERSION_CHECK="true",
        LANGSMITH_TRACING="false",
        HF_HUB_OFFLINE="1",
        OLLAMA_BASE_URL="",
        OLLAMA_CHAT_MODEL="",
        LLM_MODEL="",
    )
    log = Path(tmp_path_factory.mktemp("studio")) / "langgraph-dev.log"
    cli = Path(sys.executable).parent / "langgraph"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(cli), "dev", "--port", str(port), "--no-browser", "--no-reload", "--config", "langgraph.json"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/ok", proc, log, timeout_s=45)
        yield url
    finally:
        stop_processes(proc)


@pytest.mark.slow
def test_langgraph_dev_runs_the_agent(studio: str) -> None:
    """Two turns on one thread through the server's API; the run context (k) is honoured."""
    from langgraph_sdk import get_sync_client

    client = get_sync_client(url=studio)
    assistants = client.assistants.search(graph_id="product_agent")
    assert assistants, "product_agent not registered"
    thread = client.threads.create()
    state = client.runs.wait(
        thread["thread_id"],
        "product_agent",
        input={"messages": [{"role": "human", "content": "I'm looking for tresemme shampoo"}]},
        context={"k": 3},
    )
    assert state["intent"] == "search" and len(state["shown"]) == 3
    assert "tresemm" in state["shown"][0]["name"].lower()
    state = client.runs.wait(
        thread["thread_id"],
        "product_agent",
        input={"messages": [{"role": "human", "content": "tell me more about the second one"}]},
    )
    assert state["intent"] == "details" and state["answer"].startswith("2. ")
    assert [m["type"] for m in state["messages"]] == ["human", "ai", "human", "ai"]
