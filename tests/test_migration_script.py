"""Chroma -> pgvector migration on a fresh database and a real Chroma directory with 40 real
products in every situation the plan distinguishes (identical, missing vector, missing row, legacy
model), through the library and the CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from shopagent.db import catalog, writes
from shopagent.embeddings import embedding_model_name
from shopagent.ingest import chroma_copy
from shopagent.ingest.reader import normalise
from shopagent.retrieval.chroma import ChromaStore
from shopagent.services import prepare_database
from shopagent.settings import Settings
from tests.conftest import make_settings
from tests.conftest import run_cli as cli

LEGACY = {20, 21, 35, 36, 37}  # Chroma says another model made these (random vectors stand in)
EDITED = 7  # PostgreSQL holds a newer text than Chroma's document for this one


@pytest.fixture
def scenario(make_database, tmp_path: Path, embeddings, catalog_slice) -> tuple[Settings, list[Any], list[Any]]:
    """40 products in Chroma; in PostgreSQL 0-4 identical, 5-24 without vector (7 with a newer
    text), 25-39 missing."""
    settings = make_settings(make_database(), tmp_path / "chroma")
    model = embedding_model_name(embeddings)
    rows = [normalise(raw, model) for raw in catalog_slice[:40]]
    vectors = embeddings.embed_documents([r.embedded_text for r in rows])
    rng = np.random.default_rng(7)
    in_chroma = []
    for i, (r, v) in enumerate(zip(rows, vectors, strict=True)):
        if i in LEGACY:
            rand = rng.normal(size=len(v))
            in_chroma.append(replace(r, embedding=(rand / np.linalg.norm(rand)).tolist(), embedding_model="legacy"))
        else:
            in_chroma.append(replace(r, embedding=v, embedding_model=model))
    ChromaStore.from_settings(settings).upsert_rows(in_chroma)
    with prepare_database(settings, embeddings) as conn:
        rows[EDITED] = replace(rows[EDITED], embedded_text="New: now in blue. " + rows[EDITED].embedded_text)
        writes.upsert_products(conn, in_chroma[:5] + rows[5:25])
    return settings, in_chroma, rows


def snapshot(settings: Settings) -> list[tuple]:
    """Everything a migration could change, row by row."""
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:  # type: ignore[union-attr]
        return conn.execute(
            "SELECT id, embedding::text, embedding_model, embedding_stale, content_hash, updated_at"
            " FROM products ORDER BY id"
        ).fetchall()


def run_cli(settings: Settings, embeddings, monkeypatch, capsys, *args: str) -> tuple[int, dict[str, Any]]:
    """The script's main() in this process with the scenario's settings and the session's model
    (a subprocess would load the model again); returns (exit code, printed JSON report)."""
    monkeypatch.setattr("shopagent.cli.catalog.get_settings", lambda: settings)
    monkeypatch.setattr("shopagent.cli.catalog.make_embeddings", lambda _settings: embeddings)
    code, out = cli("migrate-chroma", "--quiet", "--json", *args)
    return code, json.loads(out)


def test_dry_run_run_rerun_force(scenario, embeddings, monkeypatch, capsys) -> None:
    """Dry run (CLI) changes nothing; a run copies, inserts and re-embeds and verifies; a re-run
    migrates 0; --force re-copies all 40."""
    settings, in_chroma, rows = scenario
    before = snapshot(settings)
    code, dry = run_cli(settings, embeddings, monkeypatch, capsys, "--dry-run")
    assert code == 0, dry
    assert snapshot(settings) == before
    assert dry["plan"] == {"copy": 17, "reembed": 3, "insert": 12, "insert_reembed": 3, "skip": 5}
    assert dry["analysis"]["chroma_ids_missing_in_postgres"] == 15
    assert dry["analysis"]["chroma_ids_missing_vectors_in_postgres"] == 20

    report = chroma_copy.run(settings, embeddings, batch_size=8)
    s = report.summary
    assert report.ok, report.as_dict()
    assert (s.copied, s.reembedded, s.inserted, s.skipped, s.errors) == (29, 6, 15, 5, 0)
    assert s.coverage_pct == 100.0
    v = report.verification
    assert v["postgres_fresh_vectors_for_chroma_ids"] == 40 and v["identical"] == v["compared"] == 34

    model = embedding_model_name(embeddings)
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:  # type: ignore[union-attr]
        conn.row_factory = psycopg.rows.dict_row
        from pgvector.psycopg import register_vector

        register_vector(conn)
        states = catalog.vector_states(conn, [r.id for r in in_chroma])
        inserted = {r["id"]: r for r in catalog.get_products(conn, [r.id for r in in_chroma[25:]])}
    for i, r in enumerate(in_chroma):
        got = states[r.id]["embedding"]
        if i in LEGACY:  # re-embedded from the text with the configured model, not the Chroma vector
            # Dynamic int8 quantises activations per batch, so the same text embedded alone and in a
            # batch differs slightly (cosine ~0.98-0.99); a random Chroma vector is near 0.
            fresh = np.asarray(embeddings.embed_documents([r.embedded_text])[0], dtype=np.float32)
            assert float(got @ fresh) > 0.95 and abs(float(got @ np.asarray(r.embedding))) < 0.5
            assert states[r.id]["embedding_model"] == model
        elif i == EDITED:  # re-embedded from PostgreSQL's newer text, so no longer Chroma's vector
            assert states[r.id]["embedded_text"] == rows[EDITED].embedded_text
            assert np.max(np.abs(got - np.asarray(r.embedding, dtype=np.float32))) > 1e-3
        else:
            assert np.max(np.abs(got - np.asarray(r.embedding, dtype=np.float32))) <= 1e-6
    assert inserted[in_chroma[30].id]["name"] == in_chroma[30].name
    assert states[in_chroma[30].id]["embedded_text"] == in_chroma[30].embedded_text

    again = chroma_copy.run(settings, embeddings, batch_size=8)
    assert again.ok and again.summary.migrated == 0 and again.summary.skipped == 40
    forced = chroma_copy.run(settings, embeddings, batch_size=8, force=True)
    assert forced.ok and forced.summary.migrated == 40 and forced.summary.skipped == 0


def test_interrupted_run_completes_on_rerun(scenario, embeddings) -> None:
    """A run that dies after its first batch leaves that batch committed; the re-run does the rest."""
    settings, _, _ = scenario

    def die(ids: list[str]) -> None:
        """Simulate a crash after the first committed batch."""
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        chroma_copy.run(settings, embeddings, batch_size=10, on_batch=die)
    first = chroma_copy.run(settings, embeddings, dry_run=True)
    assert first.plan.counts()["skip"] == 5 + 10  # the committed batch is now identical
    report = chroma_copy.run(settings, embeddings, batch_size=10)
    assert report.ok and report.summary.migrated == 25 and report.summary.errors == 0
    assert report.verification["postgres_fresh_vectors_for_chroma_ids"] == 40


def test_preflight_failures_change_nothing(make_database, tmp_path: Path, embeddings, monkeypatch, capsys) -> None:
    """A missing directory, collection or a non-cosine one is reported, nothing is created (in
    PostgreSQL or Chroma), and the CLI exits 2."""
    import chromadb

    settings = make_settings(make_database(), tmp_path / "chroma")
    report = chroma_copy.run(settings, embeddings)
    assert not report.ok and "does not exist" in report.preflight["problems"][0]
    assert report.plan is None and not (tmp_path / "chroma").exists()
    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    report = chroma_copy.run(settings, embeddings)
    assert not report.ok and "not found" in report.preflight["problems"][0]
    assert client.list_collections() == []
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:  # type: ignore[union-attr]
        assert conn.execute("SELECT to_regclass('products')").fetchone() == (None,)

    client.create_collection(settings.chroma_collection, metadata={"hnsw:space": "l2"})
    report = chroma_copy.run(settings, embeddings)
    assert not report.ok and "'l2'" in report.preflight["problems"][0]
    code, report_json = run_cli(settings, embeddings, monkeypatch, capsys)
    assert code == 2 and report_json["ok"] is False and report_json["plan"] is None
