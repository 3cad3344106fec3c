"""Consistency checks of data/eval/ against the shared sample (no network, no database).

python research/check_eval_data.py
"""

from __future__ import annotations

import csv
import gzip
import json
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT / "data/eval"


def tsv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def main() -> None:
    catalog = {json.loads(line)["product_id"] for line in gzip.open(ROOT / "data/esci-us/products.jsonl.gz", "rt")}
    shared = [r["query_id"] for r in tsv(ROOT / "data/esci-us/queries.tsv")]
    extra_q = tsv(EVAL / "extra_queries.tsv")
    extra_l = tsv(EVAL / "extra_labels.tsv")
    extra_ids = [r["query_id"] for r in extra_q]
    assert not set(extra_ids) & set(shared), "extra query ids overlap the shared ones"
    assert len(set(extra_ids)) == len(extra_ids)
    assert {r["query_id"] for r in extra_l} == set(extra_ids)
    assert all(r["product_id"] in catalog for r in extra_l), "a judged product is not in the catalog"
    esci = {"3": "E", "2": "S", "1": "C", "0": "I"}
    assert all(esci[r["grade"]] == r["esci_label"] for r in extra_l)
    pairs = Counter((r["query_id"], r["product_id"]) for r in extra_l)
    assert max(pairs.values()) == 1, "duplicate judgement"
    exact = {r["query_id"] for r in extra_l if r["grade"] == "3"}
    assert exact == set(extra_ids), "a query without a grade-3 product in the catalog"
    print(f"extra: {len(extra_ids)} queries, {len(extra_l)} judgements, all products in the catalog")  # noqa: T201

    split = json.loads((EVAL / "split.json").read_text())
    assert len(split["dev"]) == 70 and len(split["heldout"]) == 30
    assert sorted(split["dev"] + split["heldout"]) == sorted(shared)
    print(f"split: seed {split['seed']}, dev {len(split['dev'])}, heldout {len(split['heldout'])}")  # noqa: T201

    es = tsv(EVAL / "queries_es.tsv")
    assert [r["query_id"] for r in es] == shared and all(r["query"].strip() for r in es)
    print(f"queries_es: {len(es)} queries, same ids as the shared ones")  # noqa: T201

    cases = [json.loads(line) for line in (EVAL / "understanding_cases.jsonl").read_text().splitlines() if line]
    by_class = Counter(c["class"] for c in cases)
    assert all(n >= 20 for cls, n in by_class.items()), by_class
    print(f"understanding_cases: {len(cases)} cases {dict(by_class)}")  # noqa: T201


if __name__ == "__main__":
    main()
