"""Fixed dev/heldout split of the 100 shared queries (issue 10).

    python research/make_split.py            # writes data/eval/split.json

Seeded and deterministic: random.Random(SEED).sample over the sorted query ids. The seed is the
issue number. Nobody tunes on "heldout": read its figures once, at the end.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

SEED = 10
N_DEV = 70
ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    with open(ROOT / "data/esci-us/queries.tsv", newline="", encoding="utf-8") as fh:
        ids = sorted(row["query_id"] for row in csv.DictReader(fh, delimiter="\t"))
    assert len(ids) == 100, len(ids)
    dev = sorted(random.Random(SEED).sample(ids, N_DEV))
    heldout = sorted(set(ids) - set(dev))
    out = {
        "seed": SEED,
        "method": "sorted(random.Random(seed).sample(sorted(ids), 70))",
        "dev": dev,
        "heldout": heldout,
    }
    path = ROOT / "data/eval/split.json"
    path.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(f"{path}: dev={len(dev)} heldout={len(heldout)} seed={SEED}")  # noqa: T201


if __name__ == "__main__":
    main()
