"""Sessions, all in PostgreSQL so that any worker or replica can serve any request: who owns a session id, one turn
at a time per conversation, and the traced runs of turns.

- Ownership: a session id belongs to the user who first used it (table `chat_sessions`). Another user sending the
  same id gets 403 and never sees its history; the LangGraph thread id is also derived from both
  (`<pseudonymised user>:<session>`), so histories could not mix even without the check.
- Overlapping turns of one conversation are *enqueued* (LangGraph Platform's default double-texting strategy): a
  turn holds its thread's advisory lock (`pg_advisory_xact_lock`, in a transaction on a connection of this store's
  pool) for its whole run, so the next message of the session waits for it, then reads its checkpoint: no turn that
  answered 200 is lost, in one process or across workers. One that waits longer than TURN_WAIT_TIMEOUT_S gets 409
  with Retry-After. Deleting a session takes the same lock, so a delete waits for the turn in flight, and the
  conversation stays deleted.
- Traced runs (table `chat_runs`): the feedback endpoint accepts ratings of these only.
- Database down: a turn gets a lease without memory (no lock, no ownership, nothing read or written; the answer
  says the conversation's memory is unavailable). That is safe because such a turn reads and writes no history.
  Reading, deleting and rating raise `DatabaseUnavailableError` (503).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
from psycopg.errors import LockNotAvailable
from psycopg_pool import PoolTimeout

from shopagent.db import sessions
from shopagent.db.connection import Connection, DatabaseUnavailableError, Pool
from shopagent.observability.privacy import pseudonymise

log = logging.getLogger(__name__)

# Rated turns older than this get 404 (the table is pruned at start-up).
RUN_RETENTION_DAYS = 30


class SessionForbiddenError(Exception):
    """The session belongs to another user."""


class SessionBusyError(Exception):
    """The session's earlier turns (or the server's turn slots) did not free up in time."""

    def __init__(self, detail: str, retry_after_s: int = 1):
        """`detail` is safe to show; `retry_after_s` goes into the Retry-After header."""
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class TurnLease:
    """The right to run one turn of a thread: its lock, held in an open transaction until `release`. Without a
    connection (the database is unavailable) the turn runs without memory."""

    def __init__(self, session_id: str, conn: Connection | None = None, pool: Pool | None = None):
        """`conn` is in a transaction holding the thread's lock; it goes back to `pool` on release."""
        self.session_id = session_id
        self._conn = conn
        self._pool = pool

    @property
    def memory(self) -> bool:
        """True when the conversation's memory (PostgreSQL) is available for this turn."""
        return self._conn is not None

    @property
    def connection(self) -> Connection:
        """The connection holding the lock (only for a lease with memory)."""
        if self._conn is None:
            raise DatabaseUnavailableError("no database connection for this turn")
        return self._conn

    def record_run(self, run_id: str) -> None:
        """Remember a traced turn's run id (with the turn's transaction; lost, with a warning, if that failed)."""
        if self._conn is None:
            return
        try:
            sessions.record_run(self._conn, run_id, self.session_id)
        except psycopg.Error as exc:
            log.warning("run %s not recorded (feedback on it will get 404): %s", run_id, type(exc).__name__)

    def release(self) -> None:
        """Commit (releasing the lock) and return the connection; idempotent. A connection that died took the lock
        with it, so failing to commit is only logged."""
        conn, self._conn = self._conn, None
        if conn is None or self._pool is None:
            return
        try:
            conn.execute("COMMIT")
        except psycopg.Error as exc:
            log.warning("turn lock released with its connection: %s", type(exc).__name__)
        finally:
            self._pool.putconn(conn)


class SessionStore:
    """Ownership, the turn lock and traced runs, on a pool of its own (`pool` None: the database was down at
    start-up, and every turn runs without memory)."""

    def __init__(self, pool: Pool | None, salt: str, wait_timeout_s: float):
        """`salt` keys the pseudonyms that thread ids are built from; a turn waits at most `wait_timeout_s`."""
        self.pool = pool
        self._salt = salt
        self.wait_timeout_s = wait_timeout_s

    def thread_id(self, user_id: str, session_id: str) -> str:
        """LangGraph thread of a user's session (derived from both, so users never share one)."""
        return f"{pseudonymise(user_id, self._salt)}:{session_id}"

    def begin(self, user_id: str, session_id: str) -> TurnLease:
        """Wait for the session's earlier turns, then claim it (or start it) for this turn. Raises
        SessionForbiddenError (another user's), SessionBusyError (not free within TURN_WAIT_TIMEOUT_S); a lease
        without memory when the database is unavailable. The caller must `release` the lease."""
        if self.pool is None:
            return TurnLease(session_id)
        try:
            lease = TurnLease(session_id, self._locked(user_id, session_id), self.pool)
            try:
                owner = sessions.claim_session(lease.connection, session_id, user_id)
            except BaseException:
                lease.release()
                raise
        except psycopg.OperationalError as exc:
            if isinstance(exc, DatabaseUnavailableError) or self._down():
                return TurnLease(session_id)
            raise
        if owner != user_id:
            lease.release()
            raise SessionForbiddenError(session_id)
        return lease

    def _locked(self, user_id: str, session_id: str) -> Connection:
        """A connection in a transaction holding the thread's lock (waiting at most the turn timeout in all)."""
        assert self.pool is not None
        started = time.monotonic()
        try:
            conn = self.pool.getconn(timeout=self.wait_timeout_s)
        except PoolTimeout:
            raise SessionBusyError("too many turns in flight; retry shortly") from None
        try:
            conn.execute("BEGIN")
            remaining = max(self.wait_timeout_s - (time.monotonic() - started), 0.001)
            sessions.lock_thread(conn, self.thread_id(user_id, session_id), remaining)
        except LockNotAvailable:
            TurnLease(session_id, conn, self.pool).release()
            raise SessionBusyError("an earlier message of this session is still being answered") from None
        except BaseException:
            TurnLease(session_id, conn, self.pool).release()
            raise
        return conn

    def check(self, user_id: str, session_id: str) -> bool:
        """True if the session exists and is the user's; another user's raises; unknown is False."""
        with self._connection() as conn:
            owner = sessions.session_owner(conn, session_id)
        if owner is not None and owner != user_id:
            raise SessionForbiddenError(session_id)
        return owner is not None

    def forget(self, user_id: str, session_id: str, forget_thread: Callable[[str], None]) -> None:
        """Delete the session once its turn in flight (if any) is over: `forget_thread(thread_id)` (the checkpoints),
        then the ownership record, under the thread's lock, so no running turn brings the conversation back."""
        if self.pool is None:
            raise DatabaseUnavailableError("database unavailable")
        lease = TurnLease(session_id, self._locked(user_id, session_id), self.pool)
        try:
            forget_thread(self.thread_id(user_id, session_id))
            sessions.delete_session(lease.connection, session_id, user_id)
        finally:
            lease.release()

    def run_known(self, run_id: str) -> bool:
        """True if `run_id` is a traced turn (of any worker)."""
        with self._connection() as conn:
            return sessions.run_known(conn, run_id)

    def forget_old_runs(self) -> None:
        """Drop run ids older than RUN_RETENTION_DAYS (at start-up; skipped when the database is down)."""
        if self.pool is None:
            return
        try:
            with self.pool.connection() as conn:
                dropped = sessions.forget_runs_before(conn, RUN_RETENTION_DAYS)
        except psycopg.Error as exc:
            log.warning("old run ids not pruned: %s", type(exc).__name__)
            return
        if dropped:
            log.info("forgot %d run ids older than %d days", dropped, RUN_RETENTION_DAYS)

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        """A pooled connection (DatabaseUnavailableError when there is no pool)."""
        if self.pool is None:
            raise DatabaseUnavailableError("database unavailable")
        with self.pool.connection() as conn:
            yield conn

    def _down(self) -> bool:
        """True when the database is known to be down (a connection that just failed made it probe)."""
        return self.pool is not None and self.pool.availability is not None and self.pool.availability.is_down
