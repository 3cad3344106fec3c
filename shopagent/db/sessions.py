"""Chat-session SQL: which user owns a session id (see `agent.api.sessions`)."""

from __future__ import annotations

from shopagent.db.connection import Connection
from shopagent.db.schema import first_value


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
