"""Threshold calibration: hand-worked examples of the pure scoring functions."""

from __future__ import annotations

import pytest

from shopagent.evals.calibration import (
    Sample,
    all_cuts,
    best_f1_cut,
    cut_at,
    precision_target_cut,
    quantiles,
    recall_floor_cut,
    recommend,
)

# similarity, relevant: 4 relevant (0.9, 0.8, 0.6, 0.3), 3 not (0.7, 0.5, 0.4).
SEVEN = [
    Sample(0.9, True),
    Sample(0.8, True),
    Sample(0.7, False),
    Sample(0.6, True),
    Sample(0.5, False),
    Sample(0.4, False),
    Sample(0.3, True),
]


def test_cut_at_counts_by_hand() -> None:
    """t=0.6 keeps 0.9, 0.8, 0.7, 0.6: 3 of 4 kept are relevant, 3 of 4 relevant are kept."""
    c = cut_at(SEVEN, 0.6)
    assert (c.kept, c.precision, c.recall, c.f1) == (4, 0.75, 0.75, 0.75)
    empty = cut_at(SEVEN, 0.95)
    assert (empty.kept, empty.precision, empty.recall, empty.f1) == (0, 0.0, 0.0, 0.0)


def test_all_cuts_match_cut_at() -> None:
    """The sweep gives the same figures as evaluating each threshold directly, ascending."""
    cuts = all_cuts(SEVEN)
    assert [c.threshold for c in cuts] == [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    for c in cuts:
        assert c == pytest.approx(cut_at(SEVEN, c.threshold))
    # t=0.3 keeps all 7: precision 4/7, recall 1, F1 = 2*(4/7)/(11/7) = 8/11.
    assert cuts[0].f1 == pytest.approx(8 / 11)


def test_ties_in_similarity_are_one_cut() -> None:
    """Equal similarities are kept or dropped together."""
    cuts = all_cuts([Sample(0.5, True), Sample(0.5, False), Sample(0.2, True)])
    assert [(c.threshold, c.kept) for c in cuts] == [(0.2, 3), (0.5, 2)]
    assert cuts[1].precision == 0.5 and cuts[1].recall == 0.5


def test_best_f1_threshold() -> None:
    """F1 by threshold: .9→.4, .8→.667, .7→.571, .6→.75, .5→.667, .4→.6, .3→.727; best is 0.6."""
    best = best_f1_cut(SEVEN)
    assert best is not None and best.threshold == 0.6 and best.f1 == pytest.approx(0.75)


def test_best_f1_tie_takes_lower_threshold() -> None:
    """t=0.9 (P 1, R .5) and t=0.6 (P .5, R 1) both have F1 2/3: the lower one keeps more."""
    samples = [Sample(0.9, True), Sample(0.8, False), Sample(0.7, False), Sample(0.6, True)]
    best = best_f1_cut(samples)
    assert best is not None and best.threshold == 0.6 and best.f1 == pytest.approx(2 / 3)


def test_precision_target() -> None:
    """Precision >= 0.8 first holds (from below) at t=0.8 (2 of 2); at 0.6 it is 0.75."""
    c = precision_target_cut(SEVEN, 0.8)
    assert c is not None and c.threshold == 0.8 and c.recall == 0.5
    assert precision_target_cut(SEVEN, 0.7).threshold == 0.6  # type: ignore[union-attr]
    assert precision_target_cut([Sample(0.9, False), Sample(0.1, True)], 0.8) is None


def test_recall_floor() -> None:
    """Keeping 95% of 4 relevant needs all 4 (t=0.3); 75% needs 3 (t=0.6); 50% needs 2 (t=0.8)."""
    assert recall_floor_cut(SEVEN, 0.95).threshold == 0.3  # type: ignore[union-attr]
    assert recall_floor_cut(SEVEN, 0.75).threshold == 0.6  # type: ignore[union-attr]
    assert recall_floor_cut(SEVEN, 0.5).threshold == 0.8  # type: ignore[union-attr]
    assert recall_floor_cut([Sample(0.4, False)], 0.95) is None


def test_quantiles_and_recommend() -> None:
    """Median of the relevant similarities [.3,.6,.8,.9] is .7; of the irrelevant [.4,.5,.7] .5."""
    assert quantiles([]) == {}
    assert quantiles([0.3, 0.6, 0.8, 0.9])["p50"] == pytest.approx(0.7)
    rec = recommend(SEVEN)
    assert (rec.n_relevant, rec.n_irrelevant) == (4, 3)
    assert rec.irrelevant_quantiles["p50"] == pytest.approx(0.5)
    d = rec.as_dict()
    assert d["best_f1"]["threshold"] == 0.6 and d["precision_target"]["threshold"] == 0.8
    assert d["relaxed_floor"]["threshold"] == 0.3
    none = recommend([Sample(0.2, False)])
    assert none.best_f1 is None and none.precision_target is None and none.relaxed_floor is None
