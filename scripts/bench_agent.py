"""Benchmark the agent through its HTTP endpoint (offline brain): turn latency, throughput at N concurrent
clients, and how often a first message "I'm looking for <query>" shows a grade-3 product in its top 5.

    python scripts/bench_agent.py [--queries data/esci-us/queries.tsv] [--labels data/esci-us/labels.tsv]
        [--only IDS_FILE] [--template "I'm looking for {}"] [--clients 8] [--requests 400] [--follow-ups]
        [--json OUT]

Runs the real app under uvicorn in this process against the configured database (DATABASE_URL, or the
embedded dev server) and Chroma. Prints figures (and writes them as JSON with --json); it is not a test.
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from tqdm import tqdm

from agent.api import create_app
from shopagent.evals.metrics import load_labels, load_queries, percentile
from shopagent.settings import PROJECT_ROOT, get_settings

DATA = PROJECT_ROOT / "data" / "esci-us"
MSG = "/api/v1/chat/message"
FOLLOW_UPS = ("tell me more about the second one", "compare 1 and 2", "cheaper")


def free_port() -> int:
    """A free local port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int) -> uvicorn.Server:
    """The app under uvicorn in a background thread; returns once it accepts requests."""
    config = uvicorn.Config(create_app(get_settings()), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.1)
    return server


def first_turns(
    client: httpx.Client, queries: dict[str, str], labels: dict[str, dict[str, int]], template: str
) -> dict[str, Any]:
    """Each query as the first message of a new session, one at a time: latency and grade-3-in-top-5."""
    latencies, server_ms, hits, sessions = [], [], 0, []
    for qid, query in tqdm(queries.items(), desc="first turns"):
        started = time.perf_counter()
        r = client.post(MSG, json={"user_id": "bench", "message": template.format(query)})
        latencies.append((time.perf_counter() - started) * 1000)
        r.raise_for_status()
        body = r.json()
        server_ms.append(body["latency_ms"])
        sessions.append(body["session_id"])
        hits += any(labels.get(qid, {}).get(p["product_id"]) == 3 for p in body["products"][:5])
    return {
        "n": len(queries),
        "grade3_in_top5": hits,
        "share": round(hits / max(len(queries), 1), 4),
        "client_ms": {"p50": round(percentile(latencies, 50), 1), "p95": round(percentile(latencies, 95), 1)},
        "server_ms_p50": round(percentile(server_ms, 50), 1),
        "sessions": sessions,
    }


def follow_ups(client: httpx.Client, sessions: list[str]) -> dict[str, float]:
    """Details / compare / refine turns in existing sessions."""
    times = []
    for sid in tqdm(sessions[:50], desc="follow-ups"):
        for message in FOLLOW_UPS:
            started = time.perf_counter()
            client.post(MSG, json={"user_id": "bench", "message": message, "session_id": sid}).raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
    return {"n": len(times), "p50": round(percentile(times, 50), 1), "p95": round(percentile(times, 95), 1)}


def throughput(base: str, messages: list[str], clients: int, requests: int) -> dict[str, Any]:
    """N clients, each with its own connection, sending first messages back to back."""
    errors = 0
    lock = threading.Lock()

    def worker(i: int) -> None:
        nonlocal errors
        with httpx.Client(base_url=base, timeout=30) as c:
            for n in range(i, requests, clients):
                body = {"user_id": f"bench-{i}", "message": messages[n % len(messages)], "session_id": uuid.uuid4().hex}
                try:
                    ok = c.post(MSG, json=body).status_code == 200
                except httpx.HTTPError:
                    ok = False
                if not ok:
                    with lock:
                        errors += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, range(clients)))
    elapsed = time.perf_counter() - started
    return {
        "clients": clients,
        "requests": requests,
        "errors": errors,
        "seconds": round(elapsed, 1),
        "requests_per_s": round(requests / elapsed, 1),
    }


def main() -> None:
    """Parse arguments, run the measurements, print (and write) the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=Path, default=DATA / "queries.tsv")
    parser.add_argument("--labels", type=Path, default=DATA / "labels.tsv")
    parser.add_argument("--only", type=Path, help="a file of query ids (one per line) to send")
    parser.add_argument("--template", default="I'm looking for {}", help="the first message, {} = the query")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients for the throughput run")
    parser.add_argument("--requests", type=int, default=400, help="requests in the throughput run (0: skip)")
    parser.add_argument("--follow-ups", action="store_true", help="also time follow-up turns (details/compare)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    queries, labels = load_queries(args.queries), load_labels(args.labels)
    if args.only:
        wanted = {line.strip() for line in args.only.read_text().splitlines() if line.strip()}
        queries = {q: t for q, t in queries.items() if q in wanted}
    port = free_port()
    server = start_server(port)
    base = f"http://127.0.0.1:{port}"
    report: dict[str, Any] = {"queries": str(args.queries), "template": args.template}
    with httpx.Client(base_url=base, timeout=60) as client:
        client.post(MSG, json={"user_id": "bench", "message": "warm up"}).raise_for_status()
        report["first_turns"] = first_turns(client, queries, labels, args.template)
        if args.follow_ups:
            report["follow_ups"] = follow_ups(client, report["first_turns"]["sessions"])
    del report["first_turns"]["sessions"]
    if args.requests:
        messages = [args.template.format(q) for q in queries.values()]
        report["throughput"] = throughput(base, messages, args.clients, args.requests)
    server.should_exit = True
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
