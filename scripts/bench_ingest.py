"""Ingest throughput on a fresh database: products/s with the embedding included, and where the
time goes (embedding vs database vs Chroma), plus nDCG@10 of plain pgvector search afterwards.

    python scripts/bench_ingest.py [--catalog data/esci-us/products.jsonl.gz] [--limit N]
        [--stores pgvector,chroma] [--batch-size 256] [--keep] [--json]

Creates `bench_<uuid>` on the configured server (the embedded one unless DATABASE_URL is set) and a
temporary Chroma directory; both are removed at the end unless --keep. Model loading is not timed.
Target: >= 150 products/s (exit 1 below it).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from itertools import islice
from pathlib import Path
from typing import Any

import psycopg
from bench_search import plain_pgvector_ndcg  # scripts/ is on sys.path when run as a script
from langchain_core.embeddings import Embeddings
from psycopg import sql
from pydantic import SecretStr
from tqdm import tqdm

from shopagent.db.connection import DatabaseUnavailableError, conninfo
from shopagent.db.writes import ProductRow
from shopagent.embeddings import embedding_model_name, make_embeddings
from shopagent.evals.metrics import load_labels, load_queries
from shopagent.ingest.pipeline import ingest
from shopagent.ingest.reader import read_catalog
from shopagent.retrieval.chroma import ChromaStore
from shopagent.services import prepare_database
from shopagent.settings import PROJECT_ROOT, get_settings

log = logging.getLogger("bench_ingest")
DATA = PROJECT_ROOT / "data" / "esci-us"
TARGET_PPS = 150.0


class TimedEmbeddings(Embeddings):
    """Delegates to a model and adds up the seconds spent embedding documents."""

    def __init__(self, inner: Embeddings):
        """Wrap `inner`, keeping its name and dimension visible."""
        self.inner = inner
        self.seconds = 0.0
        self.model_name = getattr(inner, "model_name", None)
        self.dimension = getattr(inner, "dimension", None)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed and time."""
        started = time.perf_counter()
        try:
            return self.inner.embed_documents(texts)
        finally:
            self.seconds += time.perf_counter() - started

    def embed_query(self, text: str) -> list[float]:
        """Untimed (queries are not part of ingest)."""
        return self.inner.embed_query(text)


def timed_hook(hook: Callable[[list[ProductRow]], None], clock: dict[str, float]) -> Callable[[list[ProductRow]], None]:
    """`hook` that adds its seconds to clock["chroma"]."""

    def run(rows: list[ProductRow]) -> None:
        """Call and time."""
        started = time.perf_counter()
        hook(rows)
        clock["chroma"] += time.perf_counter() - started

    return run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--catalog", type=Path, default=DATA / "products.jsonl.gz")
    p.add_argument("--queries", type=Path, default=DATA / "queries.tsv")
    p.add_argument("--labels", type=Path, default=DATA / "labels.tsv")
    p.add_argument("--limit", type=int, help="only the first N products")
    p.add_argument("--stores", default="pgvector,chroma", help="pgvector (always) and optionally chroma")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--keep", action="store_true", help="keep the database and Chroma directory")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    args.stores = {s.strip() for s in args.stores.split(",") if s.strip()}
    if bad := args.stores - {"pgvector", "chroma"}:
        p.error(f"unknown store(s) {sorted(bad)}; valid: pgvector, chroma")
    return args


def with_dbname(dsn: str, name: str) -> str:
    """The same server, another database."""
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    params["dbname"] = name
    return psycopg.conninfo.make_conninfo(**params)


def main(argv: list[str] | None = None) -> int:
    """Create the scratch database, ingest, measure, clean up."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    base = get_settings()
    try:
        server = conninfo(base)
    except DatabaseUnavailableError as exc:
        log.error("%s", exc)
        return 2
    name = f"bench_{uuid.uuid4().hex[:12]}"
    chroma_dir = Path(tempfile.mkdtemp(prefix="bench_chroma_"))
    settings = base.model_copy(
        update={
            "database_url": SecretStr(with_dbname(server, name)),
            "chroma_persist_dir": chroma_dir,
            "chroma_collection": "bench",
        }
    )
    embeddings = TimedEmbeddings(make_embeddings(settings))
    model = embedding_model_name(embeddings)
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        result = run(args, settings, embeddings, model)
        result["database"] = name + (" (kept)" if args.keep else " (dropped)")
        result["chroma_dir"] = str(chroma_dir) + (" (kept)" if args.keep else " (removed)")
    finally:
        if not args.keep:
            with psycopg.connect(server, autocommit=True) as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            shutil.rmtree(chroma_dir, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0 if result["errors"] == 0 and result["products_per_s"] >= TARGET_PPS else 1


def run(args: argparse.Namespace, settings: Any, embeddings: TimedEmbeddings, model: str) -> dict[str, Any]:
    """Ingest into the scratch stores and return the measurements."""
    clock = {"chroma": 0.0}
    on_batch = None
    if "chroma" in args.stores:
        on_batch = timed_hook(ChromaStore.from_settings(settings).upsert_rows, clock)
    records = read_catalog(args.catalog)
    if args.limit:
        records = islice(records, args.limit)
    with prepare_database(settings, embeddings) as conn:
        with tqdm(total=args.limit, unit="product", desc="ingest", disable=args.quiet) as bar:
            summary = ingest(
                conn, embeddings, model, records, batch_size=args.batch_size, on_batch=on_batch, progress=bar.update
            )
        ndcg = plain_pgvector_ndcg(conn, embeddings.inner, load_queries(args.queries), load_labels(args.labels))
    total = summary.seconds
    db_s = total - embeddings.seconds - clock["chroma"]
    return {
        "model": model,
        "stores": ",".join(sorted(args.stores)),
        "products": summary.read,
        "embedded": summary.embedded,
        "errors": summary.errors,
        "seconds_total": round(total, 2),
        "products_per_s": round(summary.read / total, 1) if total else 0.0,
        "embedding_s": round(embeddings.seconds, 2),
        "embedding_products_per_s": round(summary.embedded / embeddings.seconds, 1) if embeddings.seconds else 0.0,
        "database_s": round(db_s, 2),  # reading + normalising + upserts + ANALYZE
        "chroma_s": round(clock["chroma"], 2),
        "share_embedding_pct": round(100 * embeddings.seconds / total, 1) if total else 0.0,
        "coverage_pct": summary.coverage_pct,
        "ndcg@10_plain_pgvector": ndcg,
        "target_products_per_s": TARGET_PPS,
    }


if __name__ == "__main__":
    sys.exit(main())
