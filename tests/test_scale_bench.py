"""The scale benchmark's parts that decide its figures, without a database: the synthetic catalog (deterministic,
recombined from the sample, filter fields consistent with its records), exact top-k with masks, recall@k."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import read_products

from shopagent.evals import synthetic
from shopagent.evals.scale import ExactSearch, recall_at_k
from shopagent.ingest.reader import normalise


@pytest.fixture(scope="module")
def sample() -> list[dict[str, Any]]:
    """The sample catalog."""
    return read_products()


def test_plan_and_records_are_deterministic_and_consistent(sample) -> None:
    """Same seed, same catalog; donors share the base's top category; the arrays used for exact filtered search
    say what the records (as stored) say."""
    plan = synthetic.make_plan(sample, 2000, seed=3)
    again = synthetic.make_plan(sample, 2000, seed=3)
    assert all(np.array_equal(getattr(plan, f), getattr(again, f)) for f in ("base", "donor", "in_stock"))
    top = [(p.get("category") or [""])[0] for p in sample]
    assert all(top[b] == top[d] for b, d in zip(plan.base, plan.donor, strict=True))
    for i in range(0, 2000, 97):
        record = synthetic.record(plan, sample, i, seed=3)
        assert record == synthetic.record(plan, sample, i, seed=3)
        row = normalise(record, "m")
        assert row.id == synthetic.product_id(i) and row.in_stock == bool(plan.in_stock[i])
        assert (row.brand or "").lower() == plan.brand[i]
        assert (row.price is None) == bool(np.isnan(plan.price[i])) and (
            row.price is None or row.price == plan.price[i]
        )
    assert 0.8 < plan.in_stock.mean() < 0.9


def test_vectors_are_unit_and_near_their_base(sample) -> None:
    """Synthetic vectors are unit length, closest on average to their base product's vector, and differ from it."""
    rng = np.random.default_rng(0)
    base = rng.standard_normal((len(sample), 32)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    plan = synthetic.make_plan(sample, 500)
    v = synthetic.plan_vectors(plan, base, 0, 500)
    assert v.dtype == np.float32 and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    to_base = np.einsum("ij,ij->i", v, base[plan.base])
    assert 0.7 < to_base.mean() < 0.99 and (to_base > v @ base[plan.base[::-1]].T.diagonal()).mean() > 0.9
    assert np.array_equal(v[100:200], synthetic.plan_vectors(plan, base, 0, 500)[100:200])


def test_own_queries(sample) -> None:
    """Generated queries: 2-3 lower-case words, reproducible."""
    queries = synthetic.own_queries(sample, 30, seed=1)
    assert queries == synthetic.own_queries(sample, 30, seed=1) and len(queries) == 30
    assert all(2 <= len(q.split()) <= 3 and q == q.lower() for q in queries)


def test_exact_search_with_masks_and_chunks() -> None:
    """Chunked exact top-k equals a full sort, within a mask too; recall@k counts the overlap with the exact list."""
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((1000, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = vectors[:5] + 0.1
    mask = rng.random(1000) < 0.3
    exact = ExactSearch(vectors, str, chunk=128)
    scores = queries @ vectors.T
    assert exact.top(queries, 10) == [[str(i) for i in np.argsort(-s, kind="stable")[:10]] for s in scores]
    masked = np.where(mask, scores, -np.inf)
    assert exact.top(queries, 10, mask) == [[str(i) for i in np.argsort(-s, kind="stable")[:10]] for s in masked]
    assert recall_at_k([["1", "2", "x"]], [["1", "2", "3"]], 3) == 0.6667  # rounded to 4 places
    assert recall_at_k([[]], [[]]) == 1.0
