"""Catalog sync figures on a scratch database and Chroma directory, both stores on:

1. the initial load of the catalog (for reference);
2. a no-change sync (incremental, then full): the nightly run when nothing changed;
3. a metadata-only update: every price changed (products without one get one), into both stores;
4. a dirty copy of that repriced catalog (scripts/make_dirty_feed.py), with the summary it produces.

    python scripts/bench_sync.py [--catalog data/esci-us/products.jsonl.gz] [--keep] [--json]

Creates `bench_<uuid>` on the configured server (the embedded one unless DATABASE_URL is set) and a temporary
Chroma directory; both are removed at the end unless --keep. Times are the sync's own (`seconds` in its
summary: reading, embedding, both stores); model loading is not timed.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import psycopg
from make_dirty_feed import dirty  # scripts/ is on sys.path when run as a script
from psycopg import sql
from pydantic import SecretStr

from shopagent.db.connection import conninfo
from shopagent.ingest import Source, SyncOptions, SyncSummary, run_sync
from shopagent.settings import PROJECT_ROOT, Settings, get_settings

log = logging.getLogger("bench_sync")
STORES = ("pgvector", "chroma")


def _figures(s: SyncSummary) -> dict[str, Any]:
    """The parts of a summary a figure needs."""
    return {
        "seconds": round(s.seconds, 2),
        "read": s.read,
        "rows_per_s": round(s.read / s.seconds, 1) if s.seconds else None,
        "inserted": s.inserted,
        "updated": s.updated,
        "metadata_only": s.metadata_only,
        "embedded": s.embedded,
        "unchanged": s.skipped,
        "chroma": s.chroma.as_dict() if s.chroma else None,
    }


def _write(path: Path, records: list[dict[str, Any]]) -> Path:
    """A JSONL feed."""
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def run(settings: Settings, records: list[dict[str, Any]], work: Path) -> dict[str, Any]:
    """The four runs; their figures."""

    def sync(path: Path, mode: str = "incremental") -> SyncSummary:
        """One sync of a feed file into both stores."""
        options = SyncOptions(mode="full" if mode == "full" else "incremental", stores=STORES)
        return run_sync(settings, Source(path), options)

    feed = _write(work / "catalog.jsonl", records)
    out: dict[str, Any] = {"products": len(records)}
    out["initial_load"] = _figures(sync(feed))
    out["no_change_incremental"] = _figures(sync(feed))
    out["no_change_full"] = _figures(sync(feed, "full"))
    repriced = [{**r, "price": round((r.get("price") or 10.0) * 1.1 + 0.01, 2)} for r in records]
    out["every_price_changed"] = _figures(sync(_write(work / "repriced.jsonl", repriced)))
    lines, injected = dirty(repriced, 0.2, 7)  # the faults are then the only differences
    (work / "dirty.jsonl").write_bytes(b"".join(lines))
    dirty_summary = sync(work / "dirty.jsonl")
    out["dirty_feed"] = {
        "injected": dict(sorted(injected.items())),
        **_figures(dirty_summary),
        "rejected": dirty_summary.rejected,
        "repaired": dirty_summary.repaired,
        "errors": dirty_summary.errors,
        "issues": dict(dirty_summary.issues.most_common()),
        "exit_code": dirty_summary.exit_code,
    }
    return out


def main(argv: list[str] | None = None) -> int:
    """Create the scratch stores, run, print the figures, clean up."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--catalog", type=Path, default=PROJECT_ROOT / "data" / "esci-us" / "products.jsonl.gz")
    p.add_argument("--keep", action="store_true", help="keep the scratch database and Chroma directory")
    p.add_argument("--json", action="store_true", help="print JSON")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    base = get_settings()
    server = conninfo(base)
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = psycopg.conninfo.make_conninfo(server, dbname=name)
    work = Path(tempfile.mkdtemp(prefix="bench_sync_"))
    settings = base.model_copy(
        update={"database_url": SecretStr(dsn), "chroma_persist_dir": work / "chroma", "chroma_collection": name}
    )
    opener = gzip.open if args.catalog.suffix == ".gz" else open
    with opener(args.catalog, "rt", encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh if line.strip()]
    try:
        result = {"database": name, **run(settings, records, work)}
    finally:
        if not args.keep:
            with psycopg.connect(server, autocommit=True) as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
