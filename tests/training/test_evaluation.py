"""Scoring helpers: the bootstrap interval that puts per-language figures in proportion."""

import numpy as np
from sklearn.metrics import f1_score

from training.evaluation import bootstrap_macro_f1


def _noisy(n, accuracy, seed):
    rng = np.random.default_rng(seed)
    labels = np.array(["a", "b", "c", "d"], dtype=object)
    y = labels[rng.integers(0, 4, n)]
    wrong = rng.random(n) > accuracy
    pred = y.copy()
    pred[wrong] = labels[(np.searchsorted(labels, y[wrong]) + 1) % 4]
    return y, pred


def test_perfect_predictions_have_no_spread():
    y = ["a", "b", "c", "a", "b"] * 10
    assert bootstrap_macro_f1(y, y) == [1.0, 1.0]


def test_interval_holds_the_estimate_and_narrows_with_more_rows():
    y, p = _noisy(100, 0.9, seed=1)
    lo, hi = bootstrap_macro_f1(y, p)
    assert 0.0 <= lo < f1_score(y, p, average="macro") < hi <= 1.0
    y2, p2 = _noisy(4000, 0.9, seed=1)
    lo2, hi2 = bootstrap_macro_f1(y2, p2)
    assert hi2 - lo2 < (hi - lo) / 3  # spread shrinks like 1/sqrt(n)
    assert bootstrap_macro_f1(y, p) == [lo, hi]  # seeded: the same rows give the same interval


def test_empty_group_is_not_an_error():
    assert bootstrap_macro_f1([], []) == [0.0, 0.0]
