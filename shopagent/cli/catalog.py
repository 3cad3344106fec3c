"""Catalog commands: `ingest`, `reindex` and `migrate-chroma`."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer
from tqdm import tqdm

from shopagent.db import schema
from shopagent.db.connection import DatabaseUnavailableError, connect
from shopagent.db.schema import IndexBuild, VectorIndexSpec
from shopagent.embeddings import EmbeddingDimensionError, make_embeddings
from shopagent.ingest import STORES, CatalogError, run_ingest
from shopagent.ingest.chroma_copy import Report, run
from shopagent.settings import get_settings

log = logging.getLogger("shopagent.cli")


def ingest(
    catalog: Path = typer.Option(..., "--catalog", help="products .jsonl, .jsonl.gz or .csv"),
    limit: int | None = typer.Option(None, "--limit", min=1, help="only the first N records"),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="records per embed+upsert batch"),
    force: bool = typer.Option(False, "--force", help="re-embed every product, changed or not"),
    stores: str = typer.Option("pgvector", "--stores", help="comma list of stores to fill: pgvector,chroma"),
    reset_embeddings: bool = typer.Option(
        False, "--reset-embeddings", help="re-create the embedding column for the configured model (re-embeds all)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
) -> None:
    """Load a product catalog into PostgreSQL (and optionally Chroma), embedding only what changed."""
    chosen = [s.strip() for s in stores.split(",") if s.strip()]
    if unknown := set(chosen) - set(STORES):
        raise typer.BadParameter(
            f"unknown store(s) {', '.join(sorted(unknown))}; valid: {', '.join(STORES)}", param_hint="--stores"
        )
    try:
        with tqdm(total=limit, unit="product", disable=quiet, desc="ingest") as bar:
            summary = run_ingest(
                get_settings(),
                catalog,
                stores=chosen,
                limit=limit,
                batch_size=batch_size,
                force=force,
                reset_embeddings=reset_embeddings,
                progress=bar.update,
            )
    except (CatalogError, DatabaseUnavailableError, EmbeddingDimensionError) as exc:
        log.error("%s", exc)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(summary.as_dict(), indent=2))
    else:
        typer.echo(
            f"read {summary.read}  inserted {summary.inserted}  updated {summary.updated}  "
            f"embedded {summary.embedded} (+{summary.multilingual_embedded} multilingual)  skipped {summary.skipped}  "
            f"errors {summary.errors}  "
            f"coverage {summary.coverage_pct:.1f}%  {summary.products_per_s:.1f} products/s ({summary.seconds:.1f} s)"
        )
        for msg in summary.error_samples:
            typer.echo(f"  error: {msg}")
    raise typer.Exit(1 if summary.errors else 0)


def reindex(as_json: bool = typer.Option(False, "--json", help="print the result as JSON")) -> None:
    """Rebuild the HNSW index as the settings now describe it (HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_HALFVEC, with
    INDEX_BUILD_MAINTENANCE_WORK_MEM and INDEX_BUILD_PARALLEL_WORKERS), beside the old one and swapped in when
    built: searches go on meanwhile. Restart the service after changing HNSW_HALFVEC (queries must match)."""
    settings = get_settings()
    try:
        with connect(settings) as conn:
            if schema.embedding_column_dimension(conn) is None:
                log.error("no catalog in this database yet: run `shopagent ingest` first")
                raise typer.Exit(2)
            seconds = schema.rebuild_vector_index(
                conn, VectorIndexSpec.from_settings(settings), IndexBuild.from_settings(settings)
            )
            definition = schema.vector_index_definition(conn)
    except DatabaseUnavailableError as exc:
        log.error("%s", exc)
        raise typer.Exit(2) from None
    result = {"index": definition, "build_s": round(seconds, 2)}
    typer.echo(json.dumps(result, indent=2) if as_json else f"{definition}\nbuilt in {seconds:.1f} s")


def _print_report(report: Report) -> None:
    """A migration report as readable sections."""
    d = report.as_dict()
    lines = [
        "== pre-flight",
        *(f"  {k}: {v}" for k, v in d["preflight"]["facts"].items()),
        *(f"  PROBLEM: {p}" for p in d["preflight"]["problems"]),
    ]
    if d["analysis"] is not None:
        lines += ["== analysis", *(f"  {k}: {v}" for k, v in d["analysis"].items())]
        lines += ["== plan" + (" (dry run: nothing changed)" if report.dry_run else "")]
        lines += [f"  {action}: {n}" for action, n in d["plan"].items()]
        lines += ["  reasons: " + ", ".join(f"{k}={v}" for k, v in sorted(d["plan_reasons"].items()))]
    if (s := d["summary"]) is not None:
        lines += [
            "== summary",
            f"  duration {s['seconds']} s  migrated {s['migrated']} (copied {s['copied']}, "
            f"re-embedded {s['reembedded']}, inserted rows {s['inserted']})  skipped {s['skipped']}  "
            f"errors {s['errors']}  coverage {s['coverage_pct']:.2f}%",
        ]
        lines += [f"  error: {msg}" for msg in s["error_samples"]]
    if (v := d["verification"]) is not None:
        lines += ["== verification: " + ("OK" if v["ok"] else "FAILED")]
        lines += [f"  {k}: {value}" for k, value in v.items() if k != "ok"]
    typer.echo("\n".join(lines))


def migrate_chroma(
    dry_run: bool = typer.Option(False, "--dry-run", help="pre-flight, analysis and plan only; change nothing"),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="products per transaction"),
    force: bool = typer.Option(False, "--force", help="re-copy every vector, even identical ones"),
    no_verify: bool = typer.Option(False, "--no-verify", help="skip the post-migration verification"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bars"),
) -> None:
    """Copy the configured Chroma collection into pgvector: pre-flight, analysis, plan, batched copy (re-embedding
    only when the models differ), verification. Exit 0 clean, 1 errors, 2 pre-flight failure."""
    settings = get_settings()

    def bar(stage: str, total: int) -> tqdm:
        """One progress bar per stage."""
        return tqdm(total=total, desc=stage, unit="product", disable=quiet)

    report = run(
        settings,
        make_embeddings(settings),
        dry_run=dry_run,
        batch_size=batch_size,
        force=force,
        check=not no_verify,
        progress=bar,
    )
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        _print_report(report)
    if report.preflight["problems"]:
        for problem in report.preflight["problems"]:
            log.error("pre-flight: %s", problem)
        raise typer.Exit(2)
    raise typer.Exit(0 if report.ok else 1)


def register(app: typer.Typer) -> None:
    """Add this module's commands."""
    app.command("ingest")(ingest)
    app.command("reindex")(reindex)
    app.command("migrate-chroma")(migrate_chroma)
