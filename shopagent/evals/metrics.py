"""Retrieval quality metrics over graded judgements (ESCI: 3 Exact, 2 Substitute, 1 Complement,
0 Irrelevant; unjudged = 0). Pure functions plus loaders for the TSV files."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

RELEVANT_GRADE = 2  # recall and MRR count Exact and Substitute as relevant


def load_queries(path: Path) -> dict[str, str]:
    """query_id -> query text."""
    with path.open(encoding="utf-8") as fh:
        return {r["query_id"]: r["query"] for r in csv.DictReader(fh, delimiter="\t")}


def load_labels(path: Path) -> dict[str, dict[str, int]]:
    """query_id -> {product_id: grade}."""
    labels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as fh:
        for r in csv.DictReader(fh, delimiter="\t"):
            labels.setdefault(r["query_id"], {})[r["product_id"]] = int(r["grade"])
    return labels


def dcg(gains: Sequence[float]) -> float:
    """Discounted cumulative gain with linear gains: sum g_i / log2(i + 1), i from 1."""
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def ndcg_at_k(ranked: Sequence[str], grades: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k; the ideal ranking uses every judged grade of the query."""
    ideal = dcg(sorted(grades.values(), reverse=True)[:k])
    if ideal == 0:
        return 0.0
    return dcg([grades.get(pid, 0) for pid in ranked[:k]]) / ideal


def recall_at_k(ranked: Sequence[str], grades: Mapping[str, int], k: int = 10) -> float:
    """Share of relevant (grade >= 2) products found in the top k; 0 when none are relevant."""
    relevant = {pid for pid, g in grades.items() if g >= RELEVANT_GRADE}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def reciprocal_rank(ranked: Sequence[str], grades: Mapping[str, int]) -> float:
    """1 / rank of the first relevant product, 0 if none is retrieved."""
    for i, pid in enumerate(ranked, start=1):
        if grades.get(pid, 0) >= RELEVANT_GRADE:
            return 1.0 / i
    return 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (linear interpolation); 0 for no values."""
    return float(np.percentile(values, q)) if len(values) else 0.0
