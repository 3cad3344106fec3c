"""Scripted chat-model servers speaking the real wire formats, for tests that must run without a model.

One in-process HTTP server (stdlib, threaded, 127.0.0.1, free port) answers both APIs the LLM brain can use:

- Ollama: `GET /api/tags`, `GET /api/version`, `POST /api/chat`, streamed (NDJSON lines with `done: false`,
  then a final `done: true` line with the counters) or not (`"stream": false`); tool calls as
  `message.tool_calls[].function.{name, arguments}` with `arguments` an object, as Ollama sends them.
- OpenAI-compatible (what llama.cpp's `llama-server` speaks): `GET /v1/models`, `GET /health`,
  `POST /v1/chat/completions`, non-streamed or streamed (SSE `data:` chunks, tool-call deltas with
  index / id / function name / argument fragments, a usage chunk when asked, then `data: [DONE]`).

Each test scripts the replies (`WireServer.script(...)`), one per chat request, in order: plain text, native
tool calls, a tool call written as JSON in the content (the shapes Qwen2.5-Coder writes through
llama-server, see docs/llm-measurements.md), a malformed call, a delay, an HTTP error. Every request is recorded
(`WireServer.requests`) so tests can assert what was sent, e.g. whether tools were offered. A chat request
with nothing scripted gets HTTP 500, so a test never passes on a reply it didn't script.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import pytest

OLLAMA_MODEL = "qwen2.5-coder:1.5b"
OPENAI_MODEL = "qwen2.5-coder-1.5b"
JsonShape = Literal["bare", "bare_lines", "fenced", "tagged", "list", "fenced_list"]


@dataclass(frozen=True)
class Call:
    """One tool call: `arguments` is a dict, or a raw string (sent as-is: that is how to make it malformed)."""

    name: str
    arguments: dict[str, Any] | str
    id: str = field(default_factory=lambda: f"call_{uuid.uuid4().hex[:24]}")

    def arguments_json(self) -> str:
        """The arguments as the OpenAI API carries them (a JSON string)."""
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


@dataclass(frozen=True)
class Reply:
    """One scripted reply. Build them with the helpers below."""

    content: str = ""
    calls: tuple[Call, ...] = ()
    status: int = 200
    error: str = ""
    delay_s: float = 0.0
    chunk_chars: int = 6  # streamed content / argument fragments of this many characters
    finish_reason: str | None = None  # default "tool_calls" or "stop"; "length" for a reply cut at max_tokens
    prompt_tokens: int = 42
    completion_tokens: int = 7


def text(content: str) -> Reply:
    """A plain assistant answer."""
    return Reply(content=content)


def tool_call(name: str, **arguments: Any) -> Reply:
    """One native tool call."""
    return Reply(calls=(Call(name, arguments),))


def tool_calls(*calls: tuple[str, dict[str, Any]]) -> Reply:
    """Several native tool calls in one reply."""
    return Reply(calls=tuple(Call(n, a) for n, a in calls))


def qwen_pretty(obj: Any, level: int = 0) -> str:
    """JSON as Qwen2.5-Coder writes it in a fence: objects indented by 2, lists and scalars inline."""
    if isinstance(obj, dict) and obj:
        pad = "  " * (level + 1)
        items = [f"{pad}{json.dumps(k)}: {qwen_pretty(v, level + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * level + "}"
    return json.dumps(obj, ensure_ascii=False)


def json_in_content(name: str, arguments: dict[str, Any], shape: JsonShape = "fenced") -> Reply:
    """A tool call the model wrote as JSON text in `content` (no native call), `{"name": ..., "arguments": ...}`:

    - "fenced": in a ```json fence, pretty-printed (Qwen2.5-Coder-1.5B: every call measured; 0.5B: most);
    - "bare": one compact line (Qwen2.5-Coder-0.5B: the rest);
    - "bare_lines": the same call twice, one compact line each (the 0.5B, given a tool result back);
    - "tagged" (`<tool_call>` tags), "list", "fenced_list": shapes other models write, not seen from these two
      through llama-server (which turns `<tool_call>` tags into native calls itself).
    """
    call: dict[str, Any] = {"name": name, "arguments": arguments}
    wrapped = {
        "bare": json.dumps(call, ensure_ascii=False),
        "bare_lines": "\n".join([json.dumps(call, ensure_ascii=False)] * 2),
        "fenced": f"```json\n{qwen_pretty(call)}\n```",
        "tagged": f"<tool_call>\n{json.dumps(call, ensure_ascii=False)}\n</tool_call>",
        "list": json.dumps([call], ensure_ascii=False),
        "fenced_list": f"```json\n{json.dumps([call], ensure_ascii=False, indent=2)}\n```",
    }[shape]
    return Reply(content=wrapped)


def malformed_call(
    name: str = "search_products", raw_arguments: str = '{"query": "running shoes", "max_price": '
) -> Reply:
    """A native tool call whose arguments are not valid JSON (truncated by default)."""
    return Reply(calls=(Call(name, raw_arguments),))


def delayed(seconds: float, reply: Reply | None = None) -> Reply:
    """`reply` (default: a short text) sent only after `seconds` (for client timeouts)."""
    return replace(reply or text("late answer"), delay_s=seconds)


def http_error(status: int = 500, message: str = "scripted server error") -> Reply:
    """An HTTP error in the API's own error-body format."""
    return Reply(status=status, error=message)


@dataclass
class Request:
    """One request as it arrived."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any

    @property
    def tools_offered(self) -> list[str]:
        """Names of the tools this chat request offered the model (same schema in both APIs)."""
        if not isinstance(self.body, dict):
            return []
        return [t["function"]["name"] for t in self.body.get("tools") or []]

    @property
    def streamed(self) -> bool:
        """Whether the client asked for a streamed reply (Ollama streams unless told otherwise)."""
        default = self.path.startswith("/api/")
        return bool(self.body.get("stream", default)) if isinstance(self.body, dict) else False


class _QuietServer(ThreadingHTTPServer):
    """A client that timed out and hung up is expected here, not an error worth a traceback."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore connections the client dropped; report anything else."""
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def _chunks(s: str, n: int) -> list[str]:
    """`s` in pieces of `n` characters (at least one piece, maybe empty)."""
    return [s[i : i + n] for i in range(0, len(s), n)] or [""]


class WireServer:
    """The scripted server. Use as a context manager or through the `llm_wire` fixture."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = _QuietServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="llm-wire", daemon=True)

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>`: Ollama's base URL; OpenAI clients take `openai_base_url`."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def openai_base_url(self) -> str:
        """The base URL for OpenAI clients."""
        return f"{self.base_url}/v1"

    def script(self, *replies: Reply) -> WireServer:
        """Queue replies for the next chat requests, in order."""
        with self._lock:
            self.replies.extend(replies)
        return self

    def chat_requests(self) -> list[Request]:
        """The chat requests received so far (either API)."""
        return [r for r in self.requests if r.path in ("/api/chat", "/v1/chat/completions")]

    def start(self) -> WireServer:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; delayed replies still sleeping give up."""
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> WireServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> WireServer:
        """Forget scripted replies and recorded requests (between tests sharing one server)."""
        with self._lock:
            self.replies.clear()
            self.requests.clear()
        return self

    def _next_reply(self) -> Reply:
        with self._lock:
            return self.replies.popleft() if self.replies else http_error(500, "llm_wire: no scripted reply left")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                """Quiet."""

            def do_GET(self) -> None:  # noqa: N802 - stdlib name
                server._record(self, None)
                if self.path == "/api/tags":
                    self._json(200, {"models": [_ollama_model(OLLAMA_MODEL)]})
                elif self.path == "/api/version":
                    self._json(200, {"version": "0.12.6"})
                elif self.path == "/v1/models":
                    # llama-server lists the model twice: Ollama-style under "models", OpenAI-style under "data".
                    model = {"id": OPENAI_MODEL, "object": "model", "created": int(time.time()), "owned_by": "llamacpp"}
                    listed = {"name": OPENAI_MODEL, "model": OPENAI_MODEL, "details": {"format": "gguf"}}
                    self._json(200, {"models": [listed], "object": "list", "data": [model]})
                elif self.path == "/health":
                    self._json(200, {"status": "ok"})
                else:
                    self._json(404, {"error": f"not found: {self.path}"})

            def do_POST(self) -> None:  # noqa: N802 - stdlib name
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw or b"null")
                except json.JSONDecodeError:
                    body = raw.decode("utf-8", "replace")
                req = server._record(self, body)
                if self.path not in ("/api/chat", "/v1/chat/completions"):
                    self._json(404, {"error": f"not found: {self.path}"})
                    return
                reply = server._next_reply()
                if reply.delay_s and server._stopping.wait(reply.delay_s):
                    return
                ollama = self.path == "/api/chat"
                if reply.status != 200:
                    err: Any = reply.error if ollama else {"code": reply.status, "message": reply.error,
                                                           "type": "server_error"}  # fmt: skip
                    self._json(reply.status, {"error": err})
                elif ollama and req.streamed:
                    self._stream("application/x-ndjson", _ollama_stream(reply), sse=False)
                elif ollama:
                    self._json(200, _ollama_final(reply, include_message=True))
                elif req.streamed:
                    include_usage = bool((req.body.get("stream_options") or {}).get("include_usage"))
                    self._stream("text/event-stream", _openai_stream(reply, include_usage), sse=True)
                else:
                    self._json(200, _openai_completion(reply))

            def _json(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, content_type: str, events: Iterator[Any], sse: bool) -> None:
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for event in events:
                    line = event if isinstance(event, str) else json.dumps(event)
                    data = (f"data: {line}\n\n" if sse else f"{line}\n").encode()
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        return Handler

    def _record(self, handler: BaseHTTPRequestHandler, body: Any) -> Request:
        req = Request(handler.command, handler.path, dict(handler.headers.items()), body)
        with self._lock:
            self.requests.append(req)
        return req


def _now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _ollama_model(name: str) -> dict[str, Any]:
    return {"name": name, "model": name, "modified_at": _now_rfc3339(), "size": 986_000_000,
            "digest": "0" * 64, "details": {"format": "gguf", "family": "qwen2", "parameter_size": "1.5B",
                                            "quantization_level": "Q4_K_M"}}  # fmt: skip


def _ollama_calls(reply: Reply) -> list[dict[str, Any]]:
    """Ollama sends arguments as an object; a raw string is passed through (a malformed call)."""
    return [{"id": c.id, "function": {"index": i, "name": c.name, "arguments": c.arguments}}
            for i, c in enumerate(reply.calls)]  # fmt: skip


def _ollama_final(reply: Reply, include_message: bool) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant", "content": reply.content if include_message else ""}
    if include_message and reply.calls:
        msg["tool_calls"] = _ollama_calls(reply)
    done_reason = "length" if reply.finish_reason == "length" else "stop"
    return {"model": OLLAMA_MODEL, "created_at": _now_rfc3339(), "message": msg, "done": True,
            "done_reason": done_reason, "total_duration": 1_200_000_000, "load_duration": 20_000_000,
            "prompt_eval_count": reply.prompt_tokens, "prompt_eval_duration": 300_000_000,
            "eval_count": reply.completion_tokens, "eval_duration": 800_000_000}  # fmt: skip


def _ollama_stream(reply: Reply) -> Iterator[dict[str, Any]]:
    """Content in pieces, the tool calls whole in one line (as Ollama does), then the final `done` line."""
    if reply.content:
        for piece in _chunks(reply.content, reply.chunk_chars):
            yield {"model": OLLAMA_MODEL, "created_at": _now_rfc3339(),
                   "message": {"role": "assistant", "content": piece}, "done": False}  # fmt: skip
    if reply.calls:
        msg = {"role": "assistant", "content": "", "tool_calls": _ollama_calls(reply)}
        yield {"model": OLLAMA_MODEL, "created_at": _now_rfc3339(), "message": msg, "done": False}
    yield _ollama_final(reply, include_message=False)


def _finish(reply: Reply) -> str:
    return reply.finish_reason or ("tool_calls" if reply.calls else "stop")


def _timings(reply: Reply) -> dict[str, float]:
    """llama-server's extra `timings` object (prompt/decode token counts and speeds)."""
    return {"cache_n": 0, "prompt_n": reply.prompt_tokens, "prompt_ms": 1000.0,
            "prompt_per_second": reply.prompt_tokens, "predicted_n": reply.completion_tokens, "predicted_ms": 1000.0,
            "predicted_per_second": reply.completion_tokens}  # fmt: skip


def _usage(reply: Reply) -> dict[str, int]:
    return {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens}  # fmt: skip


def _openai_completion(reply: Reply) -> dict[str, Any]:
    """A chat.completion as llama-server sends it (content null when there are tool calls)."""
    msg: dict[str, Any] = {"role": "assistant", "content": reply.content or (None if reply.calls else "")}
    if reply.calls:
        msg["tool_calls"] = [
            {"type": "function", "id": c.id, "function": {"name": c.name, "arguments": c.arguments_json()}}
            for c in reply.calls
        ]
    return {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
            "model": OPENAI_MODEL, "system_fingerprint": "b11434-llm-wire",
            "choices": [{"index": 0, "message": msg, "logprobs": None,
                         "finish_reason": _finish(reply)}],
            "usage": _usage(reply), "timings": _timings(reply)}  # fmt: skip


def _openai_stream(reply: Reply, include_usage: bool) -> Iterator[dict[str, Any] | str]:
    """chat.completion.chunk events: role, content pieces, per call a header delta (index, id, name, "") then
    argument fragments, the finish reason, the usage chunk if asked, then `[DONE]`."""
    base = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": OPENAI_MODEL, "system_fingerprint": "b11434-llm-wire"}  # fmt: skip

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    yield chunk({"role": "assistant", "content": None})
    if reply.content:
        for piece in _chunks(reply.content, reply.chunk_chars):
            yield chunk({"content": piece})
    for i, c in enumerate(reply.calls):
        yield chunk({"tool_calls": [{"index": i, "id": c.id, "type": "function",
                                     "function": {"name": c.name, "arguments": ""}}]})  # fmt: skip
        for piece in _chunks(c.arguments_json(), reply.chunk_chars):
            yield chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
    # llama-server puts `timings` on the finish chunk, or on the usage chunk when usage is asked for.
    finish = chunk({}, _finish(reply))
    yield finish if include_usage else {**finish, "timings": _timings(reply)}
    if include_usage:
        yield {**base, "choices": [], "usage": _usage(reply), "timings": _timings(reply)}
    yield "[DONE]"


@pytest.fixture(scope="session")
def llm_wire_server() -> Iterator[WireServer]:
    """One started WireServer for the session: one port, so clients that cache their HTTP client per base URL
    (ChatOpenAI) build it once (~1 s each on a loaded 2-core machine)."""
    with WireServer() as server:
        yield server


@pytest.fixture
def llm_wire(llm_wire_server: WireServer) -> Iterator[WireServer]:
    """The shared WireServer, reset for this test (import both fixtures into a test module)."""
    yield llm_wire_server.reset()
    llm_wire_server.reset()
