"""Catalog commands: `reindex` and `migrate-chroma` (the sync commands `ingest` and `doctor` are in
`shopagent.cli.sync`)."""

from __future__ import annotations

import json
import logging

import typer
from tqdm import tqdm

from shopagent.db import schema
from shopagent.db.connection import DatabaseUnavailableError, connect
from shopagent.db.schema import IndexBuild, VectorIndexSpec
from shopagent.embeddings import make_embeddings
from shopagent.ingest.chroma_copy import Report, run
from shopagent.settings import get_settings

log = logging.getLogger("shopagent.cli")


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
    app.command("reindex")(reindex)
    app.command("migrate-chroma")(migrate_chroma)
