"""Session ownership: a session id belongs to the user who first used it (table `chat_sessions`). Another user
sending the same id gets 403 and never sees its history; the LangGraph thread id is also derived from both
(`<pseudonymised user>:<session>`), so histories could not mix even without the check."""

from __future__ import annotations

import threading

from shopagent.db import sessions
from shopagent.db.connection import Pool
from shopagent.observability.privacy import pseudonymise


class SessionForbiddenError(Exception):
    """The session belongs to another user."""


class SessionStore:
    """Who owns which session: in PostgreSQL, or in memory when the database was down at start-up."""

    def __init__(self, pool: Pool | None, salt: str):
        """`salt` keys the pseudonyms that thread ids are built from."""
        self.pool = pool
        self._salt = salt
        self._owners: dict[str, str] = {}
        self._lock = threading.Lock()

    def thread_id(self, user_id: str, session_id: str) -> str:
        """LangGraph thread of a user's session (derived from both, so users never share one)."""
        return f"{pseudonymise(user_id, self._salt)}:{session_id}"

    def _owner(self, session_id: str, user_id: str | None) -> str | None:
        """Owner of a session; claims it for `user_id` when given and new."""
        if self.pool is None:
            with self._lock:
                if user_id is not None:
                    self._owners.setdefault(session_id, user_id)
                return self._owners.get(session_id)
        with self.pool.connection() as conn:
            if user_id is not None:
                return sessions.claim_session(conn, session_id, user_id)
            return sessions.session_owner(conn, session_id)

    def claim(self, user_id: str, session_id: str) -> None:
        """Use (or start) a session; another user's session raises SessionForbiddenError."""
        if self._owner(session_id, user_id) != user_id:
            raise SessionForbiddenError(session_id)

    def check(self, user_id: str, session_id: str) -> bool:
        """True if the session exists and is the user's; another user's raises; unknown is False."""
        owner = self._owner(session_id, None)
        if owner is not None and owner != user_id:
            raise SessionForbiddenError(session_id)
        return owner is not None

    def forget(self, user_id: str, session_id: str) -> None:
        """Remove the ownership record."""
        if self.pool is None:
            with self._lock:
                self._owners.pop(session_id, None)
            return
        with self.pool.connection() as conn:
            sessions.delete_session(conn, session_id, user_id)
