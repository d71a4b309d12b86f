"""CalibratedLinearHead: scikit-learn conventions, calibration and confidence bands."""

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from triage.heads import CalibratedLinearHead, coverage_curve, threshold_for_precision


@parametrize_with_checks(
    [CalibratedLinearHead(cv=2, max_iter=200), CalibratedLinearHead(loss="hinge", cv=2, max_iter=2000)]
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _blobs(n=600, k=4, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, 8)) * 2.5
    y = rng.integers(0, k, size=n)
    X = centers[y] + rng.normal(size=(n, 8)) * 1.5
    return X, np.array([f"class_{i}" for i in y], dtype=object)


@pytest.mark.parametrize("loss", ["logistic", "hinge"])
def test_outputs_are_labels_with_calibrated_probabilities(loss):
    X, y = _blobs()
    head = CalibratedLinearHead(loss=loss).fit(X[:400], y[:400])
    proba = head.predict_proba(X[400:])
    assert proba.shape == (200, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert set(head.predict(X[400:])) <= set(y)
    # Calibrated: mean confidence tracks accuracy on held-out data within a few points.
    acc = (head.predict(X[400:]) == y[400:]).mean()
    assert abs(proba.max(axis=1).mean() - acc) < 0.08
    assert head.temperature_ > 0


def test_bands_follow_out_of_fold_precision():
    X, y = _blobs(n=900)
    head = CalibratedLinearHead(review_precision=0.9, high_precision=0.97).fit(X[:600], y[:600])
    review, high = head.thresholds_
    assert 0 < review <= high <= 1
    preds = head.explain(X[600:], top_k=3)
    for p in preds:
        assert p.band == head.band(p.confidence)
        assert p.needs_review == (p.band == "low")
        assert len(p.alternatives) == 2
        assert all(a["label"] != p.label for a in p.alternatives)
    # Rows the head does not send to review are answered at roughly the promised accuracy.
    covered = np.array([not p.needs_review for p in preds])
    labels = np.array([p.label for p in preds])
    assert (labels[covered] == y[600:][covered]).mean() >= 0.85


def test_threshold_for_precision_and_coverage_curve():
    conf = np.array([0.99, 0.95, 0.9, 0.6, 0.5])
    correct = np.array([True, True, True, False, True])
    assert threshold_for_precision(conf, correct, 1.0) == pytest.approx(0.9)
    assert threshold_for_precision(conf, correct, 0.8) == pytest.approx(0.5)
    assert threshold_for_precision(conf, np.zeros(5, bool), 0.5) == 1.0
    cov, acc = coverage_curve(conf, correct)
    assert cov[-1] == 1.0 and acc[0] == 1.0 and acc[-1] == pytest.approx(0.8)


def test_single_class_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 2 classes"):
        CalibratedLinearHead().fit(np.ones((5, 2)), ["a"] * 5)
