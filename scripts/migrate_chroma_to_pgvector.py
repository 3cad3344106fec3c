"""Copy product vectors (and, for products PostgreSQL lacks, their metadata) from Chroma into pgvector.

    python scripts/migrate_chroma_to_pgvector.py [--dry-run] [--batch-size N] [--force] [--no-verify] [--json]

Steps: pre-flight (database reachable, pgvector available, Chroma collection exists in cosine
space, column dimension matches the configured model), analysis (counts on both sides, Chroma ids
without a vector or a row in PostgreSQL), plan (copy / re-embed / insert / skip), migration (one
transaction per batch), verification (every Chroma id has a fresh vector; sampled copied vectors
identical within 1e-6) and a summary. Vectors are re-embedded with the configured model only when
Chroma's `embedding_model` metadata or dimension differ (or PostgreSQL holds a different text).
Re-running completes an interrupted run; --force re-copies everything. Exit 0 only when all is well.
Uses DATABASE_URL (or the embedded server), CHROMA_PERSIST_DIR and CHROMA_COLLECTION.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from tqdm import tqdm

from shopagent import migration
from shopagent.config import get_settings
from shopagent.embeddings import make_embeddings

log = logging.getLogger("migrate_chroma_to_pgvector")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true", help="pre-flight, analysis and plan only; change nothing")
    p.add_argument("--batch-size", type=int, default=256, help="products per transaction (default 256)")
    p.add_argument("--force", action="store_true", help="re-copy every vector, even identical ones")
    p.add_argument("--no-verify", action="store_true", help="skip the post-migration verification")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.batch_size < 1:
        p.error("--batch-size must be >= 1")
    return args


def print_report(report: migration.Report) -> None:
    """The report as readable sections."""
    d = report.as_dict()
    print("== pre-flight")
    for key, value in d["preflight"]["facts"].items():
        print(f"  {key}: {value}")
    for problem in d["preflight"]["problems"]:
        print(f"  PROBLEM: {problem}")
    if d["analysis"] is not None:
        print("== analysis")
        for key, value in d["analysis"].items():
            print(f"  {key}: {value}")
        print("== plan" + (" (dry run: nothing changed)" if report.dry_run else ""))
        for action, n in d["plan"].items():
            print(f"  {action}: {n}")
        print("  reasons: " + ", ".join(f"{k}={v}" for k, v in sorted(d["plan_reasons"].items())))
    if (s := d["summary"]) is not None:
        print("== summary")
        print(f"  duration {s['seconds']} s  migrated {s['migrated']} (copied {s['copied']}, re-embedded "
              f"{s['reembedded']}, inserted rows {s['inserted']})  skipped {s['skipped']}  errors {s['errors']}  "
              f"coverage {s['coverage_pct']:.2f}%")  # fmt: skip
        for msg in s["error_samples"]:
            print(f"  error: {msg}")
    if (v := d["verification"]) is not None:
        print("== verification: " + ("OK" if v["ok"] else "FAILED"))
        for key, value in v.items():
            if key != "ok":
                print(f"  {key}: {value}")


def main(argv: list[str] | None = None) -> int:
    """Run the migration; exit 0 when it (or the dry run) is clean, 1 on errors, 2 on pre-flight failure."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    embeddings = make_embeddings(settings)

    def bar(stage: str, total: int) -> tqdm:
        """One progress bar per stage."""
        return tqdm(total=total, desc=stage, unit="product", disable=args.quiet)

    report = migration.run(settings, embeddings, dry_run=args.dry_run, batch_size=args.batch_size,
                           force=args.force, check=not args.no_verify, progress=bar)  # fmt: skip
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        print_report(report)
    if report.preflight["problems"]:
        for problem in report.preflight["problems"]:
            log.error("pre-flight: %s", problem)
        return 2
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
