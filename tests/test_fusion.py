"""Rank fusion, hand-worked: reciprocal rank fusion (k=60), weights, ties, min-max, weighted sum."""

from __future__ import annotations

import pytest

from shopagent.fusion import min_max, reciprocal_rank_fusion, weighted_sum_fusion


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


def test_min_max_hand_worked() -> None:
    """(s - lo) / (hi - lo); equal scores all become 1.0; nothing in, nothing out."""
    assert min_max({"a": 2.0, "b": 4.0, "c": 6.0}) == pytest.approx({"a": 0.0, "b": 0.5, "c": 1.0})
    assert min_max({"a": -1.0, "b": 3.0}) == pytest.approx({"a": 0.0, "b": 1.0})
    assert min_max({"a": 0.3, "b": 0.3}) == {"a": 1.0, "b": 1.0}
    assert min_max({}) == {}


def test_weighted_sum_hand_worked() -> None:
    """v normalises to a 1, b 0.5, c 0; f to b 1, d 0. With f weighted 0.4:
    a = 1, b = 0.5 + 0.4 = 0.9, c = 0, d = 0 (c before d: seen first)."""
    fused = weighted_sum_fusion(
        {"v": {"a": 0.9, "b": 0.5, "c": 0.1}, "f": {"b": 10.0, "d": 2.0}}, weights={"v": 1.0, "f": 0.4}
    )
    assert [d for d, _ in fused] == ["a", "b", "c", "d"]
    assert [s for _, s in fused] == pytest.approx([1.0, 0.9, 0.0, 0.0])


def test_weighted_sum_equal_weights_and_empty() -> None:
    """Without weights each retriever counts 1: b = 0.5 + 1 = 1.5 beats a = 1."""
    fused = weighted_sum_fusion({"v": {"a": 0.9, "b": 0.5, "c": 0.1}, "f": {"b": 10.0, "d": 2.0}})
    assert fused[0] == ("b", pytest.approx(1.5))
    assert fused[1] == ("a", pytest.approx(1.0))
    assert weighted_sum_fusion({}) == []
