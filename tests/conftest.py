"""Shared fixtures: a real embedded PostgreSQL (pgvector) with per-session databases, a real
Chroma directory, the real MiniLM model, and a slice of the sample catalog loaded into both."""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pgserver
import psycopg
import pytest
from psycopg import sql
from pydantic import SecretStr

from shopagent.db.connection import start_embedded_server
from shopagent.domain import SearchOptions, SearchResult
from shopagent.embeddings import embedding_model_name
from shopagent.embeddings.multilingual import MultilingualEmbeddings
from shopagent.embeddings.sbert import LocalMiniLMEmbeddings
from shopagent.evals.metrics import load_labels, load_queries
from shopagent.ingest.multilingual import backfill_multilingual
from shopagent.ingest.pipeline import ingest
from shopagent.retrieval.chroma import ChromaStore
from shopagent.services import Services, build_services, prepare_database
from shopagent.settings import PROJECT_ROOT, Settings
from shopagent.understanding import parse_search

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("LANGSMITH_TRACING", "false")
# The suite shares one torch model (the `embeddings` fixture); scripts it runs as subprocesses must embed
# with the same runtime, or their content hashes differ. The ONNX runtime has its own tests.
os.environ.setdefault("EMBEDDING_RUNTIME", "torch")

DATA = PROJECT_ROOT / "data" / "esci-us"
# Queries whose judged products are always in the test slice (real shopper queries).
SLICE_QUERY_IDS = ("q013", "q024", "q008", "q003", "q018")
SLICE_EXTRA = 250


def read_products() -> list[dict[str, Any]]:
    """The whole sample catalog (raw records)."""
    with gzip.open(DATA / "products.jsonl.gz", "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="session")
def catalog_slice() -> list[dict[str, Any]]:
    """~450 real products: every judged product of SLICE_QUERY_IDS plus the first SLICE_EXTRA."""
    products = read_products()
    labels = load_labels(DATA / "labels.tsv")
    wanted = {pid for q in SLICE_QUERY_IDS for pid in labels.get(q, {})}
    chosen = [p for p in products if p["product_id"] in wanted]
    seen = {p["product_id"] for p in chosen}
    chosen += [p for p in products[:SLICE_EXTRA] if p["product_id"] not in seen]
    return chosen


@pytest.fixture(scope="session")
def queries() -> dict[str, str]:
    """The shared queries."""
    return load_queries(DATA / "queries.tsv")


@pytest.fixture(scope="session")
def labels() -> dict[str, dict[str, int]]:
    """The shared judgements."""
    return load_labels(DATA / "labels.tsv")


@pytest.fixture(scope="session")
def server_dsn() -> str:
    """DSN of the embedded test server (its own data dir), or TEST_DATABASE_URL."""
    if url := os.environ.get("TEST_DATABASE_URL"):
        return url
    return start_embedded_server(PROJECT_ROOT / ".data" / "test-pg")


@pytest.fixture(scope="session")
def make_database(server_dsn: str) -> Iterator[Callable[[], str]]:
    """Factory of fresh, uniquely named databases (dropped at the end of the session)."""
    created: list[str] = []

    def make() -> str:
        name = f"shopagent_test_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(server_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        created.append(name)
        params = psycopg.conninfo.conninfo_to_dict(server_dsn)
        params["dbname"] = name
        return psycopg.conninfo.make_conninfo(**params)

    yield make
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        for name in created:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def multilingual() -> MultilingualEmbeddings:
    """The packaged multilingual encoder (USE multilingual v3), loaded once."""
    return MultilingualEmbeddings()


@pytest.fixture(scope="session")
def embeddings() -> LocalMiniLMEmbeddings:
    """The real packaged MiniLM, loaded once."""
    return LocalMiniLMEmbeddings()


def make_settings(dsn: str, chroma_dir: Path, **overrides: Any) -> Settings:
    """Settings for tests: no .env, explicit database and Chroma directory."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=SecretStr(dsn),
        chroma_persist_dir=chroma_dir,
        chroma_collection=f"test_{uuid.uuid4().hex[:8]}",
        **overrides,
    )


@pytest.fixture
def fresh(
    make_database: Callable[[], str], tmp_path: Path, embeddings: LocalMiniLMEmbeddings
) -> Iterator[tuple[Settings, psycopg.Connection]]:
    """Settings and a migrated autocommit connection for a brand-new database."""
    from shopagent.services import prepare_database

    dsn = make_database()
    settings = make_settings(dsn, tmp_path / "chroma")
    conn = prepare_database(settings, embeddings, dsn)
    yield settings, conn
    conn.close()


@pytest.fixture(scope="session")
def loaded_settings(
    make_database: Callable[[], str],
    tmp_path_factory: pytest.TempPathFactory,
    embeddings: LocalMiniLMEmbeddings,
    multilingual: MultilingualEmbeddings,
    catalog_slice: list[dict[str, Any]],
) -> Settings:
    """Settings of a session database + Chroma collection holding the catalog slice (read-only use)."""
    settings = make_settings(make_database(), tmp_path_factory.mktemp("chroma"))
    chroma = ChromaStore.from_settings(settings, embeddings)
    with prepare_database(settings, embeddings) as conn:
        summary = ingest(
            conn,
            embeddings,
            embedding_model_name(embeddings),
            catalog_slice,
            batch_size=128,
            on_batch=chroma.upsert_rows,
        )
    assert summary.errors == 0 and summary.embedded == len(catalog_slice)
    with prepare_database(settings, embeddings) as conn:
        written, refused = backfill_multilingual(conn, multilingual)
    assert written == len(catalog_slice) and refused == []
    return settings


@pytest.fixture(scope="session")
def services(
    loaded_settings: Settings, embeddings: LocalMiniLMEmbeddings, multilingual: MultilingualEmbeddings
) -> Iterator[Services]:
    """Search services over the loaded slice (the session's models, not second copies)."""
    svc = build_services(loaded_settings, embeddings, multilingual=multilingual)
    yield svc
    svc.close()


# ---------------------------------------------------------------- a server that tests stop and restart


@pytest.fixture
def doomed(
    tmp_path_factory: pytest.TempPathFactory, embeddings: LocalMiniLMEmbeddings, catalog_slice: list[dict[str, Any]]
) -> Iterator[tuple[Services, Path]]:
    """Services over a throwaway embedded server (its own data dir: `stop_server` / `start_server` it) holding 40
    products, most of them slippers, mirrored in Chroma."""
    data_dir = tmp_path_factory.mktemp("doomed-pg") / "pg"
    assert PROJECT_ROOT / ".data" not in data_dir.resolve().parents  # never the dev or shared test server
    dsn = start_embedded_server(data_dir)
    settings = make_settings(dsn, tmp_path_factory.mktemp("doomed-chroma"))
    chroma = ChromaStore.from_settings(settings, embeddings)
    slippers = [p for p in catalog_slice if "slipper" in p["name"].lower()][:25]
    products = slippers + [p for p in catalog_slice if p not in slippers][:15]
    with prepare_database(settings, embeddings, dsn) as conn:
        summary = ingest(conn, embeddings, embedding_model_name(embeddings), products, on_batch=chroma.upsert_rows)
    assert summary.embedded == 40
    services = build_services(settings, embeddings)
    yield services, data_dir
    services.close()
    stop_server(data_dir)  # in case the test failed before stopping it


def stop_server(data_dir: Path) -> None:
    """Stop a throwaway server at once, as a crash would (pg_ctl -m immediate)."""
    server = pgserver.get_server(data_dir, cleanup_mode=None)
    try:
        pgserver.pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=server.pgdata, user=server.system_user, timeout=30)
    except Exception:  # noqa: BLE001 - already stopped
        pass


def start_server(data_dir: Path) -> None:
    """Start a stopped throwaway server again (crash recovery; returns once it accepts connections)."""
    pgserver.get_server(data_dir, cleanup_mode=None).ensure_postgres_running()


def run_search(services: Services, query: str, options: SearchOptions | None = None) -> SearchResult:
    """A raw shopper query through understanding and the strategy switch, as the retriever runs it."""
    return services.search.search(parse_search(query), options)


def run_cli(*args: str) -> tuple[int, str]:
    """`shopagent ARGS` in this process (the session's model stays loaded); (exit code, stdout)."""
    from typer.testing import CliRunner

    from shopagent.cli import app

    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout


# ---------------------------------------------------------------- servers in subprocesses


def server_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a server subprocess on `settings`' database and Chroma collection, offline brain."""
    return {
        **os.environ,
        "DATABASE_URL": settings.database_url.get_secret_value() if settings.database_url else "",
        "CHROMA_PERSIST_DIR": str(settings.chroma_persist_dir),
        "CHROMA_COLLECTION": settings.chroma_collection,
        "OLLAMA_BASE_URL": "",
        "OLLAMA_CHAT_MODEL": "",
        **extra,
    }


def free_port() -> int:
    """A free local port (2024 is taken on these machines)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 60.0) -> None:
    """Wait until GET `url` answers 200 (failing with the log's tail if the process exits or time runs out)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, log.read_text()[-3000:]
        time.sleep(0.5)
    pytest.fail(f"{url} did not come up:\n{log.read_text()[-3000:]}")


def stop_processes(*procs: subprocess.Popen[bytes]) -> None:
    """Terminate them all at once, then kill those still running after 15 s."""
    for proc in procs:
        proc.terminate()
    deadline = time.monotonic() + 15
    for proc in procs:
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            proc.kill()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the browser tests last: Playwright's sync API keeps an event loop running in the main thread
    for the rest of the session, and pytest-asyncio cannot start its runner under it."""
    items.sort(key=lambda item: item.path.name == "test_browser.py")
