"""Reading a shop's own PostgreSQL as a catalog source: the operator's query, run read-only through a
server-side cursor so a table of any size streams in batches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg.rows import dict_row

from shopagent.db.connection import DatabaseUnavailableError, redact


class SourceQueryError(RuntimeError):
    """The source query failed (bad SQL, missing table, permissions); the message names the database."""


def read_query(dsn: str, query: str, batch_size: int = 1000) -> Iterator[dict[str, Any]]:
    """Rows of `query` (the operator's own SQL: a SELECT over a table or view) as dicts, fetched `batch_size` at
    a time by a server-side cursor inside a READ ONLY transaction, so the query cannot write. Raises
    DatabaseUnavailableError (cannot connect) or SourceQueryError."""
    try:
        conn = psycopg.connect(dsn, row_factory=dict_row, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailableError(f"cannot connect to the source {redact(dsn)}: {exc}") from exc
    with conn:
        conn.read_only = True
        try:
            with conn.transaction(), conn.cursor(name="shopagent_source") as cur:
                cur.itersize = batch_size
                # bytes: the operator's SQL is sent as written (no placeholder parsing; nothing is interpolated).
                cur.execute(query.encode())
                yield from cur
        except psycopg.Error as exc:
            raise SourceQueryError(f"source query on {redact(dsn)} failed: {exc}") from exc
