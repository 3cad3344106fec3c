"""Past one machine, with real servers: Chroma's client/server mode (`chroma run` from the chromadb package on a free
port) and DATABASE_READ_URL on a streaming replica (a second embedded PostgreSQL made a standby of a fresh primary
with `pg_basebackup -R`): searches read from the replica, writes and the checkpointer use the primary."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pgserver
import psycopg
import pytest
from conftest import make_settings, read_products, run_search
from langchain_core.embeddings import Embeddings
from pydantic import SecretStr

from shopagent.db import catalog
from shopagent.db.writes import ProductRow
from shopagent.domain import SearchOptions
from shopagent.embeddings import embedding_model_name
from shopagent.ingest import bulk
from shopagent.ingest.reader import normalise
from shopagent.retrieval.chroma import ChromaStore
from shopagent.services import Services, build_services, prepare_database
from shopagent.settings import Settings

pytestmark = pytest.mark.slow


def _free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """`chroma run` on a free port with its own directory; yields the port, stops the server after."""
    port = _free_port()
    chroma = Path(sys.executable).parent / "chroma"
    log = tmp_path_factory.mktemp("chroma-server") / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(chroma), "run", "--path", str(log.parent / "data"), "--host", "127.0.0.1", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_chroma_server_mode_serves_searches(chroma_server: int, services: Services, tmp_path: Path) -> None:
    """With CHROMA_HOST/PORT the store talks to the server (nothing is written locally) and answers searches,
    through the strategy switch too, exactly as the embedded store holding the same vectors does."""
    settings = services.settings.model_copy(
        update={"chroma_host": "127.0.0.1", "chroma_port": chroma_server, "chroma_persist_dir": tmp_path / "unused"}
    )
    store = ChromaStore.from_settings(settings, services.embeddings)
    ids = services.chroma.iter_ids()
    got = services.chroma.get(ids)
    store.upsert(
        [
            {"id": pid, "embedding": g["embedding"], "embedded_text": g["document"], **g["metadata"]}
            for pid, g in got.items()
        ]
    )
    assert store.count() == len(ids) and not (tmp_path / "unused").exists()
    for text in ("ugg slippers women", "stainless steel water bottle"):
        vec = services.embeddings.embed_query(text)
        assert [h["product_id"] for h in store.search(vec, 10)] == [
            h["product_id"] for h in services.chroma.search(vec, 10)
        ]
    served = build_services(settings, services.embeddings)
    try:
        r = run_search(served, "ugg slippers women", SearchOptions(k=5, strategy="chroma_primary"))
    finally:
        served.close()
    assert r.backend == "chroma" and len(r.products) == 5


def _embedded_rows(records: list[dict[str, Any]], embeddings: Embeddings) -> list[ProductRow]:
    """Rows with their real vectors."""
    model = embedding_model_name(embeddings)
    rows = [normalise(r, model) for r in records]
    vectors = embeddings.embed_documents([r.embedded_text for r in rows])
    return [replace(r, embedding=v, embedding_model=model) for r, v in zip(rows, vectors, strict=True)]


def _as_server_user(server: Any) -> dict[str, Any]:
    """subprocess kwargs that run PostgreSQL tools as the user the embedded server runs as (root cannot)."""
    return {"user": server.system_user} if server.system_user else {}


@pytest.fixture(scope="module")
def replica(embeddings) -> Iterator[tuple[Settings, str]]:
    """A fresh primary with 24 products and a streaming standby of it; yields (settings with DATABASE_URL = primary
    and DATABASE_READ_URL = standby, the standby's DSN)."""
    root = Path(tempfile.mkdtemp(prefix="shopagent-replica-"))
    primary = pgserver.get_server(root / "primary", cleanup_mode="delete")
    kwargs = _as_server_user(primary)
    if primary.system_user:
        shutil.chown(root, primary.system_user)
    standby_dir = root / "standby"
    started = False
    try:
        settings = make_settings(primary.get_uri(), root / "chroma")
        with prepare_database(settings, embeddings) as conn:
            bulk.load(conn, _embedded_rows(read_products()[:24], embeddings))
        socket_dir = psycopg.conninfo.conninfo_to_dict(primary.get_uri())["host"]
        pgserver.pg_basebackup(
            ["-h", socket_dir, "-U", "postgres", "-D", str(standby_dir), "-R", "-X", "stream", "-c", "fast"], **kwargs
        )
        # The primary keeps its socket in its data directory: the copy carries that socket's lock file.
        (standby_dir / ".s.PGSQL.5432.lock").unlink(missing_ok=True)
        pgserver.pg_ctl(
            ["-w", "-t", "30", "-o", f"-k {standby_dir} -h ''", "-l", str(standby_dir / "standby.log"), "start"],
            pgdata=standby_dir,
            **kwargs,
        )
        started = True
        standby = f"postgresql://postgres:@/postgres?host={standby_dir}"
        yield settings.model_copy(update={"database_read_url": SecretStr(standby)}), standby
    finally:
        if started:
            pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=standby_dir, **kwargs)
        primary.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def _wait_for_replay(primary: str, standby: str) -> None:
    """Until the standby has replayed everything the primary has written so far."""
    with psycopg.connect(primary, autocommit=True) as p, psycopg.connect(standby, autocommit=True) as s:
        target = p.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        deadline = time.monotonic() + 30
        while not s.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)).fetchone()[0]:
            assert time.monotonic() < deadline, "the standby did not catch up"
            time.sleep(0.1)


def test_read_url_sends_searches_to_the_replica(replica: tuple[Settings, str], embeddings) -> None:
    """Searches and reads by id run on the standby (in recovery, read-only); the primary pool and the checkpointer
    write to the primary; a product written on the primary becomes searchable once the standby replays it."""
    from agent.api.chat import make_checkpointer

    settings, standby = replica
    primary = settings.database_url.get_secret_value()
    _wait_for_replay(primary, standby)
    services = build_services(settings, embeddings, with_chroma=False)
    try:
        assert services.read_pool is not None and not services.startup_errors
        with services.read_pool.connection() as conn:
            assert conn.execute("SELECT pg_is_in_recovery() AS r").fetchone()["r"] is True
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                conn.execute("UPDATE products SET price = 1")
        with services.pool.connection() as conn:
            assert conn.execute("SELECT pg_is_in_recovery() AS r").fetchone()["r"] is False
        assert (
            services.search.pgvector.pool is services.read_pool and services.search.fulltext.pool is services.read_pool
        )
        name = read_products()[3]["name"]
        r = run_search(services, name, SearchOptions(k=5, strategy="hybrid"))
        assert r.backend == "hybrid" and r.products[0]["product_id"] == read_products()[3]["product_id"]

        new = {**read_products()[0], "product_id": "replica-new", "name": "Zyxquor replicated lantern"}
        with services.pool.connection() as conn:
            bulk.load(conn, _embedded_rows([new], embeddings))
        _wait_for_replay(primary, standby)
        with services.read_pool.connection() as conn:
            assert catalog.fulltext_search(conn, "zyxquor lantern", 1)[0]["product_id"] == "replica-new"

        saver, pool = make_checkpointer(services)
        try:
            with pool.connection() as conn:
                assert conn.execute("SELECT pg_is_in_recovery() AS r").fetchone()["r"] is False
        finally:
            pool.close()
        assert saver is not None
    finally:
        services.close()


def test_unreachable_read_url_falls_back_to_the_primary(replica: tuple[Settings, str], embeddings, tmp_path) -> None:
    """A read URL nobody answers: start-up records it and searches use the primary."""
    settings, _ = replica
    broken = settings.model_copy(
        update={"database_read_url": SecretStr(f"postgresql://postgres:@/postgres?host={tmp_path}")}
    )
    services = build_services(broken, embeddings, with_chroma=False)
    try:
        assert services.read_pool is None and any("read replica unavailable" in e for e in services.startup_errors)
        assert services.search.pgvector.pool is services.pool
    finally:
        services.close()
