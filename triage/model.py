"""The triage model: message features (embedding + optional TF-IDF) and one calibrated head per target."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import joblib
import numpy as np
from scipy.sparse import csr_matrix, hstack

from .data import LabelledData
from .embedders import DEFAULT_ENCODER, EmbeddingCache, TextEmbedder, make_embedder
from .heads import CalibratedLinearHead, HeadPrediction, make_lexical_features, transform_lexical

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
LEXICAL_FILE = "lexical.joblib"
HEADS_DIR = "heads"


@dataclass
class TrainingConfig:
    """Everything that defines how a model is trained; saved with the bundle.

    Attributes:
        encoder: embedder spec (see :func:`triage.embedders.make_embedder`).
        lexical: add TF-IDF word + char n-gram features to the embedding.
        dense_weight: scale of the L2-normalised embedding relative to the TF-IDF block.
        C: inverse regularisation of every head.
        loss: ``logistic`` (logistic regression) or ``hinge`` (linear SVM) for every head.
        cv: folds for calibration and band thresholds.
        high_precision: out-of-fold accuracy the ``high`` band must reach.
        review_precision: out-of-fold accuracy below which a prediction ``needs_review``.
        n_jobs: processes for the calibration folds of each head.
        urgency_head: name of the head that never-miss signals may raise.
        urgency_levels: that head's levels from least to most urgent.
    """

    encoder: str = DEFAULT_ENCODER
    lexical: bool = True
    dense_weight: float = 2.0
    C: float = 0.5
    loss: str = "hinge"
    cv: int = 3
    high_precision: float = 0.97
    review_precision: float = 0.90
    n_jobs: int = 2
    urgency_head: str = "urgency"
    urgency_levels: list[str] = field(default_factory=lambda: ["low", "normal", "high", "urgent"])

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> TrainingConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)  # type: ignore[arg-type]


class TriageModel:
    """Embedding + lexical features feeding one :class:`CalibratedLinearHead` per target."""

    def __init__(self, config: TrainingConfig | None = None, embedder: TextEmbedder | None = None):
        self.config = config or TrainingConfig()
        self.embedder = embedder or make_embedder(self.config.encoder)
        if self.embedder.spec != self.config.encoder:
            self.config.encoder = self.embedder.spec
        self.lexical_ = None
        self.heads_: dict[str, CalibratedLinearHead] = {}

    # -- features ---------------------------------------------------------------------------
    def embed(self, texts: Sequence[str], cache: EmbeddingCache | None = None,
              progress: bool = False) -> np.ndarray:
        self.embedder.warm_up()
        if cache is not None:
            vecs, n_new = cache.encode(self.embedder, texts, progress=progress)
            log.info("embedded %d texts (%d new, %d from cache)", len(texts), n_new, len(texts) - n_new)
            return vecs
        return self.embedder.encode_queries(texts)

    def features(self, texts: Sequence[str], embeddings: np.ndarray) -> csr_matrix:
        dense = csr_matrix(embeddings * self.config.dense_weight)
        if self.lexical_ is None:
            return dense
        return hstack([dense, transform_lexical(self.lexical_, texts)], format="csr")

    # -- training ---------------------------------------------------------------------------
    def fit(
        self,
        data: LabelledData,
        cache: EmbeddingCache | None = None,
        progress: bool = False,
        embeddings: np.ndarray | None = None,
    ) -> TriageModel:
        if not data.labels:
            raise ValueError("no label columns given: pass at least one HEAD=COLUMN")
        if embeddings is None:
            embeddings = self.embed(data.texts, cache=cache, progress=progress)
        if self.config.lexical:
            self.lexical_ = make_lexical_features().fit(data.texts)
        X = self.features(data.texts, embeddings)
        self.heads_ = {}
        for head, labels in data.labels.items():
            idx = [i for i, lab in enumerate(labels) if lab is not None]
            if not idx:
                raise ValueError(f"head {head!r}: no labelled rows")
            y = np.array([labels[i] for i in idx], dtype=object)
            log.info("fitting head %r on %d rows, %d classes", head, len(idx), len(set(y)))
            self.heads_[head] = CalibratedLinearHead(
                C=self.config.C, loss=self.config.loss, cv=self.config.cv,
                high_precision=self.config.high_precision,
                review_precision=self.config.review_precision, n_jobs=self.config.n_jobs,
            ).fit(X[idx], y)
        return self

    # -- inference --------------------------------------------------------------------------
    @property
    def label_sets(self) -> dict[str, list[str]]:
        return {h: [str(c) for c in head.classes_] for h, head in self.heads_.items()}

    def predict(
        self, texts: Sequence[str], embeddings: np.ndarray | None = None, top_k: int = 3
    ) -> list[dict[str, HeadPrediction]]:
        if not self.heads_:
            raise RuntimeError("model is not trained")
        if embeddings is None:
            embeddings = self.embed(texts)
        X = self.features(texts, embeddings)
        per_head = {h: head.explain(X, top_k=top_k) for h, head in self.heads_.items()}
        return [{h: per_head[h][i] for h in self.heads_} for i in range(len(texts))]

    # -- persistence ------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        d = Path(directory)
        (d / HEADS_DIR).mkdir(parents=True, exist_ok=True)
        (d / CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2) + "\n")
        if self.lexical_ is not None:
            joblib.dump(self.lexical_, d / LEXICAL_FILE, compress=3)
        for name, head in self.heads_.items():
            joblib.dump(head, d / HEADS_DIR / f"{name}.joblib", compress=3)

    @classmethod
    def load(cls, directory: str | Path, embedder: TextEmbedder | None = None) -> TriageModel:
        """Load from a trusted bundle directory (joblib unpickles code: never load untrusted files)."""
        d = Path(directory)
        config = TrainingConfig.from_dict(json.loads((d / CONFIG_FILE).read_text()))
        model = cls(config, embedder=embedder)
        if (d / LEXICAL_FILE).exists():
            model.lexical_ = joblib.load(d / LEXICAL_FILE)
        model.heads_ = {
            p.stem: joblib.load(p) for p in sorted((d / HEADS_DIR).glob("*.joblib"))
        }
        return model
