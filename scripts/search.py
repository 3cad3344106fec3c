"""Search the catalog from the command line with the service's own search (same strategies,
thresholds and fallbacks).

    python scripts/search.py "QUERY" [--k 10] [--strategy pgvector_primary|chroma_primary|hybrid] [--json]

`--json` prints [{"product_id", "name", "score", "backend"}] where score is the cosine similarity;
otherwise a table. Exit 1 when a backend error left the search without results.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from shopagent.bootstrap import build_services
from shopagent.config import STRATEGIES, get_settings
from shopagent.models import SearchResponse
from shopagent.search import SearchOptions

log = logging.getLogger("search")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("query", help="what the shopper typed (price phrases and negations are understood)")
    p.add_argument("--k", type=int, default=10, help="number of results (default 10)")
    p.add_argument("--strategy", choices=STRATEGIES, help="default: PRODUCT_SEARCH_STRATEGY")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    args = p.parse_args(argv)
    if not 1 <= args.k <= 100:
        p.error("--k must be between 1 and 100")
    return args


def as_rows(response: SearchResponse) -> list[dict[str, object]]:
    """The JSON shape: one dict per hit, score = cosine similarity."""
    return [
        {"product_id": h.product_id, "name": h.name,
         "score": round(h.similarity if h.similarity is not None else h.score, 4), "backend": h.backend}
        for h in response.hits
    ]  # fmt: skip


def as_table(response: SearchResponse) -> str:
    """A readable table with the strategy, the serving backend and any fallback."""
    lines = [f"strategy {response.strategy}  served by {response.backend}"
             + (f"  fallback: {response.fallback_reason}" if response.fallback_reason else "")
             + ("  (weaker matches)" if response.weak_matches else "")]  # fmt: skip
    lines.append(f"{'#':>3}  {'cosine':>6}  {'price':>9}  {'product_id':<12}  name")
    for h in response.hits:
        sim = f"{h.similarity:.3f}" if h.similarity is not None else "-"
        price = f"{float(h.price):.2f}" if h.price is not None else "-"
        lines.append(f"{h.rank:>3}  {sim:>6}  {price:>9}  {h.product_id:<12}  {h.name[:90]}")
    if not response.hits:
        lines.append("  (no results)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run one search and print it."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    services = build_services(get_settings())
    try:
        for err in services.startup_errors:
            log.warning("%s", err)
        response = services.search.search(args.query, options=SearchOptions(k=args.k, strategy=args.strategy))
    finally:
        services.close()
    for err in response.errors:
        log.error("%s", err)
    print(json.dumps(as_rows(response), indent=2) if args.json else as_table(response))
    return 1 if response.errors and not response.hits else 0


if __name__ == "__main__":
    sys.exit(main())
