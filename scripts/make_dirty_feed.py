"""Make a dirty copy of a catalog feed: what scrapes and exports leave, one class of fault per chosen record.

    python scripts/make_dirty_feed.py [--catalog data/esci-us/products.jsonl.gz] [--output dirty.jsonl]
        [--share 0.2] [--seed 7]

A share of the records (default 20%) get one fault each, taken in turn from FAULTS: NUL and other control
characters in text fields, lone surrogates, negative / infinite / NaN / absurd prices, prices written with
decimal commas, thousands separators, currency symbols and codes, ratings and counts out of range, wrong types
(a list as a name, a number as a brand, an object as a category), unsafe image URLs. Then malformed lines are
appended: broken JSON, a JSON array, records without an id, a line of invalid UTF-8, a duplicate id. The
counts per fault are printed (JSON) so they can be compared with the ingest summary. Deterministic per seed.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import logging
import random
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shopagent.settings import PROJECT_ROOT

log = logging.getLogger("make_dirty_feed")
Record = dict[str, Any]


def _nul_in_name(r: Record) -> None:
    """A NUL byte inside the name."""
    r["name"] = f"{r['name'][:20]}\x00{r['name'][20:]}"


def _controls_in_description(r: Record) -> None:
    """Terminal escapes and a bell in the description."""
    r["description"] = "\x1b[1mBOLD\x1b[0m \x07" + (r.get("description") or "")


def _surrogate(r: Record) -> None:
    """A lone surrogate (what a broken UTF-16 conversion leaves) in the name."""
    r["name"] = r["name"] + " \udcff"


def _price(text: Any) -> Callable[[Record], None]:
    """A fault setting the price to `text` (or to `text(old price)` when it is a function)."""

    def set_price(r: Record) -> None:
        """Set the price."""
        r["price"] = text(r.get("price") or 12.5) if callable(text) else text

    return set_price


def _rating_out_of_range(r: Record) -> None:
    """A rating above 5 and a negative review count."""
    r["rating"], r["rating_count"] = 7.5, -3


def _list_as_name(r: Record) -> None:
    """A list where the name should be text."""
    r["name"] = r["name"].split(" ", 2)[:2]


def _number_as_brand(r: Record) -> None:
    """A number where the brand should be text."""
    r["brand"] = 3000


def _object_as_category(r: Record) -> None:
    """An object where the category path should be a list."""
    r["category"] = {"path": r.get("category")}


def _unsafe_image(r: Record) -> None:
    """An image URL a page must not load."""
    r["image"] = "javascript:alert(1)"


FAULTS: dict[str, Callable[[Record], None]] = {
    "nul_in_name": _nul_in_name,
    "controls_in_description": _controls_in_description,
    "lone_surrogate": _surrogate,
    "price_negative": _price("-5"),
    "price_infinity": _price("Infinity"),
    "price_nan": _price("NaN"),
    "price_1e12": _price("1e12"),
    "price_decimal_comma": _price(lambda p: f"{p:.2f}".replace(".", ",")),
    "price_thousands_dot": _price(lambda p: f"{p * 100:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")),
    "price_dollar_thousands": _price(lambda p: f"${p * 100:,.2f}"),
    "price_eur_code": _price(lambda p: f"EUR {p:.2f}".replace(".", ",")),
    "rating_out_of_range": _rating_out_of_range,
    "list_as_name": _list_as_name,
    "number_as_brand": _number_as_brand,
    "object_as_category": _object_as_category,
    "unsafe_image_url": _unsafe_image,
}
MALFORMED = [
    b'{"product_id": "broken", "name": "Cut off here\n',
    b"[1, 2, 3]\n",
    b'{"name": "A record without any id", "price": 5}\n',
    b'{"product_id": "bad-utf8", "name": "caf\xe9 au lait mug"}\n',
]


def dirty(records: list[Record], share: float, seed: int) -> tuple[list[bytes], Counter[str]]:
    """The dirty feed's lines and the number of records given each fault."""
    rng = random.Random(seed)
    chosen = sorted(rng.sample(range(len(records)), int(len(records) * share)))
    faults, counts = list(FAULTS.items()), Counter[str]()
    out = [copy.deepcopy(r) for r in records]
    for n, index in enumerate(chosen):
        name, fault = faults[n % len(faults)]
        fault(out[index])
        counts[name] += 1
    lines = [json.dumps(r, ensure_ascii=True).encode() + b"\n" for r in out]
    lines += MALFORMED
    lines.append(json.dumps({**records[0], "name": records[0]["name"] + " (duplicate)"}).encode() + b"\n")
    counts.update({"malformed_json": 1, "not_an_object": 1, "missing_id": 1, "invalid_utf8": 1, "duplicate_id": 1})
    return lines, counts


def main(argv: list[str] | None = None) -> int:
    """Write the dirty feed and print what was injected."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--catalog", type=Path, default=PROJECT_ROOT / "data" / "esci-us" / "products.jsonl.gz")
    p.add_argument("--output", type=Path, default=Path("dirty.jsonl"))
    p.add_argument("--share", type=float, default=0.2, help="share of records given a fault (0-1)")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    opener = gzip.open if args.catalog.suffix == ".gz" else open
    with opener(args.catalog, "rt", encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh if line.strip()]
    lines, counts = dirty(records, args.share, args.seed)
    args.output.write_bytes(b"".join(lines))
    log.info("wrote %d lines to %s", len(lines), args.output)
    print(json.dumps({"records": len(records), "lines": len(lines), "faults": dict(sorted(counts.items()))}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
