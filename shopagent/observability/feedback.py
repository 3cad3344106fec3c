"""Feedback on traced turns: the turn's quality figures and users' ratings, sent from daemon threads that
never block or fail a turn (`flush` waits for them, bounded)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import langsmith

from shopagent.observability.privacy import HIDDEN, scrub_secrets

log = logging.getLogger(__name__)

FEEDBACK_ATTEMPTS = 2

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
    scores = {
        "mean_similarity": mean_similarity,
        "zero_results": zero_results,
        "fallback": fallback,
        "latency_ms": latency_ms,
    }

    def send() -> None:
        """Queue one feedback per figure (trace_id set, so it rides the background batch)."""
        for key, score in scores.items():
            if score is not None:
                client.create_feedback(
                    run_id, key, score=float(score), trace_id=run_id, stop_after_attempt=FEEDBACK_ATTEMPTS
                )

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
        client.create_feedback(
            run_id,
            "user_score",
            score=float(score),
            comment=comment,
            trace_id=run_id,
            stop_after_attempt=FEEDBACK_ATTEMPTS,
        )

    _in_background("user-feedback", send)


def pending_threads() -> list[threading.Thread]:
    """Feedback sends still running (for a bounded flush)."""
    with _pending_lock:
        return list(_pending)
