"""Benchmark the agent through its HTTP endpoint (offline brain): turn latency, throughput at N concurrent
clients, and how often a first message "I'm looking for <query>" shows a grade-3 product in its top 5.

Runs the real app under uvicorn in this process against the configured database (DATABASE_URL, or the
embedded dev server) and Chroma. Prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import logging
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import uvicorn
from tqdm import tqdm

from agent.api import create_app
from shopagent.evals.metrics import load_labels, load_queries, percentile
from shopagent.settings import PROJECT_ROOT, get_settings

DATA = PROJECT_ROOT / "data" / "esci-us"
MSG = "/api/v1/chat/message"


def free_port() -> int:
    """A free local port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int) -> uvicorn.Server:
    """The app under uvicorn in a background thread; returns once it accepts requests."""
    server = uvicorn.Server(
        uvicorn.Config(create_app(get_settings()), host="127.0.0.1", port=port, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.1)
    return server


def main() -> None:
    """Parse arguments, run the three measurements, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients for the throughput run")
    parser.add_argument("--requests", type=int, default=400, help="requests in the throughput run")
    parser.add_argument("--follow-ups", action="store_true", help="also time follow-up turns (details/compare)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    queries, labels = load_queries(DATA / "queries.tsv"), load_labels(DATA / "labels.tsv")
    port = free_port()
    server = start_server(port)
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=30) as client:
        client.post(MSG, json={"user_id": "bench", "message": "warm up"}).raise_for_status()

        # 1) Latency and quality: each query as the first message of a new session, one at a time.
        latencies, server_ms, hits, sessions = [], [], 0, []
        for qid, query in tqdm(queries.items(), desc="first turns"):
            started = time.perf_counter()
            r = client.post(MSG, json={"user_id": "bench", "message": f"I'm looking for {query}"})
            latencies.append((time.perf_counter() - started) * 1000)
            r.raise_for_status()
            body = r.json()
            server_ms.append(body["latency_ms"])
            sessions.append(body["session_id"])
            top5 = [p["product_id"] for p in body["products"][:5]]
            hits += any(labels.get(qid, {}).get(pid) == 3 for pid in top5)
        follow = []
        if args.follow_ups:
            for sid in tqdm(sessions[:50], desc="follow-ups"):
                for message in ("tell me more about the second one", "compare 1 and 2", "cheaper"):
                    started = time.perf_counter()
                    client.post(
                        MSG, json={"user_id": "bench", "message": message, "session_id": sid}
                    ).raise_for_status()
                    follow.append((time.perf_counter() - started) * 1000)

    # 2) Throughput: N clients, each with its own connection, sending queries back to back.
    messages = [f"I'm looking for {q}" for q in queries.values()]
    errors = 0
    lock = threading.Lock()

    def worker(i: int) -> None:
        """One client's share of the requests."""
        nonlocal errors
        with httpx.Client(base_url=base, timeout=30) as c:
            for n in range(i, args.requests, args.clients):
                try:
                    ok = (
                        c.post(
                            MSG,
                            json={
                                "user_id": f"bench-{i}",
                                "message": messages[n % len(messages)],
                                "session_id": uuid.uuid4().hex,
                            },
                        ).status_code
                        == 200
                    )
                except httpx.HTTPError:
                    ok = False
                if not ok:
                    with lock:
                        errors += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(args.clients) as pool:
        list(pool.map(worker, range(args.clients)))
    elapsed = time.perf_counter() - started
    server.should_exit = True

    print(
        f"first-turn latency (client, n={len(latencies)}): p50 {percentile(latencies, 50):.1f} ms, "
        f"p95 {percentile(latencies, 95):.1f} ms (server-side p50 {percentile(server_ms, 50):.1f} ms)"
    )
    if follow:
        print(
            f"follow-up latency (n={len(follow)}): p50 {percentile(follow, 50):.1f} ms, "
            f"p95 {percentile(follow, 95):.1f} ms"
        )
    print(
        f"throughput: {args.requests / elapsed:.1f} req/s at {args.clients} clients "
        f"({args.requests} requests, {errors} errors, {elapsed:.1f} s)"
    )
    print(f"grade-3 product in top 5: {hits}/{len(queries)} = {hits / len(queries):.2f}")


if __name__ == "__main__":
    main()
