"""Measure what LangSmith tracing costs a search: off, on to a local recording server, on to a dead endpoint.

    python scripts/bench_tracing.py [--queries data/esci-us/queries.tsv] [--n 60] [--rounds 3] [--strategy hybrid]
                                    [--agent]

Each search runs as a traced turn (root run + product_search and its backend runs); with --agent,
each query is a whole agent turn instead (agent.graph without LLM or checkpointer). Modes run in
blocks, one client at a time, repeated for `--rounds` rounds (so load drift hits every mode alike);
the recording server runs in its own process, as LangSmith would. Prints p50/p95 per mode, the
overhead against tracing off, and the bounded shutdown flush. Uses the configured database
(DATABASE_URL, or the embedded dev server), read-only.
"""

from __future__ import annotations

import argparse
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import SecretStr
from tqdm import tqdm

from shopagent.domain import SearchOptions
from shopagent.evals.metrics import load_queries, percentile
from shopagent.observability import tracing
from shopagent.services import Services, build_services
from shopagent.settings import PROJECT_ROOT, STRATEGIES, Settings, get_settings

log = logging.getLogger("bench_tracing")

# The test suite's recording server, in a child process: prints its URL, then (when stdin closes) its run and
# request counts and the CPU seconds it spent (on this machine it competes with the benchmark for cores).
RECORDER = """
import sys, time
sys.path.insert(0, sys.argv[1])
from langsmith_recorder import start_recorder
recorder, _ = start_recorder()
print(recorder.url, flush=True)
sys.stdin.read()
print(len(recorder.runs), len(recorder.requests), round(time.process_time(), 2), flush=True)
"""


def dead_endpoints() -> tuple[str, str, socket.socket]:
    """A refused URL and a silent one (accepts, never answers); keep the returned socket open."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    refused = f"http://127.0.0.1:{probe.getsockname()[1]}"
    probe.close()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    return refused, f"http://127.0.0.1:{silent.getsockname()[1]}", silent


def traced_settings(settings: Settings, endpoint: str) -> Settings:
    """`settings` with tracing on to `endpoint`."""
    return settings.model_copy(
        update={"langsmith_tracing": True, "langsmith_endpoint": endpoint, "langsmith_api_key": SecretStr("bench-key")}
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--queries", type=Path, default=PROJECT_ROOT / "data" / "esci-us" / "queries.tsv")
    p.add_argument("--n", type=int, default=60, help="queries per mode and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--strategy", default="hybrid", choices=STRATEGIES)
    p.add_argument("--agent", action="store_true", help="time whole agent turns, not bare searches")
    return p.parse_args(argv)


def make_turn(services: Services, strategy: str, agent: bool) -> Callable[[str], object]:
    """The unit of work timed: one search, or one agent turn (graph without LLM and checkpointer)."""
    options = SearchOptions(strategy=strategy)
    if not agent:
        return lambda text: services.search.search(services.parse(text), options)
    from agent.service import AgentDeps
    from langchain_core.messages import HumanMessage

    from agent.context import Context
    from agent.graph import build_graph

    graph = build_graph(deps=AgentDeps(services, use_settings_llm=False))
    context = Context(strategy=strategy, use_llm=False)  # type: ignore[arg-type]
    return lambda text: graph.invoke({"messages": [HumanMessage(text)]}, context=context)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    recorder = subprocess.Popen(
        [sys.executable, "-c", RECORDER, str(PROJECT_ROOT / "tests")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    recorder_url = recorder.stdout.readline().strip()  # type: ignore[union-attr]
    refused, silent, silent_sock = dead_endpoints()
    modes = {
        "off": settings.model_copy(update={"langsmith_tracing": False}),
        "recorder": traced_settings(settings, recorder_url),
        "refused": traced_settings(settings, refused),
        "silent": traced_settings(settings, silent),
    }
    services = build_services(settings)
    work = make_turn(services, args.strategy, args.agent)
    queries = list(load_queries(args.queries).values())[: args.n]
    latencies: dict[str, list[float]] = {mode: [] for mode in modes}
    shutdown_s: dict[str, list[float]] = {mode: [] for mode in modes}
    try:
        with tqdm(total=args.rounds * len(modes) * len(queries), desc="searches", unit="search") as bar:
            for _ in range(args.rounds):
                for mode, mode_settings in modes.items():
                    client = tracing.make_client(mode_settings)
                    with tracing.traced_turn(client, mode_settings, {"message": "warm up"}):
                        work("warm up")
                    for text in queries:
                        started = time.perf_counter()
                        with tracing.traced_turn(client, mode_settings, {"message": text}, user_id="bench"):
                            work(text)
                        latencies[mode].append((time.perf_counter() - started) * 1000)
                        bar.update()
                    started = time.perf_counter()
                    tracing.shutdown(client, settings.langsmith_flush_timeout_s)
                    shutdown_s[mode].append(time.perf_counter() - started)
    finally:
        services.close()
        silent_sock.close()
        received, _ = recorder.communicate("")
    base50, base95 = percentile(latencies["off"], 50), percentile(latencies["off"], 95)
    runs, requests, recorder_cpu = received.split()
    print(
        f"{'agent turns' if args.agent else 'searches'}: {args.rounds} rounds x {len(queries)} queries per mode, "
        f"strategy {args.strategy}; "
        f"flush bound {settings.langsmith_flush_timeout_s} s; recorder got {runs} runs in {requests} requests "
        f"and used {recorder_cpu} s CPU"
    )
    print("| mode | p50 ms | p95 ms | p50 overhead ms | p95 overhead ms | max shutdown flush s |")
    print("|---|---|---|---|---|---|")
    for mode, values in latencies.items():
        p50, p95 = percentile(values, 50), percentile(values, 95)
        print(
            f"| {mode} | {p50:.1f} | {p95:.1f} | {p50 - base50:+.1f} | {p95 - base95:+.1f} "
            f"| {max(shutdown_s[mode]):.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
