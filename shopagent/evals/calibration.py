"""Similarity-threshold calibration: pure functions that turn judged (similarity, relevant) samples
into a recommended threshold per backend.

A sample is one retrieved candidate of one query: its cosine similarity and whether it is relevant
(ESCI grade >= 2). Retrieved but unjudged products count as irrelevant (grade 0). A threshold `t`
predicts "relevant" for every sample with similarity >= t. Candidate thresholds are the observed
similarities themselves (every distinct cut of the data).

Recommendation criteria (`recommend`):
- `best_f1`: the threshold maximising F1 of relevant-vs-not (ties: the lower threshold, which keeps
  more relevant products at equal F1);
- `precision_target`: the lowest threshold whose precision is >= the target (most recall at that
  precision), None when no threshold reaches it;
- `relaxed_floor`: the highest threshold that still keeps `keep` (e.g. 95%) of the relevant samples.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from shopagent.evals.metrics import RELEVANT_GRADE
from shopagent.retrieval.backends import Query
from shopagent.services import Services

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass(frozen=True)
class Sample:
    """One retrieved candidate: cosine similarity and whether it is judged relevant."""

    similarity: float
    relevant: bool


@dataclass(frozen=True)
class Cut:
    """Quality of the rule "similarity >= threshold means relevant" on a sample set."""

    threshold: float
    precision: float
    recall: float
    f1: float
    kept: int  # samples at or above the threshold

    def as_dict(self) -> dict[str, float | int]:
        """Rounded, JSON-friendly."""
        return {
            "threshold": round(self.threshold, 4),
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "kept": self.kept,
        }


@dataclass
class Recommendation:
    """Distributions and recommended thresholds for one backend."""

    n_relevant: int
    n_irrelevant: int
    relevant_quantiles: dict[str, float]
    irrelevant_quantiles: dict[str, float]
    best_f1: Cut | None
    precision_target: Cut | None
    relaxed_floor: Cut | None
    criteria: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly."""
        return {
            "n_relevant": self.n_relevant,
            "n_irrelevant": self.n_irrelevant,
            "relevant_quantiles": self.relevant_quantiles,
            "irrelevant_quantiles": self.irrelevant_quantiles,
            "best_f1": self.best_f1.as_dict() if self.best_f1 else None,
            "precision_target": self.precision_target.as_dict() if self.precision_target else None,
            "relaxed_floor": self.relaxed_floor.as_dict() if self.relaxed_floor else None,
            "criteria": self.criteria,
        }


def quantiles(values: Sequence[float], qs: Sequence[float] = QUANTILES) -> dict[str, float]:
    """{"p5": ..., "p50": ...} by linear interpolation; empty dict for no values."""
    if not len(values):
        return {}
    return {f"p{round(q * 100)}": round(float(np.quantile(values, q)), 4) for q in qs}


def cut_at(samples: Sequence[Sample], threshold: float) -> Cut:
    """Precision, recall and F1 of "similarity >= threshold" (precision 0 when nothing is kept)."""
    kept = [s for s in samples if s.similarity >= threshold]
    tp = sum(s.relevant for s in kept)
    positives = sum(s.relevant for s in samples)
    precision = tp / len(kept) if kept else 0.0
    recall = tp / positives if positives else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Cut(threshold, precision, recall, f1, len(kept))


def all_cuts(samples: Sequence[Sample]) -> list[Cut]:
    """One cut per distinct similarity, ascending threshold; O(n log n) by a single sweep."""
    ordered = sorted(samples, key=lambda s: s.similarity, reverse=True)
    positives = sum(s.relevant for s in ordered)
    cuts: list[Cut] = []
    tp = 0
    for i, s in enumerate(ordered):
        tp += s.relevant
        # Only the last sample of a run of equal similarities closes a cut (">=" keeps them all).
        if i + 1 < len(ordered) and ordered[i + 1].similarity == s.similarity:
            continue
        kept = i + 1
        precision = tp / kept
        recall = tp / positives if positives else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        cuts.append(Cut(s.similarity, precision, recall, f1, kept))
    return cuts[::-1]


def best_f1_cut(samples: Sequence[Sample]) -> Cut | None:
    """The cut with the highest F1 (the lower threshold on ties); None without relevant samples."""
    cuts = [c for c in all_cuts(samples) if c.f1 > 0]
    if not cuts:
        return None
    best = max(c.f1 for c in cuts)
    return next(c for c in cuts if math.isclose(c.f1, best, rel_tol=0, abs_tol=1e-12))


def precision_target_cut(samples: Sequence[Sample], target: float = 0.8) -> Cut | None:
    """The lowest threshold whose precision is >= target (the most recall at that precision)."""
    return next((c for c in all_cuts(samples) if c.precision >= target and c.recall > 0), None)


def recall_floor_cut(samples: Sequence[Sample], keep: float = 0.95) -> Cut | None:
    """The highest threshold that keeps at least `keep` of the relevant samples."""
    relevant = sorted((s.similarity for s in samples if s.relevant), reverse=True)
    if not relevant:
        return None
    needed = math.ceil(keep * len(relevant) - 1e-9)
    return cut_at(samples, relevant[max(needed, 1) - 1])


def recommend(samples: Sequence[Sample], precision_target: float = 0.8, keep: float = 0.95) -> Recommendation:
    """Distributions of both classes and the three recommended cuts."""
    rel = [s.similarity for s in samples if s.relevant]
    irr = [s.similarity for s in samples if not s.relevant]
    return Recommendation(
        n_relevant=len(rel),
        n_irrelevant=len(irr),
        relevant_quantiles=quantiles(rel),
        irrelevant_quantiles=quantiles(irr),
        best_f1=best_f1_cut(samples),
        precision_target=precision_target_cut(samples, precision_target),
        relaxed_floor=recall_floor_cut(samples, keep),
        criteria={"precision_target": precision_target, "relaxed_keep_relevant": keep},
    )


def collect(
    services: Services,
    queries: Mapping[str, str],
    labels: Mapping[str, Mapping[str, int]],
    backends: Sequence[str],
    k: int,
    quiet: bool = False,
) -> dict[str, list[Sample]]:
    """Samples per vector backend ("pgvector", "chroma") over every judged query: its top-k candidates with no
    threshold (the threshold is what is being chosen), parsed and filtered as the service does."""
    by_name = {"pgvector": services.search.pgvector, "chroma": services.search.chroma}
    samples: dict[str, list[Sample]] = {b: [] for b in backends}
    for qid, text in tqdm(queries.items(), desc="calibrate", unit="query", disable=quiet):
        request = services.parse(text)
        query = Query(request.text, services.embeddings.embed_query(request.text), request.filters, k)
        grades = labels[qid]
        for backend in backends:
            for product in by_name[backend].search(query):
                samples[backend].append(
                    Sample(product["score"], grades.get(product["product_id"], 0) >= RELEVANT_GRADE)
                )
    return samples
