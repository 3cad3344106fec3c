"""Chat-session SQL: which user owns a session id, the per-thread turn lock, and the traced runs of chat turns
(see `agent.api.sessions`)."""

from __future__ import annotations

import hashlib
import uuid

from shopagent.db.connection import Connection
from shopagent.db.schema import first_value

# First key of the two-key advisory locks that serialise the turns of one thread (the second is the thread's hash);
# the one-key form (migrations) is a separate key space.
_TURN_LOCK_CLASS = 726_002


def thread_lock_key(thread_id: str) -> int:
    """A stable signed 32-bit key of a thread (a collision only makes two sessions take turns)."""
    return int.from_bytes(hashlib.blake2b(thread_id.encode(), digest_size=4).digest(), "big", signed=True)


def lock_thread(conn: Connection, thread_id: str, timeout_s: float) -> None:
    """Wait (at most `timeout_s`, then `psycopg.errors.LockNotAvailable`) for the thread's turn lock, held until the
    caller's transaction ends: whatever ends it (commit, rollback, a dead connection) releases it."""
    conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{int(timeout_s * 1000)}ms",))
    conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_TURN_LOCK_CLASS, thread_lock_key(thread_id)))


def claim_session(conn: Connection, session_id: str, user_id: str) -> str:
    """Register `session_id` for `user_id` if it is new; return its owner (who may be someone else)."""
    row = conn.execute(
        """INSERT INTO chat_sessions (session_id, user_id) VALUES (%s, %s)
           ON CONFLICT (session_id) DO UPDATE SET last_seen = now()
           RETURNING user_id""",
        (session_id, user_id),
    ).fetchone()
    return str(first_value(row))


def session_owner(conn: Connection, session_id: str) -> str | None:
    """The user who owns `session_id`, or None if unknown."""
    row = conn.execute("SELECT user_id FROM chat_sessions WHERE session_id = %s", (session_id,)).fetchone()
    return None if row is None else str(first_value(row))


def delete_session(conn: Connection, session_id: str, user_id: str) -> bool:
    """Forget `user_id`'s session; True if it existed."""
    cur = conn.execute("DELETE FROM chat_sessions WHERE session_id = %s AND user_id = %s", (session_id, user_id))
    return cur.rowcount > 0


def record_run(conn: Connection, run_id: str, session_id: str) -> None:
    """Remember a traced turn's root run id."""
    conn.execute(
        "INSERT INTO chat_runs (run_id, session_id) VALUES (%s, %s) ON CONFLICT (run_id) DO NOTHING",
        (uuid.UUID(run_id), session_id),
    )


def run_known(conn: Connection, run_id: str) -> bool:
    """True if `run_id` is a traced turn of this service."""
    return conn.execute("SELECT 1 FROM chat_runs WHERE run_id = %s", (uuid.UUID(run_id),)).fetchone() is not None


def forget_runs_before(conn: Connection, days: int) -> int:
    """Drop run ids older than `days` (ratings of older turns then get 404); how many were dropped."""
    cur = conn.execute("DELETE FROM chat_runs WHERE created_at < now() - make_interval(days => %s)", (days,))
    return cur.rowcount
