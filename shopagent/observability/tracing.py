"""LangSmith tracing: the client, a traced turn, bounded flushing, and helpers for code inside a run.

Off by default (`LANGSMITH_TRACING=false` or no API key: no client, nothing is sent). When on, runs
and feedback go out from the langsmith client's background threads, which here never keep the
process alive; `flush` and `shutdown` wait at most a bounded time, so an unreachable endpoint
cannot slow a turn or hang exit. Everything sent passes `privacy.TraceScrubber`.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import langsmith
from langsmith.run_helpers import get_current_run_tree
from langsmith.run_trees import RunTree
from langsmith.schemas import LangSmithInfo
from urllib3.util.retry import Retry

from shopagent.observability import feedback
from shopagent.observability.privacy import ScrubLogRecords, TraceScrubber, pseudonymise
from shopagent.settings import Settings

log = logging.getLogger(__name__)

# Per-request bounds for foreground calls (GET /info, direct feedback, datasets); background
# multipart sends use langsmith's own (3 s connect, 10 s read) and never block a turn.
CLIENT_TIMEOUT_MS = (2_000, 5_000)
# One quick retry: the default (3 with back-off, inside 3 attempts per batch) made a refused
# endpoint cost ~12 s per flush.
RETRY = Retry(
    total=1,
    backoff_factor=0.2,
    status_forcelist=[429, 500, 502, 503, 504],
    allowed_methods=None,
    raise_on_status=False,
    respect_retry_after_header=True,
)


class _Client(langsmith.Client):
    """A langsmith Client that can never hold the process open: its background threads are daemons
    (the measured alternative was > 300 s at exit on a silent endpoint) and it never uses zstd
    compression, whose sends run on a shared non-daemon thread pool that exit would wait for.
    Pending traces are drained by the bounded `flush` instead."""

    _use_daemon_threads = property(lambda self: True, lambda self, value: None)

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
        if not any(isinstance(f, ScrubLogRecords) for f in ls_log.filters):
            ls_log.addFilter(ScrubLogRecords(secrets))
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
        self.run.metadata.update(
            {k: v for k, v in {"intent": intent, "language": language, **metadata}.items() if v is not None}
        )

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
        with langsmith.trace(
            name, run_type="chain", inputs=inputs, project_name=project, client=client, metadata=meta, tags=list(tags)
        ) as run:
            yield TurnTrace(run)


# ---------------------------------------------------------------- flushing


def flush(client: langsmith.Client | None, timeout_s: float) -> bool:
    """Send what is pending, waiting at most `timeout_s`; True when everything went out in time."""
    if client is None:
        return True
    deadline = time.monotonic() + timeout_s
    pending = feedback.pending_threads()
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


def without_inputs(*names: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A `@traceable(process_inputs=...)` that leaves out bulky arguments (query vectors: 384 floats each)."""

    def process(inputs: dict[str, Any]) -> dict[str, Any]:
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
