"""Soak test: N shoppers hold multi-turn conversations against a running chat API for T seconds.

Each shopper loops over conversations of five turns (a search from the shared queries, "tell me more about the
second one", "compare the first two", "cheaper", "more like the first one") in a new session each, one turn at a
time. Prints turns/s, p50/p95/p99 latency, errors by status, turns answered without memory, and lost turns: turns
that answered 200 with memory but are missing from their session's history at the end. Writes the figures as JSON.

`--workers W` starts `shopagent serve --workers W` on the port of `--url` (stopped at the end); otherwise the
server at `--url` must be running. `--restart-postgres-at S` restarts the embedded PostgreSQL (PG_DATA_DIR) S
seconds in, and reports how long the restart took and the time from the server accepting connections again to the
first turn answered with memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from shopagent.evals.metrics import load_queries, percentile
from shopagent.settings import PROJECT_ROOT, get_settings

log = logging.getLogger("bench_soak")
MSG = "/api/v1/chat/message"
FOLLOW_UPS = ("tell me more about the second one", "compare the first two", "cheaper", "more like the first one")


@dataclass
class Turn:
    """One turn as the shopper saw it."""

    user: str
    session: str
    message: str
    status: int | str  # HTTP status, or the exception's name
    started: float  # seconds since the soak started
    latency_ms: float
    memory: bool = True  # False: answered without the conversation's memory (database down)


@dataclass
class Restart:
    """The PostgreSQL restart: when it began and ended (seconds since the soak started)."""

    at: float
    began: float = 0.0
    accepting: float = 0.0


@dataclass
class Soak:
    """Everything measured."""

    turns: list[Turn] = field(default_factory=list)
    restart: Restart | None = None
    elapsed: float = 0.0
    lost: int = 0


async def shopper(client: httpx.AsyncClient, queries: list[str], n: int, soak: Soak, t0: float, end: float) -> None:
    """One shopper's conversations until `end`."""
    user = f"soak-{n}-{uuid.uuid4().hex[:6]}"
    i = n
    while time.monotonic() < end:
        session = uuid.uuid4().hex
        for message in (f"I'm looking for {queries[i % len(queries)]}", *FOLLOW_UPS):
            if time.monotonic() >= end:
                return
            started = time.monotonic()
            status: int | str
            memory = True
            try:
                r = await client.post(MSG, json={"user_id": user, "message": message, "session_id": session})
                status = r.status_code
                if status == 200:
                    memory = "memory_unavailable" not in r.json()["notices"]
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            latency = (time.monotonic() - started) * 1000
            soak.turns.append(Turn(user, session, message, status, started - t0, round(latency, 2), memory))
        i += len(queries) // 7 or 1


async def lost_turns(client: httpx.AsyncClient, turns: list[Turn]) -> int:
    """Turns answered 200 with memory whose message is missing from their session's history."""
    expected: dict[tuple[str, str], Counter[str]] = {}
    for t in turns:
        if t.status == 200 and t.memory:
            expected.setdefault((t.user, t.session), Counter())[t.message] += 1
    lost = 0
    for (user, session), messages in expected.items():
        r = await client.get("/api/v1/chat/history", params={"user_id": user, "session_id": session})
        kept = (
            Counter(m["content"] for m in r.json()["messages"] if m["role"] == "user") if r.status_code == 200 else {}
        )
        lost += sum(max(n - kept.get(m, 0), 0) for m, n in messages.items())
    return lost


def restart_postgres(data_dir: Path, restart: Restart, t0: float) -> None:
    """Fast shutdown of the embedded server (as `kill -INT` of the postmaster), then start it again."""
    import pgserver

    server = pgserver.get_server(data_dir, cleanup_mode=None)
    restart.began = time.monotonic() - t0
    pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user, timeout=60)
    server.ensure_postgres_running()
    restart.accepting = time.monotonic() - t0


async def run(args: argparse.Namespace) -> Soak:
    """All shoppers, and the restart when asked for."""
    queries = list(load_queries(PROJECT_ROOT / "data" / "esci-us" / "queries.tsv").values())
    soak = Soak()
    limits = httpx.Limits(max_connections=args.shoppers + 4)
    async with httpx.AsyncClient(base_url=args.url, timeout=60, limits=limits) as client:
        t0 = time.monotonic()
        if args.restart_postgres_at is not None:
            soak.restart = Restart(args.restart_postgres_at)
            timer = threading.Timer(args.restart_postgres_at, restart_postgres, (args.pg_data_dir, soak.restart, t0))
            timer.start()
        end = t0 + args.seconds
        await asyncio.gather(*(shopper(client, queries, n, soak, t0, end) for n in range(args.shoppers)))
        soak.elapsed = time.monotonic() - t0
        soak.lost = await lost_turns(client, soak.turns)
    return soak


def figures(soak: Soak, args: argparse.Namespace, load: tuple[float, float]) -> dict[str, Any]:
    """The report."""
    turns = soak.turns
    ok = [t.latency_ms for t in turns if t.status == 200]
    errors = Counter(str(t.status) for t in turns if t.status != 200)
    out: dict[str, Any] = {
        "shoppers": args.shoppers,
        "seconds": args.seconds,
        "workers": args.workers,
        "turns": len(turns),
        "turns_per_s": round(len(turns) / soak.elapsed, 1),
        "p50_ms": round(percentile(ok, 50), 1) if ok else None,
        "p95_ms": round(percentile(ok, 95), 1) if ok else None,
        "p99_ms": round(percentile(ok, 99), 1) if ok else None,
        "errors": dict(errors),
        "without_memory": sum(1 for t in turns if t.status == 200 and not t.memory),
        "lost_turns": soak.lost,
        "cpus": os.cpu_count(),
        "load_average_1m": {"start": round(load[0], 2), "end": round(load[1], 2)},
    }
    if soak.restart is not None:
        r = soak.restart
        good = [t for t in turns if t.status == 200 and t.memory and t.started >= r.accepting]
        first = min((t.started + t.latency_ms / 1000 for t in good), default=None)
        during = [t for t in turns if r.began <= t.started < r.accepting]
        out["postgres_restart"] = {
            "at_s": r.at,
            "restart_took_s": round(r.accepting - r.began, 2),
            "first_good_turn_after_s": None if first is None else round(first - r.accepting, 3),
            "turns_during_restart": len(during),
            "errors_during_restart": sum(1 for t in during if t.status != 200),
            "turns": [asdict(t) for t in turns if r.began - 1 <= t.started <= r.accepting + 3],
        }
    return out


def start_server(url: str, workers: int) -> subprocess.Popen[bytes]:
    """`shopagent serve --workers W` on the port of `url`; returns once /health answers."""
    port = str(urlsplit(url).port)
    cli = str(Path(sys.executable).parent / "shopagent")
    proc = subprocess.Popen([cli, "serve", "--port", port, "--workers", str(workers)], cwd=PROJECT_ROOT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"shopagent serve exited with {proc.returncode}")
        time.sleep(1)
    proc.terminate()
    raise SystemExit("shopagent serve did not come up in 300 s")


def main() -> None:
    """Parse arguments, (start the server,) soak, print and write the figures."""
    settings = get_settings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=f"http://127.0.0.1:{settings.port}")
    parser.add_argument("--shoppers", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=None, help="start `shopagent serve` with this many workers")
    parser.add_argument("--restart-postgres-at", type=float, default=None, metavar="S")
    parser.add_argument("--pg-data-dir", type=Path, default=settings.pg_data_dir)
    parser.add_argument("--output", type=Path, default=None, help="JSON report (default reports/soak-*.json)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    proc = start_server(args.url, args.workers) if args.workers else None
    try:
        httpx.post(f"{args.url}{MSG}", json={"user_id": "soak-warmup", "message": "ugg slippers"}, timeout=60)
        load_start = os.getloadavg()[0]
        soak = asyncio.run(run(args))
        report = figures(soak, args, (load_start, os.getloadavg()[0]))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
    summary = {k: v for k, v in report.items() if k != "postgres_restart"}
    log.info("%s", json.dumps(summary))
    if "postgres_restart" in report:
        log.info(
            "postgres restart: %s", json.dumps({k: v for k, v in report["postgres_restart"].items() if k != "turns"})
        )
    name = f"soak-{args.shoppers}x{int(args.seconds)}-w{args.workers or 'ext'}"
    output = args.output or PROJECT_ROOT / "reports" / f"{name}{'-restart' if args.restart_postgres_at else ''}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2), encoding="utf-8")
    log.info("report written to %s", output)


if __name__ == "__main__":
    main()
