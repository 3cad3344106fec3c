"""Catalog lifecycle SQL: the lock that keeps two syncs apart, the ids a full feed has shown (to deactivate the
rest), deactivation and purge, and the Chroma outbox the mirror drains (see migration 0009)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from psycopg import sql

from shopagent.db.connection import Connection
from shopagent.db.schema import first_value
from shopagent.db.writes import enqueue_for_chroma

# Session-level advisory lock held for a whole sync (ingest, doctor): released when the connection closes, so a
# killed run never leaves it behind. Distinct from the migrations' lock.
SYNC_LOCK_ID = 726_002


def try_sync_lock(conn: Connection) -> bool:
    """Take the sync lock on this session if nobody holds it; False when another sync runs."""
    return bool(first_value(conn.execute("SELECT pg_try_advisory_lock(%s)", (SYNC_LOCK_ID,)).fetchone()))


def release_sync_lock(conn: Connection) -> None:
    """Release the sync lock taken by `try_sync_lock` on this session."""
    conn.execute("SELECT pg_advisory_unlock(%s)", (SYNC_LOCK_ID,))


# ---------------------------------------------------------------- full feeds: what was seen


def start_seen(conn: Connection) -> None:
    """An empty session-local set of the ids a full feed has shown (gone with the session, so a killed run
    leaves nothing that could deactivate anything)."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS sync_seen (id text PRIMARY KEY)")
    conn.execute("TRUNCATE sync_seen")


def mark_seen(conn: Connection, ids: Sequence[str]) -> None:
    """Add ids to the seen set."""
    if ids:
        conn.execute("INSERT INTO sync_seen SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING", (list(ids),))


_ABSENT = sql.SQL("p.active AND NOT EXISTS (SELECT 1 FROM sync_seen s WHERE s.id = p.id)")


def absent_counts(conn: Connection) -> tuple[int, int]:
    """(active products, active products the feed did not show)."""
    query = sql.SQL(
        "SELECT count(*) FILTER (WHERE p.active) AS active, count(*) FILTER (WHERE {}) AS absent FROM products p"
    ).format(_ABSENT)
    row = conn.execute(query).fetchone()
    return (int(row["active"]), int(row["absent"])) if row else (0, 0)


def deactivate_absent(conn: Connection) -> list[str]:
    """Deactivate the active products the feed did not show (one transaction, queued for Chroma); their ids."""
    query = sql.SQL("UPDATE products p SET active = false, deactivated_at = now() WHERE {} RETURNING p.id")
    with conn.transaction():
        ids = [r["id"] for r in conn.execute(query.format(_ABSENT)).fetchall()]
        enqueue_for_chroma(conn, dict.fromkeys(ids, False))
    return ids


def deactivate(conn: Connection, ids: Sequence[str]) -> list[str]:
    """Deactivate these products (explicit deletions; unknown or already inactive ids are ignored); the ids
    deactivated."""
    with conn.transaction():
        done = [
            r["id"]
            for r in conn.execute(
                "UPDATE products SET active = false, deactivated_at = now() WHERE id = ANY(%s) AND active RETURNING id",
                (list(ids),),
            ).fetchall()
        ]
        enqueue_for_chroma(conn, dict.fromkeys(done, False))
    return done


def purge_inactive(conn: Connection, days: float) -> list[str]:
    """Delete products inactive for at least `days` days (queued for removal from Chroma); their ids."""
    with conn.transaction():
        ids = [
            r["id"]
            for r in conn.execute(
                "DELETE FROM products WHERE NOT active AND deactivated_at <= now() - make_interval(secs => %s)"
                " RETURNING id",
                (float(days) * 86400,),
            ).fetchall()
        ]
        enqueue_for_chroma(conn, dict.fromkeys(ids, False))
    return ids


def clear_vectors(conn: Connection, ids: Sequence[str]) -> list[str]:
    """Drop unusable vectors (and the hash, so the next sync embeds the text again), queued for Chroma; the ids."""
    with conn.transaction():
        done = [
            r["id"]
            for r in conn.execute(
                "UPDATE products SET embedding = NULL, content_hash = '' WHERE id = ANY(%s) RETURNING id", (list(ids),)
            ).fetchall()
        ]
        enqueue_for_chroma(conn, dict.fromkeys(done, False))
    return done


# ---------------------------------------------------------------- the Chroma outbox


def outbox_batch(conn: Connection, limit: int, ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The oldest queued entries ({id, vector, seq}), at most `limit`, only `ids` when given."""
    if ids is None:
        query, params = "SELECT id, vector, seq FROM chroma_outbox ORDER BY seq LIMIT %s", (limit,)
        return [dict(r) for r in conn.execute(query, params).fetchall()]
    rows = conn.execute(
        "SELECT id, vector, seq FROM chroma_outbox WHERE id = ANY(%s) ORDER BY seq LIMIT %s", (list(ids), limit)
    ).fetchall()
    return [dict(r) for r in rows]


def outbox_done(conn: Connection, entries: Sequence[dict[str, Any]]) -> None:
    """Remove pushed entries, unless a newer change re-queued them meanwhile."""
    if entries:
        conn.execute(
            "DELETE FROM chroma_outbox o USING unnest(%s::text[], %s::bigint[]) AS d(id, seq)"
            " WHERE o.id = d.id AND o.seq <= d.seq",
            ([e["id"] for e in entries], [e["seq"] for e in entries]),
        )


def outbox_count(conn: Connection) -> int:
    """Entries waiting for the mirror."""
    return int(first_value(conn.execute("SELECT count(*) FROM chroma_outbox").fetchone()))


def mirror_rows(conn: Connection, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """id -> what Chroma holds of a product (filterable and shown fields, active, text, vector as float32 array
    or None, model), for the ids that exist."""
    rows = conn.execute(
        """SELECT id, name, brand, color, category, price::float8 AS price, in_stock, image_url, active,
                  embedded_text, embedding, embedding_model
           FROM products WHERE id = ANY(%s)""",
        (list(ids),),
    ).fetchall()
    return {
        r["id"]: {**r, "embedding": None if r["embedding"] is None else np.asarray(r["embedding"], dtype=np.float32)}
        for r in rows
    }


def embedded_ids(conn: Connection) -> list[str]:
    """Ids of products with a vector (what Chroma should hold), ordered."""
    return [r["id"] for r in conn.execute("SELECT id FROM products WHERE embedding IS NOT NULL ORDER BY id")]
