"""Recommend similarity thresholds per vector backend from graded queries.

    python scripts/calibrate.py --queries data/esci-us/queries.tsv --labels data/esci-us/labels.tsv \
        [--k 50] [--backends pgvector,chroma] [--output calib.json] [--json]

For every judged query (parsed and filtered as the service does), the top-k candidates of each
backend are split into relevant (grade >= 2) and irrelevant (grade <= 1, or unjudged = 0) by their
cosine similarity. Printed per backend: quantiles of both distributions and three thresholds:
the one maximising F1 of relevant-vs-not (the recommended PGVECTOR/CHROMA_SIMILARITY_THRESHOLD),
the lowest reaching precision >= --precision (if any), and the highest keeping --keep of the
relevant candidates (the recommended RELAXED_SIMILARITY_FLOOR). See shopagent/calibration.py.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from shopagent import repository
from shopagent.bootstrap import Services, build_services
from shopagent.calibration import Recommendation, Sample, recommend
from shopagent.config import get_settings
from shopagent.embeddings import embedding_model_name
from shopagent.evaluation import RELEVANT_GRADE, load_labels, load_queries
from shopagent.models import Hit
from shopagent.query import parse_query

log = logging.getLogger("calibrate")
BACKENDS = ("pgvector", "chroma")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--queries", type=Path, required=True)
    p.add_argument("--labels", type=Path, required=True)
    p.add_argument("--k", type=int, default=50, help="candidates per query and backend (default 50)")
    p.add_argument("--backends", default="pgvector,chroma", help="comma list of: pgvector, chroma")
    p.add_argument("--precision", type=float, default=0.8, help="precision target (default 0.8)")
    p.add_argument("--keep", type=float, default=0.95, help="share of relevant kept by the relaxed floor")
    p.add_argument("--limit", type=int, help="only the first N judged queries")
    p.add_argument("--output", type=Path, help="write the JSON report here")
    p.add_argument("--json", action="store_true", help="print the JSON report instead of tables")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if bad := [b for b in args.backends if b not in BACKENDS]:
        p.error(f"unknown backend(s) {bad}; valid: {', '.join(BACKENDS)}")
    return args


def candidates(services: Services, backend: str, qvec: list[float], parsed_filters: Any, k: int) -> list[Hit]:
    """Top-k of one backend with no threshold (the threshold is what we are choosing)."""
    if backend == "pgvector":
        if services.pool is None:
            raise RuntimeError("pgvector: no database pool")
        with services.pool.connection() as conn:
            return repository.vector_search(conn, qvec, k, parsed_filters)
    if services.chroma is None:
        raise RuntimeError("chroma: store unavailable")
    return services.chroma.search(qvec, k, parsed_filters)


def collect(
    services: Services, queries: dict[str, str], labels: dict[str, dict[str, int]], backends: list[str], k: int,
    quiet: bool = False,
) -> dict[str, list[Sample]]:  # fmt: skip
    """Samples per backend over every judged query."""
    samples: dict[str, list[Sample]] = {b: [] for b in backends}
    for qid, text in tqdm(queries.items(), desc="calibrate", unit="query", disable=quiet):
        parsed = parse_query(text)
        qvec = services.embeddings.embed_query(parsed.text)
        grades = labels[qid]
        for backend in backends:
            for hit in candidates(services, backend, qvec, parsed.filters, k):
                samples[backend].append(Sample(hit.score, grades.get(hit.product_id, 0) >= RELEVANT_GRADE))
    return samples


def format_backend(name: str, rec: Recommendation) -> str:
    """One backend's distributions and thresholds as text."""

    def q(d: dict[str, float]) -> str:
        """Quantiles on one line."""
        return "  ".join(f"{k}={v:.3f}" for k, v in d.items())

    def c(cut: Any) -> str:
        """A cut on one line."""
        if cut is None:
            return "none"
        return f"{cut.threshold:.3f}  (precision {cut.precision:.3f}, recall {cut.recall:.3f}, F1 {cut.f1:.3f})"

    crit = rec.criteria
    return "\n".join([
        f"== {name}: {rec.n_relevant} relevant, {rec.n_irrelevant} irrelevant candidates",
        f"  relevant   similarity  {q(rec.relevant_quantiles)}",
        f"  irrelevant similarity  {q(rec.irrelevant_quantiles)}",
        f"  {'threshold max F1 (recommended)':<38}{c(rec.best_f1)}",
        f"  {'threshold precision >= ' + format(crit['precision_target'], '.2f'):<38}{c(rec.precision_target)}",
        f"  {'relaxed floor keeping ' + format(crit['relaxed_keep_relevant'], '.0%') + ' relevant':<38}"
        f"{c(rec.relaxed_floor)}",
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Collect samples, recommend thresholds, print and optionally write the report."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    labels = load_labels(args.labels)
    queries = {q: t for q, t in load_queries(args.queries).items() if labels.get(q)}
    if args.limit:
        queries = dict(list(queries.items())[: args.limit])
    if not queries:
        log.error("no judged queries in %s", args.queries)
        return 2
    settings = get_settings()
    services = build_services(settings)
    try:
        samples = collect(services, queries, labels, args.backends, args.k, args.quiet)
    except Exception:  # noqa: BLE001 - a backend failing mid-run makes the numbers meaningless
        log.exception("calibration failed")
        return 1
    finally:
        services.close()
    recs = {b: recommend(s, args.precision, args.keep) for b, s in samples.items()}
    report = {
        "embedding_model": embedding_model_name(settings, services.embeddings),
        "queries": len(queries),
        "k": args.k,
        "criterion": "threshold maximising F1 of relevant (grade >= 2) vs not among top-k candidates",
        "backends": {b: r.as_dict() for b, r in recs.items()},
    }
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"model {report['embedding_model']}  queries {len(queries)}  top-{args.k} candidates per backend")
        print("\n".join(format_backend(b, r) for b, r in recs.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
