"""Classifier heads over message features, following scikit-learn estimator conventions.

A head is multinomial logistic regression whose probabilities are temperature-calibrated on
out-of-fold predictions; the same out-of-fold predictions set the confidence-band thresholds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from joblib import Parallel, delayed
from scipy.optimize import minimize_scalar
from scipy.sparse import csr_matrix, hstack
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import FeatureUnion
from sklearn.svm import LinearSVC
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

BANDS = ("high", "medium", "low")


@dataclass
class HeadPrediction:
    """One head's answer for one message."""

    label: str
    confidence: float
    band: str
    alternatives: list[dict[str, float | str]] = field(default_factory=list)

    @property
    def needs_review(self) -> bool:
        return self.band == "low"

    def to_dict(self) -> dict[str, object]:
        return {
            "label": self.label,
            "confidence": round(self.confidence, 4),
            "band": self.band,
            "alternatives": self.alternatives,
        }


class CalibratedLinearHead(ClassifierMixin, BaseEstimator):
    """A linear classifier with temperature-scaled probabilities and confidence bands.

    Parameters
    ----------
    C : inverse regularisation strength.
    loss : ``"logistic"`` (LogisticRegression) or ``"hinge"`` (LinearSVC, squared hinge; its
        decision values become probabilities through the same temperature-scaled softmax).
    cv : folds for the out-of-fold predictions that calibrate temperature and bands
        (0 or too few samples per class: no calibration, T=1 and default bands).
    high_precision : accuracy the ``high`` band must reach on out-of-fold predictions.
    review_precision : accuracy the ``medium`` + ``high`` bands must reach; below it is ``low``,
        which means *needs review*.
    max_iter, class_weight, random_state : passed to the linear model.
    n_jobs : processes for the calibration folds (joblib semantics; None = 1).
    """

    def __init__(
        self,
        C: float = 10.0,
        loss: str = "logistic",
        cv: int = 3,
        high_precision: float = 0.97,
        review_precision: float = 0.90,
        max_iter: int = 3000,
        class_weight: str | None = None,
        random_state: int = 0,
        n_jobs: int | None = None,
    ) -> None:
        self.C = C
        self.loss = loss
        self.cv = cv
        self.high_precision = high_precision
        self.review_precision = review_precision
        self.max_iter = max_iter
        self.class_weight = class_weight
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _new_lr(self) -> LogisticRegression | LinearSVC:
        if self.loss == "hinge":
            return LinearSVC(C=self.C, max_iter=self.max_iter, class_weight=self.class_weight,
                             random_state=self.random_state)
        if self.loss != "logistic":
            raise ValueError(f"loss must be 'logistic' or 'hinge', got {self.loss!r}")
        return LogisticRegression(
            C=self.C,
            max_iter=self.max_iter,
            class_weight=self.class_weight,
            random_state=self.random_state,
        )

    @staticmethod
    def _logits(lr: LogisticRegression | LinearSVC, X: object) -> np.ndarray:
        d = lr.decision_function(X)
        if d.ndim == 1:  # binary: LogisticRegression returns the log-odds of classes_[1]
            d = np.column_stack([np.zeros_like(d), d])
        return np.asarray(d, dtype=np.float64)

    def _is_ready_csr(self, X: object) -> bool:
        """A finite float64 CSR matrix of the fitted width: needs no conversion or checks."""
        return (isinstance(X, csr_matrix) and X.dtype == np.float64
                and X.shape[1] == getattr(self, "n_features_in_", -1)
                and bool(np.isfinite(X.data).all()))

    def _direct_logits(self, X: csr_matrix) -> np.ndarray:
        """``model_.decision_function(X)`` for a ready CSR matrix, as the same product."""
        d = np.asarray(X @ self.model_.coef_.T) + self.model_.intercept_
        if d.shape[1] == 1:  # binary: the log-odds of classes_[1], as decision_function gives
            d = np.column_stack([np.zeros(len(d)), d[:, 0]])
        return np.asarray(d, dtype=np.float64)

    def fit(self, X: object, y: object) -> CalibratedLinearHead:
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=np.float64)
        check_classification_targets(y)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"a head needs at least 2 classes in its training labels, got 1 class "
                f"({self.classes_[0]!r})"
            )
        self.temperature_ = 1.0
        self.thresholds_ = (0.5, 0.8)  # (review, high) defaults when there is nothing to calibrate
        self.oof_confidence_ = np.zeros(0)
        self.oof_correct_ = np.zeros(0, dtype=bool)
        min_count = int(np.bincount(y_idx).min())
        folds = min(self.cv, min_count)
        if folds >= 2:
            logits = np.zeros((X.shape[0], len(self.classes_)))
            skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.random_state)
            splits = list(skf.split(np.zeros(len(y_idx)), y_idx))
            # The folds and the final fit are independent: run them side by side, each on one
            # BLAS thread (on a 2-core machine this was ~2x faster than one fit after another).
            *fitted, self.model_ = Parallel(n_jobs=self.n_jobs)(
                delayed(_fit_one)(self._new_lr(), X, y_idx, rows)
                for rows in [tr for tr, _ in splits] + [np.arange(len(y_idx))]
            )
            for lr, (_, te) in zip(fitted, splits):
                part = self._logits(lr, X[te])
                full = np.full((len(te), len(self.classes_)), -1e9)
                full[:, lr.classes_] = part
                logits[te] = full
            self.temperature_ = _fit_temperature(logits, y_idx)
            proba = softmax(logits / self.temperature_, axis=1)
            conf = proba.max(axis=1)
            correct = proba.argmax(axis=1) == y_idx
            self.oof_confidence_, self.oof_correct_ = conf, correct
            review = threshold_for_precision(conf, correct, self.review_precision)
            high = max(review, threshold_for_precision(conf, correct, self.high_precision))
            self.thresholds_ = (review, high)
        else:
            self.model_ = _fit_one(self._new_lr(), X, y_idx, np.arange(len(y_idx)))
        self.n_iter_ = self.model_.n_iter_
        return self

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.array_api_support = False
        return tags

    def predict_proba(self, X: object) -> np.ndarray:
        check_is_fitted(self, "model_")
        if self._is_ready_csr(X):
            # What TriageModel.features builds: scikit-learn's checks cost ~20x the product
            # itself for one message (0.43 of 0.45 ms per head), so they are skipped.
            logits = self._direct_logits(X)
        else:
            X = validate_data(self, X, accept_sparse="csr", dtype=np.float64, reset=False)
            logits = self._logits(self.model_, X)
        full = np.full((logits.shape[0], len(self.classes_)), -1e9)
        full[:, self.model_.classes_] = logits
        return softmax(full / self.temperature_, axis=1)

    def predict(self, X: object) -> np.ndarray:
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]

    def band(self, confidence: float) -> str:
        review, high = self.thresholds_
        if confidence >= high:
            return "high"
        return "medium" if confidence >= review else "low"

    def explain(self, X: object, top_k: int = 3) -> list[HeadPrediction]:
        """Label, calibrated confidence, band and the top alternatives for every row."""
        proba = self.predict_proba(X)
        out = []
        for row in proba:
            order = np.argsort(-row)[: max(1, top_k)]
            best = int(order[0])
            out.append(
                HeadPrediction(
                    label=str(self.classes_[best]),
                    confidence=float(row[best]),
                    band=self.band(float(row[best])),
                    alternatives=[
                        {"label": str(self.classes_[i]), "confidence": round(float(row[i]), 4)}
                        for i in order[1:]
                    ],
                )
            )
        return out


def _fit_one(model: LogisticRegression | LinearSVC, X: object, y: np.ndarray,
             rows: np.ndarray) -> LogisticRegression | LinearSVC:
    with threadpool_limits(limits=1):
        return model.fit(X[rows], y[rows])  # type: ignore[index]


def _fit_temperature(logits: np.ndarray, y_idx: np.ndarray) -> float:
    """Temperature T minimising the negative log-likelihood of softmax(logits / T)."""

    def nll(log_t: float) -> float:
        lp = log_softmax(logits / np.exp(log_t), axis=1)
        return float(-lp[np.arange(len(y_idx)), y_idx].mean())

    res = minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded")
    return float(np.exp(res.x))


def threshold_for_precision(conf: np.ndarray, correct: np.ndarray, precision: float) -> float:
    """Smallest confidence threshold whose accepted set reaches ``precision`` accuracy.

    Returns 1.0 (accept nothing automatically) when no threshold reaches it.
    """
    if len(conf) == 0:
        return 1.0
    order = np.argsort(-conf)
    cum_acc = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    ok = np.nonzero(cum_acc >= precision)[0]
    if len(ok) == 0:
        return 1.0
    return float(conf[order][ok[-1]])


def coverage_curve(conf: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coverage (share answered) and accuracy on that share, sweeping the confidence threshold."""
    order = np.argsort(-conf)
    n = np.arange(1, len(order) + 1)
    return n / len(order), np.cumsum(correct[order]) / n


def make_lexical_features() -> FeatureUnion:
    """TF-IDF over word uni/bi-grams and character 2-5-grams (works for CJK without a tokenizer)."""
    return FeatureUnion(
        [
            ("word", TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=1,
                                     max_features=200_000)),
            ("char", TfidfVectorizer(sublinear_tf=True, analyzer="char_wb", ngram_range=(2, 5),
                                     min_df=2, max_features=300_000)),
        ]
    )


def transform_lexical(features: FeatureUnion, texts: Sequence[str]) -> csr_matrix:
    """``features.transform(texts)`` for the union :func:`make_lexical_features` builds.

    The same arithmetic as ``TfidfVectorizer.transform`` (counts over the fitted vocabulary,
    sublinear tf, idf, l2 norm), without scikit-learn's per-call validation, which was most of
    the cost for one message: 0.5 ms instead of 1.8 ms. Any other union goes through
    ``transform``.
    """
    vectorizers = [v for _, v in features.transformer_list]
    if features.transformer_weights or not all(
        type(v) is TfidfVectorizer and v.use_idf and v.norm in ("l2", None) for v in vectorizers
    ):
        return csr_matrix(features.transform(texts))
    return hstack([_tfidf(v, texts) for v in vectorizers], format="csr")


def _tfidf(vectorizer: TfidfVectorizer, texts: Sequence[str]) -> csr_matrix:
    analyze = vectorizer.build_analyzer()
    vocabulary = vectorizer.vocabulary_
    indices: list[int] = []
    counts: list[int] = []
    indptr = [0]
    for text in texts:
        row: dict[int, int] = {}
        for gram in analyze(text):
            j = vocabulary.get(gram)
            if j is not None:
                row[j] = row.get(j, 0) + 1
        indices.extend(row)
        counts.extend(row.values())
        indptr.append(len(indices))
    X = csr_matrix((np.asarray(counts, dtype=np.float64), np.asarray(indices, dtype=np.int32),
                    np.asarray(indptr, dtype=np.int32)), shape=(len(texts), len(vocabulary)))
    X.sort_indices()
    if vectorizer.binary:
        X.data.fill(1.0)
    if vectorizer.sublinear_tf:
        np.log(X.data, X.data)
        X.data += 1.0
    X.data *= vectorizer.idf_[X.indices]
    if vectorizer.norm == "l2":
        rows = np.repeat(np.arange(len(texts)), np.diff(X.indptr))
        norms = np.sqrt(np.bincount(rows, weights=X.data**2, minlength=len(texts)))
        norms[norms == 0] = 1.0
        X.data /= norms[rows]
    return X.astype(vectorizer.dtype, copy=False)

