"""The `shopagent` command: one entry point for every operational task (the thin `scripts/` call it too).

    shopagent ingest --catalog PATH [--stores pgvector,chroma] ...   load or sync a catalog (or --source-sql)
    shopagent doctor [--check-only]                                  compare Chroma with PostgreSQL, repair
    shopagent reindex                                                rebuild the HNSW index with the HNSW_* settings
    shopagent search "QUERY" [--k 10] [--strategy NAME] [--json]     one search
    shopagent serve | chat                                           the HTTP API / a terminal chat
    shopagent llm-serve [--model NAME] [--port P] ...                a local chat model for the LLM brain
    shopagent evaluate | evaluate-agent | calibrate                  quality reports
    shopagent migrate-chroma [--dry-run]                             copy a Chroma collection into pgvector

Exit status: 0 success, 1 the job ran but reported errors, 2 bad usage or a failed pre-flight; `ingest` and
`doctor` also 3 (another sync is running) and `ingest` 4 (a full sync's deactivations refused by its guard).
"""

from __future__ import annotations

import logging
import os

import typer

from shopagent.cli import agent, catalog, retrieval, sync

app = typer.Typer(
    name="shopagent",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Product search for online shops: catalog, search, agent, evaluation.",
)


@app.callback()
def _setup(
    log_level: str = typer.Option("WARNING", "--log-level", help="DEBUG, INFO, WARNING or ERROR"),
) -> None:
    """Logging for every command; offline defaults for the packaged models."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(key, "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


for module in (catalog, sync, retrieval, agent):
    module.register(app)


def main(argv: list[str] | None = None) -> None:
    """Run the command line (exits with the command's status)."""
    app(args=argv, prog_name="shopagent")
