"""LangSmith tracing: the client, a traced turn, feedback, bounded flushing, and privacy scrubbing.

Off by default (`LANGSMITH_TRACING=false` or no API key: no client, nothing is sent). When on, runs
and feedback go out from the langsmith client's background threads, which here never keep the
process alive; `flush` and `shutdown` wait at most a bounded time, so an unreachable endpoint
cannot slow a turn or hang exit. Everything sent passes `TraceScrubber`: user ids pseudonymised,
connection strings and keys redacted, and message text replaced by a placeholder when
`LANGSMITH_HIDE_INPUTS=true` (numbers and structural fields are kept).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import langsmith
from langsmith.run_helpers import get_current_run_tree
from langsmith.run_trees import RunTree
from langsmith.schemas import LangSmithInfo
from urllib3.util.retry import Retry

from shopagent.config import Settings

log = logging.getLogger(__name__)

HIDDEN = "[hidden]"
REDACTED = "[redacted]"
# Per-request bounds for foreground calls (GET /info, direct feedback, datasets); background
# multipart sends use langsmith's own (3 s connect, 10 s read) and never block a turn.
CLIENT_TIMEOUT_MS = (2_000, 5_000)
# One quick retry: the default (3 with back-off, inside 3 attempts per batch) made a refused
# endpoint cost ~12 s per flush.
RETRY = Retry(total=1, backoff_factor=0.2, status_forcelist=[429, 500, 502, 503, 504], allowed_methods=None,
              raise_on_status=False, respect_retry_after_header=True)  # fmt: skip
FEEDBACK_ATTEMPTS = 2

_DSN = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s/'\"@]*:[^\s/'\"@]*@[^\s'\"]*|\bpostgres(?:ql)?(?:\+\w+)?://[^\s'\"]*",
                  re.IGNORECASE)  # fmt: skip
_KEYWORD_SECRET = re.compile(r"\b(password|passwd|pwd|api[_-]?key|secret|token)\s*[=:]\s*[^\s,;'\"]+", re.IGNORECASE)
_KEY_LIKE = re.compile(r"\b(?:lsv2_[A-Za-z0-9_]+|ls__[A-Za-z0-9]+|sk-[A-Za-z0-9_-]{16,})|\bBearer\s+[^\s'\"]+")
# Anything a scrubbing rule could apply to (DSN, secret-ish word or field name, key prefix, user field).
# Most payloads (product hits, figures) contain none of these, and then one scan of their JSON suffices;
# plain substring tests on the lower-cased text are ~10x faster than one alternation regex.
_SUSPECT = ("://", "pass", "pwd", "key", "secret", "token", "auth", "dsn", "database", "conninfo", "lsv2_", "ls__",
            "sk-", "bearer", '"user"', '"user_id"', '"userid"')  # fmt: skip
_SECRET_FIELD = re.compile(r"password|passwd|secret|api_?key|token$|authorization|dsn|database_url|conninfo",
                           re.IGNORECASE)  # fmt: skip
_USER_FIELDS = frozenset({"user", "user_id", "userid"})
_PSEUDONYM = re.compile(r"u_[0-9a-f]{16}")
# A user field that already holds a pseudonym needs no rewriting; every run of a turn inherits one in its
# metadata, and without this the fast path below would never apply.
_PSEUDONYMOUS_USER = re.compile(r'"user": "u_[0-9a-f]{16}"')
# Fields whose strings stay readable when message text is hidden: enumerations, ids, model names.
_KEEP_WHEN_HIDDEN = frozenset({
    "strategy", "backend", "primary", "served_by", "fallback_reason", "product_id", "product_ids", "id", "ids",
    "run_id", "thread_id", "intent", "language", "type", "role", "name", "tool", "run_type", "error", "model",
    "model_name", "embedding_model", "chat_model", "revision_id", "status", "node", "langgraph_node",
})  # fmt: skip


def _suspect(text: str) -> bool:
    """Could any scrubbing rule apply to `text`?"""
    low = text.lower()
    return any(token in low for token in _SUSPECT)


@lru_cache(maxsize=512)
def _field_rule(field: str) -> str:
    """How strings under a field name are treated: 'secret', 'user', 'keep' (readable when hiding) or 'text'."""
    name = field.lower()
    if _SECRET_FIELD.search(name):
        return "secret"
    if name in _USER_FIELDS:
        return "user"
    return "keep" if name in _KEEP_WHEN_HIDDEN or name.startswith("ls_") else "text"


def scrub_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with known secret values, DSNs, `password=...` pairs and API-key-like tokens redacted."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    if not _suspect(text):  # the common case (ids, names, figures): one cheap scan
        return text
    text = _DSN.sub(REDACTED, text)
    text = _KEYWORD_SECRET.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    return _KEY_LIKE.sub(REDACTED, text)


class TraceScrubber:
    """The client's anonymizer: applied to every run's inputs, outputs, metadata and error before sending."""

    def __init__(self, *, hide_text: bool, salt: str, secrets: Iterable[str] = ()):
        """`hide_text` masks free text; `secrets` are literal values that must never leave the process."""
        self.hide_text = hide_text
        self.salt = salt
        self.secrets = tuple(s for s in secrets if s and len(s) >= 4)
        # As they would appear inside a JSON dump (quotes or backslashes in a secret get escaped).
        self._dumped_secrets = tuple({x for s in self.secrets for x in (s, json.dumps(s, ensure_ascii=False)[1:-1])})

    def __call__(self, data: dict) -> dict:
        """Scrub one payload dict (unchanged, after one scan of its JSON, when no rule can apply)."""
        if not self.hide_text:
            dumped = json.dumps(data, ensure_ascii=False, default=str)
            if not _suspect(_PSEUDONYMOUS_USER.sub("", dumped)) and not any(s in dumped for s in self._dumped_secrets):
                return data
        return self._walk(data, "")

    def text(self, value: str, field: str = "") -> str:
        """Scrub one string found under `field`."""
        match _field_rule(field):
            case "secret":
                return REDACTED
            case "user":
                return value if _PSEUDONYM.fullmatch(value) else pseudonymise(value, self.salt)
            case "text" if self.hide_text:
                return HIDDEN
        return scrub_secrets(value, self.secrets)

    def _walk(self, value: Any, field: str) -> Any:
        """Recurse through dicts and lists; strings inherit the name of the field that holds them.
        Payloads arrive JSON round-tripped (plain types), so exact type checks suffice and are cheapest."""
        kind = type(value)
        if kind is str:
            return self.text(value, field)
        if kind is dict:
            return {k: self._walk(v, k) for k, v in value.items()}
        if kind is list or kind is tuple:
            return [self._walk(v, field) for v in value]
        return value


class _Client(langsmith.Client):
    """A langsmith Client that can never hold the process open: its background threads are daemons
    (the measured alternative was > 300 s at exit on a silent endpoint) and it never uses zstd
    compression, whose sends run on a shared non-daemon thread pool that exit would wait for.
    Pending traces are drained by the bounded `flush` instead."""

    _use_daemon_threads = property(lambda self: True, lambda self, value: None)  # type: ignore[assignment]

    @property
    def info(self) -> LangSmithInfo:
        """The server's info, minus the compression flag."""
        info = super().info
        flags = info.instance_flags or {}
        if flags.get("zstd_compression_enabled"):
            return info.model_copy(update={"instance_flags": {**flags, "zstd_compression_enabled": False}})
        return info


def _drop_compression_notice(record: logging.LogRecord) -> bool:
    """Compression is off on purpose (see `_Client`); langsmith's "please update" warning is noise."""
    return not record.getMessage().startswith("Run compression is not enabled")


class _ScrubLogRecords(logging.Filter):
    """langsmith's own error logs quote request details (a masked API key among them): keep the
    message, scrubbed, and drop the traceback."""

    def __init__(self, secrets: Iterable[str]):
        """Remember the configured secrets."""
        super().__init__()
        self._secrets = list(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drop it."""
        record.msg = scrub_secrets(record.getMessage(), self._secrets)
        record.args = None
        record.exc_info = record.exc_text = None
        return True


def tracing_enabled(settings: Settings) -> bool:
    """Tracing is on only when asked for and an API key is configured."""
    return settings.langsmith_tracing and settings.langsmith_api_key is not None


def make_client(settings: Settings, *, timeout_ms: tuple[int, int] = CLIENT_TIMEOUT_MS) -> langsmith.Client | None:
    """The LangSmith client for this process, or None when tracing is off."""
    return new_client(settings, timeout_ms=timeout_ms) if tracing_enabled(settings) else None


def configure_tracing(settings: Settings) -> langsmith.Client | None:
    """Once per process (app startup, scripts): make the client and install it as langsmith's global
    default, so runs traced outside `traced_turn` (LangChain callbacks, warm-ups) are scrubbed and can't
    hold exit open either; with tracing off, langsmith's own LANGSMITH_TRACING env switch is overridden."""
    client = make_client(settings)
    langsmith.configure(client=client, enabled=client is not None, project_name=settings.langsmith_project)
    return client


def new_client(settings: Settings, *, timeout_ms: tuple[int, int] = CLIENT_TIMEOUT_MS) -> langsmith.Client:
    """A LangSmith client (scrubbing, daemon background threads, short timeouts) whatever LANGSMITH_TRACING
    says; for explicit recording such as experiments. Needs LANGSMITH_API_KEY."""
    if settings.langsmith_api_key is None:
        raise ValueError("LANGSMITH_API_KEY is not set")
    secrets = [settings.langsmith_api_key.get_secret_value(), settings.pseudonym_salt.get_secret_value()]
    if settings.database_url is not None:
        secrets.append(settings.database_url.get_secret_value())
    # Feedback is attached by run id without a project id (reading it would cost a request per turn).
    warnings.filterwarnings("ignore", message="Creating feedback for a run without session_id")
    logging.getLogger("langsmith.client").addFilter(_drop_compression_notice)
    # Logger filters don't apply to child loggers, so each langsmith logger that reports errors gets one.
    for name in ("langsmith", "langsmith.client", "langsmith._internal._background_thread", "langsmith.run_trees"):
        ls_log = logging.getLogger(name)
        if not any(isinstance(f, _ScrubLogRecords) for f in ls_log.filters):
            ls_log.addFilter(_ScrubLogRecords(secrets))
    return _Client(
        api_url=settings.langsmith_endpoint,
        api_key=settings.langsmith_api_key.get_secret_value(),
        timeout_ms=timeout_ms,
        retry_config=RETRY,
        auto_batch_tracing=True,
        anonymizer=TraceScrubber(
            hide_text=settings.langsmith_hide_inputs, salt=settings.pseudonym_salt.get_secret_value(), secrets=secrets
        ),
        omit_traced_runtime_info=True,  # host / library details are not needed per run
    )


@dataclass
class TurnTrace:
    """Handle on a turn's root run (`run` is None when tracing is off)."""

    run: RunTree | None

    @property
    def run_id(self) -> str | None:
        """The root run id to return to the caller and attach feedback to."""
        return str(self.run.id) if self.run is not None else None

    def tag(self, *, intent: str | None = None, language: str | None = None, **metadata: Any) -> None:
        """Tag the root run with the turn's intent and language (and add figures to its metadata)."""
        if self.run is None:
            return
        tags = [t for t in (intent and f"intent:{intent}", language and f"lang:{language}") if t]
        self.run.tags = list(dict.fromkeys([*(self.run.tags or []), *tags]))
        self.run.metadata.update({k: v for k, v in {"intent": intent, "language": language, **metadata}.items()
                                  if v is not None})  # fmt: skip

    def set_outputs(self, outputs: dict[str, Any]) -> None:
        """Record the turn's outputs on the root run."""
        if self.run is not None:
            self.run.add_outputs(outputs)


@contextmanager
def traced_turn(
    client: langsmith.Client | None,
    settings: Settings,
    inputs: dict[str, Any],
    *,
    user_id: str | None = None,
    thread_id: str | None = None,
    name: str = "chat_turn",
    metadata: dict[str, Any] | None = None,
    tags: Iterable[str] = (),
) -> Iterator[TurnTrace]:
    """Run a turn under one root run; every @traceable call and LangChain/LangGraph runnable inside nests
    under it. With `client` None, tracing is forced off for the block (whatever the environment says)."""
    if client is None:
        with langsmith.tracing_context(enabled=False):
            yield TurnTrace(None)
        return
    meta = {"thread_id": thread_id, **(metadata or {})}
    if user_id is not None:
        meta["user"] = pseudonymise(user_id, settings.pseudonym_salt.get_secret_value())
    meta = {k: v for k, v in meta.items() if v is not None}
    project = settings.langsmith_project
    with langsmith.tracing_context(client=client, enabled=True, project_name=project):
        with langsmith.trace(name, run_type="chain", inputs=inputs, project_name=project, client=client,
                             metadata=meta, tags=list(tags)) as run:  # fmt: skip
            yield TurnTrace(run)


# ---------------------------------------------------------------- feedback

_pending: set[threading.Thread] = set()
_pending_lock = threading.Lock()


def _in_background(name: str, fn: Callable[[], Any]) -> None:
    """Run `fn` in a daemon thread, logging (never raising) its failure; `flush` waits for it, bounded."""

    def run() -> None:
        """The thread body."""
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - feedback is best effort; the turn already succeeded
            # No traceback: request errors quote headers; the type and scrubbed text are enough.
            log.warning("LangSmith %s failed: %s: %s", name, type(exc).__name__, scrub_secrets(str(exc)))
        finally:
            with _pending_lock:
                _pending.discard(threading.current_thread())

    thread = threading.Thread(target=run, name=f"langsmith-{name}", daemon=True)
    with _pending_lock:
        _pending.add(thread)
    thread.start()


def record_turn_feedback(
    client: langsmith.Client | None,
    run_id: str | None,
    *,
    mean_similarity: float | None,
    zero_results: bool,
    fallback: bool,
    latency_ms: float,
) -> None:
    """Attach the turn's quality figures to its root run as feedback (background; never raises)."""
    if client is None or run_id is None:
        return
    scores = {"mean_similarity": mean_similarity, "zero_results": zero_results, "fallback": fallback,
              "latency_ms": latency_ms}  # fmt: skip

    def send() -> None:
        """Queue one feedback per figure (trace_id set, so it rides the background batch)."""
        for key, score in scores.items():
            if score is not None:
                client.create_feedback(run_id, key, score=float(score), trace_id=run_id,
                                       stop_after_attempt=FEEDBACK_ATTEMPTS)  # fmt: skip

    _in_background("turn-feedback", send)


def record_user_feedback(
    client: langsmith.Client | None,
    run_id: str | None,
    score: float,
    comment: str | None = None,
    *,
    hide_text: bool = False,
) -> None:
    """Attach a user's rating (and comment, scrubbed; masked when `hide_text`) to a turn's root run."""
    if client is None or run_id is None:
        return
    if comment is not None:
        comment = HIDDEN if hide_text else scrub_secrets(comment)

    def send() -> None:
        """Queue the user's feedback."""
        client.create_feedback(run_id, "user_score", score=float(score), comment=comment, trace_id=run_id,
                               stop_after_attempt=FEEDBACK_ATTEMPTS)  # fmt: skip

    _in_background("user-feedback", send)


# ---------------------------------------------------------------- flushing


def flush(client: langsmith.Client | None, timeout_s: float) -> bool:
    """Send what is pending, waiting at most `timeout_s`; True when everything went out in time."""
    if client is None:
        return True
    deadline = time.monotonic() + timeout_s
    with _pending_lock:
        pending = list(_pending)
    for thread in pending:
        thread.join(max(0.0, deadline - time.monotonic()))
    # client.flush takes a timeout, but runs in its own daemon thread too so that no code path
    # inside it (buffer callbacks, compression) can stretch the bound.
    done = threading.Event()

    def run() -> None:
        """Flush, then signal."""
        try:
            client.flush(timeout=max(0.0, deadline - time.monotonic()))
        except Exception:  # noqa: BLE001 - a failed flush must not break the caller (often shutdown)
            log.warning("LangSmith flush failed", exc_info=True)
        else:
            queue = client.tracing_queue
            if queue is None or not queue.unfinished_tasks:
                done.set()

    thread = threading.Thread(target=run, name="langsmith-flush", daemon=True)
    thread.start()
    thread.join(max(0.0, deadline - time.monotonic()))
    if not done.is_set():
        log.warning("LangSmith flush did not finish within %.1f s; pending traces dropped at exit", timeout_s)
    return done.is_set()


def shutdown(client: langsmith.Client | None, timeout_s: float) -> bool:
    """Flush (bounded) and stop the client's background threads; for app shutdown."""
    if client is None:
        return True
    flushed = flush(client, timeout_s)
    client.cleanup(timeout=0)
    return flushed


# ---------------------------------------------------------------- inside a run


def without_inputs(*names: str) -> Callable[[dict], dict]:
    """A `@traceable(process_inputs=...)` that leaves out bulky arguments (query vectors: 384 floats each)."""

    def process(inputs: dict) -> dict:
        """The inputs minus `names`."""
        return {k: v for k, v in inputs.items() if k not in names}

    return process


def annotate(**metadata: Any) -> None:
    """Merge `metadata` into the current traced run's metadata, if there is one."""
    run = get_current_run_tree()
    if run is not None:
        run.metadata.update({k: v for k, v in metadata.items() if v is not None})


def add_tags(*tags: str) -> None:
    """Add tags to the current traced run, if there is one."""
    run = get_current_run_tree()
    if run is not None:
        run.tags = list(dict.fromkeys([*(run.tags or []), *tags]))


def pseudonymise(user_id: str, salt: str) -> str:
    """A stable, non-reversible stand-in for a user id (HMAC-SHA256, first 16 hex chars)."""
    return "u_" + hmac.new(salt.encode(), user_id.encode(), hashlib.sha256).hexdigest()[:16]
