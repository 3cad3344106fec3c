"""Load a product catalog into PostgreSQL (and optionally Chroma), embedding only what changed.

python scripts/ingest.py --catalog data/esci-us/products.jsonl.gz [--limit N] [--batch-size N]
    [--force] [--stores pgvector,chroma] [--reset-embeddings] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from itertools import islice
from pathlib import Path

from tqdm import tqdm

from shopagent import repository
from shopagent.bootstrap import prepare_database
from shopagent.config import get_settings
from shopagent.db import DatabaseUnavailableError
from shopagent.embeddings import EmbeddingDimensionError, embedding_dimension, embedding_model_name, make_embeddings
from shopagent.ingest import CatalogError, ingest, read_catalog

log = logging.getLogger("ingest")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--catalog", type=Path, required=True, help="products .jsonl, .jsonl.gz or .csv")
    p.add_argument("--limit", type=int, default=None, help="only the first N records")
    p.add_argument("--batch-size", type=int, default=256, help="records per embed+upsert batch (default 256)")
    p.add_argument("--force", action="store_true", help="re-embed every product, changed or not")
    p.add_argument("--stores", default="pgvector", help="comma list of stores to fill: pgvector,chroma")
    p.add_argument(
        "--reset-embeddings",
        action="store_true",
        help="re-create the embedding column for the configured model's dimension (re-embeds all)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the ingest and print its summary; non-zero exit on any error."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stores = {s.strip() for s in args.stores.split(",") if s.strip()}
    if unknown := stores - {"pgvector", "chroma"}:
        log.error("unknown store(s) %s; valid: pgvector, chroma", ", ".join(sorted(unknown)))
        return 2
    settings = get_settings()
    embeddings = make_embeddings(settings)
    model = embedding_model_name(settings, embeddings)
    try:
        if args.reset_embeddings:
            from shopagent import db

            conn = db.connect(settings)
            db.migrate(conn, embedding_dimension(embeddings))
            repository.reset_embedding_column(conn, embedding_dimension(embeddings))
            conn.close()
        conn = prepare_database(settings, embeddings)
    except (DatabaseUnavailableError, EmbeddingDimensionError) as exc:
        log.error("%s", exc)
        return 2
    on_batch = None
    if "chroma" in stores:
        from shopagent.chroma_store import ChromaStore

        chroma = ChromaStore.from_settings(settings)
        on_batch = chroma.upsert_rows
    try:
        records = read_catalog(args.catalog)
        if args.limit is not None:
            records = islice(records, args.limit)
        with tqdm(total=args.limit, unit="product", disable=args.quiet, desc="ingest") as bar:
            summary = ingest(
                conn,
                embeddings,
                model,
                records,
                batch_size=args.batch_size,
                force=args.force,
                on_batch=on_batch,
                progress=bar.update,
            )
    except CatalogError as exc:
        log.error("%s", exc)
        return 2
    finally:
        conn.close()
    result = summary.as_dict()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"read {summary.read}  inserted {summary.inserted}  updated {summary.updated}  "
            f"embedded {summary.embedded}  skipped {summary.skipped}  errors {summary.errors}  "
            f"coverage {summary.coverage_pct:.1f}%  {summary.products_per_s:.1f} products/s "
            f"({summary.seconds:.1f} s)"
        )
        for msg in summary.error_samples:
            print(f"  error: {msg}")
    return 1 if summary.errors else 0


if __name__ == "__main__":
    sys.exit(main())
