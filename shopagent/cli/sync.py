"""Catalog sync commands: `ingest` (load or sync a feed file or a database query) and `doctor` (compare Chroma
with PostgreSQL and repair the drift). Exit statuses: see `shopagent.ingest.sync` (EXIT_*)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from tqdm import tqdm

from shopagent.db import lifecycle, schema
from shopagent.db.connection import DatabaseUnavailableError, connect
from shopagent.db.source import SourceQueryError
from shopagent.embeddings import EmbeddingDimensionError
from shopagent.ingest.doctor import doctor as run_doctor
from shopagent.ingest.mapping import load_mapping
from shopagent.ingest.mirror import ChromaMirror
from shopagent.ingest.reader import CatalogError
from shopagent.ingest.sync import (
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_ROWS_FAILED,
    EXIT_USAGE,
    Mode,
    Source,
    SyncLockedError,
    SyncOptions,
    SyncSummary,
    run_sync,
)
from shopagent.settings import get_settings

log = logging.getLogger("shopagent.cli")
_STATUS = {0: "ok", 1: "rows_failed", 2: "failed", 3: "locked", 4: "guard_refused"}


def _write_summary(path: Path | None, code: int, body: dict[str, Any]) -> None:
    """The run's summary as JSON for monitoring (status, exit code, finish time, then the summary)."""
    if path is None:
        return
    doc = {"status": _STATUS[code], "exit_code": code, "finished_at": datetime.now(UTC).isoformat(), **body}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")


def _print_summary(s: SyncSummary) -> None:
    """The summary as a few readable lines."""
    lines = [
        f"{s.mode} sync: read {s.read}  inserted {s.inserted}  updated {s.updated} (metadata only {s.metadata_only})"
        f"  embedded {s.embedded} (+{s.multilingual_embedded} multilingual)  unchanged {s.skipped}",
        f"rejected {s.rejected}  repaired {s.repaired}  errors {s.errors}  deactivated {s.deactivated}"
        f"  purged {s.purged}",
        f"coverage {s.coverage_pct:.1f}%  {s.products_per_s:.1f} products/s ({s.seconds:.1f} s)",
    ]
    if s.chroma is not None:
        c = s.chroma
        lines.append(
            f"chroma: vectors {c.vectors}  metadata {c.metadata}  removed {c.deleted}  pending {s.chroma_pending}"
        )
    if s.issues:
        lines.append("issues: " + ", ".join(f"{reason} {n}" for reason, n in s.issues.most_common()))
    if s.deactivation and s.deactivation.get("refused"):
        lines.append(f"DEACTIVATION REFUSED: {s.deactivation['refused']} (--force to apply)")
    lines += [f"  error: {msg}" for msg in s.error_samples]
    typer.echo("\n".join(lines))


def ingest(
    catalog: Path | None = typer.Option(None, "--catalog", help="products .jsonl, .jsonl.gz or .csv"),
    source_sql: str | None = typer.Option(None, "--source-sql", help="read the catalog with this SELECT instead"),
    source_url: str | None = typer.Option(
        None, "--source-url", help="database of --source-sql (default: SOURCE_DATABASE_URL)"
    ),
    mapping: Path | None = typer.Option(None, "--mapping", help='TOML file: [columns] field = "column"'),
    maps: list[str] = typer.Option([], "--map", help="FIELD=COLUMN (repeatable; wins over --mapping)"),
    mode: str = typer.Option("incremental", "--mode", help="incremental | full (the feed is the whole catalog)"),
    delete_ids: Path | None = typer.Option(None, "--delete-ids", help="file of product ids to deactivate"),
    purge_after: float | None = typer.Option(None, "--purge-after", help="delete products inactive this many days"),
    max_share: float | None = typer.Option(
        None, "--max-deactivate-share", min=0.0, max=1.0, help="full sync guard (default SYNC_MAX_DEACTIVATE_SHARE)"
    ),
    force: bool = typer.Option(False, "--force", help="apply a full sync's deactivations despite the guard"),
    price_locale: str | None = typer.Option(None, "--price-locale", help="feed locale for prices, e.g. de_DE"),
    currency: str | None = typer.Option(None, "--currency", help="ISO code of the feed's prices, e.g. EUR"),
    rejects: Path | None = typer.Option(None, "--rejects", help="write rejected/repaired rows here (JSONL)"),
    summary_json: Path | None = typer.Option(None, "--summary-json", help="also write the summary here as JSON"),
    limit: int | None = typer.Option(None, "--limit", min=1, help="only the first N records (incremental only)"),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="records per embed+upsert batch"),
    reembed: bool = typer.Option(False, "--reembed", help="re-embed every product, changed or not"),
    stores: str = typer.Option("pgvector", "--stores", help="comma list of stores to fill: pgvector,chroma"),
    reset_embeddings: bool = typer.Option(
        False, "--reset-embeddings", help="re-create the embedding column for the configured model (re-embeds all)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
) -> None:
    """Load or sync a product catalog into PostgreSQL (and Chroma), embedding only what changed.

    Exit 0 all stored, 1 rows rejected or failed, 2 bad usage or unreadable source, 3 another sync running,
    4 a full sync's deactivations refused by the guard."""
    settings = get_settings()
    if mode not in ("incremental", "full"):
        raise typer.BadParameter("use incremental or full", param_hint="--mode")
    dsn = source_url or (settings.source_database_url.get_secret_value() if settings.source_database_url else None)
    if (catalog is None) == (source_sql is None) or (source_sql is not None and not dsn):
        raise typer.BadParameter("give --catalog PATH, or --source-sql with --source-url (or SOURCE_DATABASE_URL)")
    code, body = EXIT_USAGE, {}
    try:
        source = Source(catalog, dsn, source_sql, load_mapping(mapping, maps))
        with tqdm(total=limit, unit="product", disable=quiet, desc="ingest") as bar:
            options = SyncOptions(
                mode=_mode(mode),
                stores=[s.strip() for s in stores.split(",") if s.strip()],
                batch_size=batch_size,
                limit=limit,
                reembed=reembed,
                reset_embeddings=reset_embeddings,
                delete_ids=delete_ids,
                purge_after_days=purge_after,
                max_deactivate_share=max_share,
                force=force,
                price_locale=price_locale,
                currency=currency,
                rejects=rejects,
                progress=bar.update,
            )
            summary = run_sync(settings, source, options)
        code, body = summary.exit_code, summary.as_dict()
        if as_json:
            typer.echo(json.dumps(body, indent=2, default=str))
        else:
            _print_summary(summary)
    except SyncLockedError as exc:
        log.error("%s", exc)
        code = EXIT_LOCKED
    except (
        ValueError,
        OSError,
        CatalogError,
        DatabaseUnavailableError,
        EmbeddingDimensionError,
        SourceQueryError,
    ) as exc:
        log.error("%s", exc)
        body = {"error": str(exc)}
    _write_summary(summary_json, code, body)
    raise typer.Exit(code)


def _mode(value: str) -> Mode:
    """The --mode value, typed."""
    return "full" if value == "full" else "incremental"


def doctor(
    check_only: bool = typer.Option(False, "--check-only", help="report the drift, repair nothing"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Compare Chroma with PostgreSQL (ids, vectors and their model, texts, filterable fields) and repair the drift
    from PostgreSQL. Exit 0 in step or repaired, 1 drift left (--check-only), 2 unavailable, 3 a sync runs."""
    settings = get_settings()
    try:
        conn = connect(settings)
    except DatabaseUnavailableError as exc:
        log.error("%s", exc)
        raise typer.Exit(EXIT_USAGE) from None
    with conn:
        dimension = schema.embedding_column_dimension(conn)
        if dimension is None:
            log.error("the catalog is not loaded yet (no products table): run `shopagent ingest` first")
            raise typer.Exit(EXIT_USAGE)
        if not lifecycle.try_sync_lock(conn):
            log.error("another sync (ingest or doctor) is running against this database")
            raise typer.Exit(EXIT_LOCKED)
        from shopagent.retrieval.chroma import ChromaStore

        report = run_doctor(conn, ChromaMirror(ChromaStore.from_settings(settings), dimension), repair=not check_only)
    body = report.as_dict()
    if as_json:
        typer.echo(json.dumps(body, indent=2))
    else:
        state = "in step" if body["in_step"] else f"{report.drifted} products drifted"
        typer.echo(f"PostgreSQL {report.postgres} products with vectors, Chroma {report.chroma} ids: {state}")
        typer.echo("drift: " + ", ".join(f"{k} {v}" for k, v in body["drift"].items()))
        if body["metadata_fields"]:
            typer.echo("metadata fields: " + ", ".join(f"{k} {v}" for k, v in body["metadata_fields"].items()))
        if report.repaired is not None:
            r = report.repaired
            typer.echo(f"repaired: vectors {r.vectors}  metadata {r.metadata}  removed {r.deleted}")
    raise typer.Exit(EXIT_ROWS_FAILED if report.drifted and check_only else EXIT_OK)


def register(app: typer.Typer) -> None:
    """Add this module's commands."""
    app.command("ingest")(ingest)
    app.command("doctor")(doctor)
