"""A recording stand-in for the LangSmith API, for tests: the real `langsmith.Client` talks to it over HTTP.

It answers `GET /info` so the client uses background multipart ingestion (no compression), parses
`POST /runs/multipart` bodies back into run dicts (post + patch parts merged per run id), records
feedback, and answers the dataset / example / project (session) endpoints `langsmith.evaluate()` uses
with plausible JSON. Use the `langsmith_recorder` fixture (import it into a test module or conftest).
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import langsmith
import pytest
import zstandard
from langsmith import run_trees
from langsmith import utils as ls_utils

INFO = {
    "version": "0.10.0",  # >= 0.8.10: feedback with a trace id rides the background multipart queue
    "batch_ingest_config": {
        "use_multipart_endpoint": True,
        "scale_up_qsize_trigger": 1000,
        "scale_up_nthreads_limit": 16,
        "scale_down_nempty_trigger": 4,
        "size_limit": 100,
        "size_limit_bytes": 20_971_520,
    },
    # Advertised like LangSmith does: plain langsmith clients then send zstd bodies (decoded here);
    # shopagent's client turns compression off (see shopagent.observability.tracing._Client);
    # `Recorded.compressed` tells.
    "instance_flags": {"zstd_compression_enabled": True},
}


@dataclass
class Recorded:
    """One request as it arrived."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    compressed: bool = False


@dataclass
class LangSmithRecorder:
    """The server's state: every request, plus runs / feedback / datasets decoded from them."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    feedback: list[dict[str, Any]] = field(default_factory=list)
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def paths(self) -> list[str]:
        """'METHOD /path' of every request so far."""
        with self.lock:
            return [f"{r.method} {r.path}" for r in self.requests]

    def raw_bodies(self) -> str:
        """Every request body (and header value) as text, for leak checks."""
        with self.lock:
            parts = [r.body.decode("utf-8", "replace") for r in self.requests]
            parts += [v for r in self.requests for k, v in r.headers.items() if k.lower() != "x-api-key"]
            return "\n".join(parts)

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 10.0) -> bool:
        """Poll until `predicate()` holds (for senders whose flush this test does not control)."""
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def runs_named(self, name: str) -> list[dict[str, Any]]:
        """Runs with this name, in start order."""
        with self.lock:
            found = [r for r in self.runs.values() if r.get("name") == name]
        return sorted(found, key=lambda r: r.get("dotted_order", ""))

    def children(self, run_id: str) -> list[dict[str, Any]]:
        """Direct children of a run, in start order."""
        with self.lock:
            found = [r for r in self.runs.values() if str(r.get("parent_run_id")) == str(run_id)]
        return sorted(found, key=lambda r: r.get("dotted_order", ""))

    def tree(self, run_id: str, depth: int = 0) -> list[tuple[int, dict[str, Any]]]:
        """(depth, run) pairs of a run and its descendants, depth-first."""
        with self.lock:
            run = self.runs[str(run_id)]
        out = [(depth, run)]
        for child in self.children(run_id):
            out += self.tree(child["id"], depth + 1)
        return out

    # ------------------------------------------------------------ decoding

    def _merge_run(self, op: str, run_id: str, key: str | None, value: Any) -> None:
        """Fold one multipart part (or batch entry) into the run dict."""
        run = self.runs.setdefault(run_id, {"id": run_id, "ops": []})
        if key is None:
            run["ops"].append(op)
            extra = value.pop("extra", None)
            run.update(value)
            if extra is not None:
                self._merge_extra(run, extra)
        elif key == "extra":
            self._merge_extra(run, value)
        else:
            run[key] = value

    @staticmethod
    def _merge_extra(run: dict[str, Any], extra: dict[str, Any]) -> None:
        """Later metadata (the patch) adds to what the post carried."""
        old = run.setdefault("extra", {})
        metadata = {**old.get("metadata", {}), **(extra.get("metadata") or {})}
        old.update(extra)
        old["metadata"] = metadata

    def _record_multipart(self, content_type: str, body: bytes) -> None:
        """Parse a multipart/form-data body: parts named `post.<id>[.<field>]`, `patch...`, `feedback.<id>`."""
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
        )
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            value = json.loads(payload) if payload else None
            op, _, rest = name.partition(".")
            if op == "feedback":
                self.feedback.append(value)
                continue
            if op not in ("post", "patch"):
                continue  # attachments: not used by this project
            run_id, _, key = rest.partition(".")
            self._merge_run(op, run_id, key or None, value)

    # ------------------------------------------------------------ fake resources

    def _new(self, store: dict[str, dict[str, Any]], body: dict[str, Any]) -> dict[str, Any]:
        """Create a resource with an id and timestamps, like the API does."""
        now = datetime.now(UTC).isoformat()
        obj = {"created_at": now, "modified_at": now, "start_time": now, **body}
        obj["id"] = str(body.get("id") or uuid.uuid4())
        obj.setdefault("tenant_id", str(uuid.UUID(int=0)))
        store[obj["id"]] = obj
        return obj

    def handle(self, req: Recorded) -> tuple[int, Any]:
        """Route one request; returns (status, JSON body)."""
        parts = [p for p in req.path.split("/") if p]
        with self.lock:
            self.requests.append(req)
            ctype = req.headers.get("Content-Type", req.headers.get("content-type", ""))
            data = json.loads(req.body) if req.body and ctype.startswith("application/json") else None
            match req.method, parts:
                case "GET", ["info"]:
                    return 200, INFO
                case "POST", ["runs", "multipart"]:
                    self._record_multipart(ctype, req.body)
                    return 202, {}
                case "POST", ["runs", "batch"]:
                    for op in ("post", "patch"):
                        for run in data.get(op) or []:
                            self._merge_run(op, str(run["id"]), None, run)
                    return 202, {}
                case "POST", ["runs"]:
                    self._merge_run("post", str(data["id"]), None, data)
                    return 202, {}
                case "PATCH", ["runs", run_id]:
                    self._merge_run("patch", run_id, None, data)
                    return 202, {}
                case "POST", ["feedback"]:
                    self.feedback.append(data)
                    return 200, data
                case "POST", ["datasets"]:
                    return 200, self._new(self.datasets, data)
                case "GET", ["datasets"]:
                    return 200, self._filter(self.datasets, req.query)
                case "GET", ["datasets", dataset_id]:
                    return (200, self.datasets[dataset_id]) if dataset_id in self.datasets else (404, {})
                case "GET", ["datasets", dataset_id, "versions", *_]:
                    return 200, {"as_of": datetime.now(UTC).isoformat(), "tags": []}
                case "POST", ["examples", "bulk"]:
                    return 200, [self._new(self.examples, e) for e in data]
                case "POST", ["v1", "platform", "datasets", dataset_id, "examples"]:
                    return 200, self._multipart_examples(dataset_id, ctype, req.body)
                case "GET", ["examples"]:
                    return 200, self._examples(req.query)
                case "POST", ["sessions"]:
                    return 200, self._new(self.sessions, data)
                case "GET", ["sessions"]:
                    return 200, self._filter(self.sessions, req.query)
                case "GET", ["sessions", session_id]:
                    return (200, self.sessions[session_id]) if session_id in self.sessions else (404, {})
                case "PATCH", ["sessions", session_id]:
                    self.sessions.setdefault(session_id, {"id": session_id}).update(
                        {k: v for k, v in (data or {}).items() if v is not None}
                    )
                    return 200, self.sessions[session_id]
            return 404, {"detail": f"recorder: no route for {req.method} {req.path}"}

    @staticmethod
    def _filter(store: dict[str, dict[str, Any]], query: dict[str, list[str]]) -> list[dict[str, Any]]:
        """List resources, filtered by `name` / `id` like the API's list endpoints."""
        found = list(store.values())
        if names := query.get("name"):
            found = [o for o in found if o.get("name") in names]
        if ids := query.get("id"):
            found = [o for o in found if o["id"] in ids]
        offset = int(query.get("offset", ["0"])[0])
        return found[offset:]

    def _examples(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        """List examples of a dataset (paged by offset)."""
        found = [e for e in self.examples.values() if e.get("dataset_id") in query.get("dataset", [])]
        offset = int(query.get("offset", ["0"])[0])
        return found[offset:]

    def _multipart_examples(self, dataset_id: str, content_type: str, body: bytes) -> list[dict[str, Any]]:
        """The newer multipart example upload: parts `<id>`, `<id>.inputs`, `<id>.outputs`, ..."""
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
        )
        pending: dict[str, dict[str, Any]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            ex_id, _, key = name.partition(".")
            entry = pending.setdefault(ex_id, {"id": ex_id, "dataset_id": dataset_id})
            value = json.loads(payload) if payload else None
            if key:
                entry[key] = value
            elif isinstance(value, dict):
                entry.update(value)
        created = [self._new(self.examples, e) for e in pending.values()]
        return {"example_ids": [e["id"] for e in created], "count": len(created)}  # type: ignore[return-value]


class _Handler(BaseHTTPRequestHandler):
    """Reads a request (plain or chunked body), hands it to the recorder, writes JSON back."""

    protocol_version = "HTTP/1.1"
    recorder: LangSmithRecorder

    def _body(self) -> bytes:
        """The request body, de-chunked if needed."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _serve(self) -> None:
        """Common path of every method."""
        split = urlsplit(self.path)
        body = self._body()
        compressed = self.headers.get("Content-Encoding", "").lower() == "zstd"
        if compressed:
            body = zstandard.ZstdDecompressor().decompressobj().decompress(body)
        req = Recorded(self.command, split.path, parse_qs(split.query), dict(self.headers.items()), body, compressed)
        status, payload = self.recorder.handle(req)
        out = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        """Keep test output quiet."""


def start_recorder() -> tuple[LangSmithRecorder, ThreadingHTTPServer]:
    """Start a recorder on 127.0.0.1:<free port> in a daemon thread."""
    recorder = LangSmithRecorder()
    handler = type("Handler", (_Handler,), {"recorder": recorder})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, name="langsmith-recorder", daemon=True).start()
    return recorder, server


@pytest.fixture
def langsmith_recorder() -> Iterator[LangSmithRecorder]:
    """A fresh recording LangSmith server for one test."""
    recorder, server = start_recorder()
    yield recorder
    server.shutdown()
    server.server_close()


@pytest.fixture
def langsmith_env(monkeypatch: pytest.MonkeyPatch, langsmith_recorder: LangSmithRecorder) -> Iterator[None]:
    """langsmith's own environment switched on and pointed at the recorder (its env cache cleared both
    ways), so that only the project's settings can keep tracing off."""
    monkeypatch.setenv("LANGSMITH_TRACING", "true")
    monkeypatch.setenv("LANGSMITH_ENDPOINT", langsmith_recorder.url)
    monkeypatch.setenv("LANGSMITH_API_KEY", "test-key")
    monkeypatch.setattr(run_trees, "_CLIENT", None)
    ls_utils.get_env_var.cache_clear()
    yield
    default = run_trees._CLIENT
    if default is not None:
        default.cleanup(timeout=10.0)
    langsmith.configure(client=None, enabled=None)  # back to "whatever the environment says"
    ls_utils.get_env_var.cache_clear()
