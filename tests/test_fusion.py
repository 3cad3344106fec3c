"""Rank fusion, hand-worked: reciprocal rank fusion (k=60), weights, ties."""

from __future__ import annotations

import pytest

from shopagent.retrieval.fusion import reciprocal_rank_fusion


def test_rrf_hand_worked() -> None:
    """x is rank 1 in A and rank 3 in B: 1/61 + 1/63; y is 2 in A, 1 in B: 1/62 + 1/61."""
    fused = reciprocal_rank_fusion({"A": ["x", "y", "z"], "B": ["y", "w", "x"]}, k=60)
    assert [d for d, _ in fused] == ["y", "x", "w", "z"]
    scores = dict(fused)
    assert scores["y"] == pytest.approx(1 / 62 + 1 / 61)
    assert scores["x"] == pytest.approx(1 / 61 + 1 / 63)
    assert scores["w"] == pytest.approx(1 / 62)
    assert scores["z"] == pytest.approx(1 / 63)


def test_rrf_weights_change_the_order() -> None:
    """Halving B's weight: x = 1/61 + 0.5/63 = 0.024330 now beats y = 1/62 + 0.5/61 = 0.024326,
    and z (1/63 = 0.01587) beats w (0.5/62 = 0.00806)."""
    fused = reciprocal_rank_fusion({"A": ["x", "y", "z"], "B": ["y", "w", "x"]}, weights={"A": 1.0, "B": 0.5}, k=60)
    assert [d for d, _ in fused] == ["x", "y", "z", "w"]
    scores = dict(fused)
    assert scores["x"] == pytest.approx(1 / 61 + 0.5 / 63)
    assert scores["y"] == pytest.approx(1 / 62 + 0.5 / 61)
    assert scores["w"] == pytest.approx(0.5 / 62)


def test_rrf_missing_weight_defaults_to_one_and_k_zero() -> None:
    """A retriever absent from `weights` counts 1.0; k=0 gives plain 1/rank."""
    fused = dict(reciprocal_rank_fusion({"A": ["a", "b"], "B": ["b"]}, weights={"A": 2.0}, k=0))
    assert fused == pytest.approx({"a": 2.0 / 1, "b": 2.0 / 2 + 1.0 / 1})


def test_rrf_ties_break_by_first_appearance() -> None:
    """p and q both score 1/61 + 1/62; the one seen first (earlier retriever, better rank) wins,
    the same way on every call."""
    rankings = {"A": ["p", "q"], "B": ["q", "p"]}
    first = reciprocal_rank_fusion(rankings)
    assert first[0][1] == first[1][1] == pytest.approx(1 / 61 + 1 / 62)
    assert [d for d, _ in first] == ["p", "q"]
    assert all(reciprocal_rank_fusion(rankings) == first for _ in range(5))
    assert [d for d, _ in reciprocal_rank_fusion({"B": ["q", "p"], "A": ["p", "q"]})] == ["q", "p"]


def test_rrf_empty_inputs_and_bad_k() -> None:
    """No retrievers or empty lists fuse to nothing; a negative k is refused."""
    assert reciprocal_rank_fusion({}) == []
    assert reciprocal_rank_fusion({"A": [], "B": []}) == []
    assert reciprocal_rank_fusion({"A": [], "B": ["b"]}) == [("b", pytest.approx(1 / 61))]
    with pytest.raises(ValueError, match="k must be"):
        reciprocal_rank_fusion({"A": ["a"]}, k=-1)
