"""Retraining from feedback: assemble data, train a candidate bundle, gate it, report, promote.

The candidate learns from the served bundle's training data, new labelled files and the agents'
corrections. The most recent corrections are held out: the gate scores the candidate and the
served model side by side on them and on a frozen evaluation set, and the candidate is promoted
only when it is not worse on the frozen set (within a tolerance) and better on the corrections.
"""

from __future__ import annotations

import logging
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from triage.bundle import KB_DIR, check_compatible, load_training_data, new_version, read_manifest
from triage.data import LabelledData, expand_paths, load_labelled, normalise_for_dedup, read_rows
from triage.embedders import EmbeddingCache, TextEmbedder, batch_threads, make_embedder
from triage.kb import KnowledgeBaseIndex
from triage.model import TrainingConfig, TriageModel

from .evaluation import evaluate_model
from .feedback_io import FeedbackLog
from .gate_report import write_gate_report
from .kb_feedback import learn_priors
from .registry import Registry, RegistryError
from .trainer import train_bundle

log = logging.getLogger(__name__)

REPORTS_DIR = "reports"
GATE_METRIC = "accuracy"


@dataclass
class RetrainConfig:
    """How a retrain assembles its data and when its candidate may replace the served model.

    Attributes:
        tolerance: the candidate's frozen-set accuracy may be at most this far below the served
            model's, for every head.
        holdout_fraction: share of the (deduplicated) corrections, the most recent ones, kept
            out of training and used by the gate.
        min_gain: the candidate's accuracy on the held-out corrections (mean over heads) must
            beat the served model's by more than this.
        seed: orders corrections that share a timestamp (e.g. a bulk import sorted by class), so
            the held-out share is not decided by file order.
        promote: promote a candidate that passes the gate (off: build and gate only).
        keep_rejected: keep a rejected candidate's bundle in the registry for inspection.
    """

    tolerance: float = 0.01
    holdout_fraction: float = 0.3
    min_gain: float = 0.0
    seed: int = 0
    promote: bool = True
    keep_rejected: bool = True


# -- data assembly ------------------------------------------------------------------------------
SUBJECT_COLUMN = "subject"


def load_labelled_files(
    paths: Sequence[str | Path], text_column: str, labels: dict[str, str]
) -> LabelledData:
    """Like :func:`triage.data.load_labelled`, prepending a ``subject`` column where a file has one.

    Bundles store the composed subject + body text, so seed-style files must be read the same way.
    """
    out = _empty(list(labels))
    for path in expand_paths(paths):
        rows = read_rows(path)
        has_subject = any(SUBJECT_COLUMN in r for r in rows)
        out = out.concat(load_labelled([path], text_column, labels,
                                       SUBJECT_COLUMN if has_subject else None))
    return out


def _empty(heads: Sequence[str]) -> LabelledData:
    return LabelledData([], {h: [] for h in heads})


def split_corrections(
    corrections: LabelledData, heads: Sequence[str], holdout_fraction: float, seed: int = 0
) -> tuple[LabelledData, LabelledData]:
    """Deduplicate corrections (a newer label wins, per head) and split off the most recent.

    ``corrections.extra["created_at"]`` orders them (missing: oldest); returns (older, recent).
    """
    created = corrections.extra.get("created_at") or [None] * len(corrections)
    rng = random.Random(seed)
    ties = [rng.random() for _ in range(len(corrections))]
    order = sorted(range(len(corrections)),
                   key=lambda i: (created[i] is not None, created[i] or 0, ties[i]))
    merged: dict[str, tuple[str, dict[str, str | None], object]] = {}
    for i in order:
        key = normalise_for_dedup(corrections.texts[i])
        text, labels, _ = merged.pop(key, (corrections.texts[i], {h: None for h in heads}, None))
        for h in heads:
            value = corrections.labels.get(h, [None] * len(corrections))[i]
            if value is not None:
                labels[h] = value
        merged[key] = (text, labels, created[i])  # re-inserted: ordered by newest event
    rows = list(merged.values())
    n_recent = 0
    if rows and holdout_fraction > 0:
        n_recent = min(len(rows), max(1, round(holdout_fraction * len(rows))))
    out = []
    for part in (rows[: len(rows) - n_recent], rows[len(rows) - n_recent:]):
        data = LabelledData([t for t, _, _ in part], {h: [lab[h] for _, lab, _ in part] for h in heads},
                            {"created_at": [c for _, _, c in part]})
        out.append(data)
    return out[0], out[1]


def merge_sources(
    sources: Sequence[tuple[str, LabelledData]], heads: Sequence[str]
) -> tuple[LabelledData, dict[str, int]]:
    """Union of sources, deduplicated by normalised text; a later source's label wins per head.

    Sources are given oldest first. A row keeps its first text and position.
    """
    rows: dict[str, tuple[str, dict[str, str | None]]] = {}
    stats = {"duplicates_merged": 0, "labels_changed": 0}
    for name, data in sources:
        stats[f"{name}_rows"] = len(data)
        for i, text in enumerate(data.texts):
            key = normalise_for_dedup(text)
            new = {h: data.labels[h][i] if h in data.labels else None for h in heads}
            if key not in rows:
                rows[key] = (text, new)
                continue
            stats["duplicates_merged"] += 1
            old = rows[key][1]
            for h, value in new.items():
                if value is not None:
                    if old[h] is not None and old[h] != value:
                        stats["labels_changed"] += 1
                    old[h] = value
    merged = LabelledData([t for t, _ in rows.values()],
                          {h: [lab[h] for _, lab in rows.values()] for h in heads})
    return merged, stats


@dataclass
class AssembledData:
    """Training rows for the candidate and the held-out corrections for the gate."""

    train: LabelledData
    holdout: LabelledData
    stats: dict[str, int]


def assemble_data(
    base: LabelledData,
    new: LabelledData | None,
    corrections: LabelledData | None,
    heads: Sequence[str],
    config: RetrainConfig,
    exclude_texts: Sequence[str] = (),
) -> AssembledData:
    """Base + new files + older corrections, deduplicated; the recent corrections held out.

    Rows whose text is held out or in ``exclude_texts`` (the frozen evaluation set) are removed
    from training so that the gate never scores a text the candidate was trained on.
    """
    corrections = corrections if corrections is not None else _empty(heads)
    older, recent = split_corrections(corrections, heads, config.holdout_fraction, config.seed)
    merged, stats = merge_sources(
        [("base", base), ("new", new if new is not None else _empty(heads)),
         ("corrections_trained", older)], heads)
    held = {normalise_for_dedup(t) for t in recent.texts}
    frozen = {normalise_for_dedup(t) for t in exclude_texts}
    keep, n_held, n_frozen = [], 0, 0
    for i, text in enumerate(merged.texts):
        key = normalise_for_dedup(text)
        if key in held:
            n_held += 1
        elif key in frozen:
            n_frozen += 1
        elif any(merged.labels[h][i] is not None for h in heads):
            keep.append(i)
    train = merged.subset(keep)
    stats.update({
        "corrections": len(corrections),
        "corrections_unique": len(older) + len(recent),
        "held_out": len(recent),
        "removed_held_out_texts": n_held,
        "removed_frozen_texts": n_frozen,
        "train_rows": len(train),
    })
    return AssembledData(train, recent, stats)


# -- the gate -----------------------------------------------------------------------------------
def _labelled_heads(data: LabelledData, heads: Sequence[str]) -> LabelledData:
    """Only the heads that have at least one label in ``data`` (metrics need a label)."""
    return LabelledData(data.texts, {h: data.labels[h] for h in heads
                                     if any(v is not None for v in data.labels.get(h, []))},
                        data.extra)


@dataclass
class SetComparison:
    """The served model and the candidate scored on one evaluation set."""

    name: str
    n: int
    current: dict[str, dict[str, object]]
    candidate: dict[str, dict[str, object]] = field(default_factory=dict)
    raw_current: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    raw_candidate: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def score(self, which: str) -> float | None:
        """Mean accuracy over heads with labelled rows (None when there are none)."""
        metrics = self.current if which == "current" else self.candidate
        values = [float(m[GATE_METRIC]) for m in metrics.values() if m["n"]]  # type: ignore[arg-type]
        return float(np.mean(values)) if values else None

    @staticmethod
    def _compact(metrics: dict[str, dict[str, object]]) -> dict[str, object]:
        return {h: {"n": m["n"], "accuracy": round(float(m["accuracy"]), 4),  # type: ignore[arg-type]
                    "macro_f1": round(float(m["macro_f1"]), 4),  # type: ignore[arg-type]
                    "per_class_f1": {c: round(v["f1"], 4)
                                     for c, v in m["per_class"].items()}}  # type: ignore[union-attr]
                for h, m in metrics.items()}

    def to_dict(self) -> dict[str, object]:
        return {"n": self.n, "current": self._compact(self.current),
                "candidate": self._compact(self.candidate)}


def score_set(
    model: TriageModel, data: LabelledData, embeddings: np.ndarray, heads: Sequence[str]
) -> tuple[dict[str, dict[str, object]], dict[str, dict[str, np.ndarray]]]:
    """Per-head metrics and raw predictions of ``model`` on ``data`` (empty when unlabelled)."""
    labelled = _labelled_heads(data, heads)
    if not len(data) or not labelled.labels:
        return {}, {}
    return evaluate_model(model, labelled, embeddings=embeddings)


@dataclass
class GateDecision:
    """Whether the candidate may be served, and why."""

    passed: bool
    checks: list[dict[str, object]]
    tolerance: float
    min_gain: float
    frozen: SetComparison | None
    corrections: SetComparison | None

    @property
    def reasons(self) -> list[str]:
        """The failed checks, or every check when the gate passed."""
        failed = [str(c["detail"]) for c in self.checks if not c["passed"]]
        return failed or [str(c["detail"]) for c in self.checks]

    def to_dict(self) -> dict[str, object]:
        return {
            "passed": self.passed,
            "reasons": self.reasons,
            "tolerance": self.tolerance,
            "min_gain": self.min_gain,
            "metric": GATE_METRIC,
            "frozen": self.frozen.to_dict() if self.frozen else None,
            "corrections": self.corrections.to_dict() if self.corrections else None,
        }


def decide(frozen: SetComparison | None, corrections: SetComparison | None,
           tolerance: float, min_gain: float = 0.0) -> GateDecision:
    """Not worse on the frozen set (per head, within ``tolerance``) and better on corrections."""
    checks: list[dict[str, object]] = []
    if frozen is None or not frozen.current:
        checks.append({"check": "frozen", "passed": False,
                       "detail": "no frozen evaluation set: cannot show the candidate is not worse"})
    else:
        for head, cur in frozen.current.items():
            cand = frozen.candidate.get(head)
            a_cur = float(cur[GATE_METRIC])  # type: ignore[arg-type]
            a_cand = float(cand[GATE_METRIC]) if cand else 0.0  # type: ignore[arg-type]
            ok = a_cand >= a_cur - tolerance - 1e-12
            checks.append({"check": f"frozen/{head}", "passed": ok,
                           "detail": f"frozen set, {head} {GATE_METRIC}: candidate {a_cand:.4f} vs "
                                     f"served {a_cur:.4f} ({'within' if ok else 'beyond'} "
                                     f"tolerance {tolerance:g})"})
    cur_score = corrections.score("current") if corrections else None
    cand_score = corrections.score("candidate") if corrections else None
    if cur_score is None or cand_score is None:
        checks.append({"check": "corrections", "passed": False,
                       "detail": "no held-out corrections: cannot show the candidate is better"})
    else:
        ok = cand_score > cur_score + min_gain
        checks.append({"check": "corrections", "passed": ok,
                       "detail": f"held-out corrections (n={corrections.n}), mean {GATE_METRIC}: "  # type: ignore[union-attr]
                                 f"candidate {cand_score:.4f} vs served {cur_score:.4f} "
                                 f"({'better' if ok else 'not better'}"
                                 f"{f' by more than {min_gain:g}' if min_gain else ''})"})
    return GateDecision(all(bool(c["passed"]) for c in checks), checks, tolerance, min_gain,
                        frozen, corrections)


# -- the whole run ------------------------------------------------------------------------------
@dataclass
class RetrainResult:
    """What one ``triage retrain`` did."""

    candidate_version: str
    current_version: str
    promoted: bool
    gate: GateDecision
    bundle_dir: Path | None
    report: Path | None
    data: dict[str, int]
    kb: dict[str, object]
    seconds: dict[str, float]

    def to_dict(self) -> dict[str, object]:
        return {
            "promoted": self.promoted,
            "candidate_version": self.candidate_version,
            "current_version": self.current_version,
            "served_version": self.candidate_version if self.promoted else self.current_version,
            "gate": self.gate.to_dict(),
            "bundle": str(self.bundle_dir) if self.bundle_dir else None,
            "report": str(self.report) if self.report else None,
            "data": self.data,
            "kb": self.kb,
            "seconds": self.seconds,
        }


def _embed(model: TriageModel, texts: Sequence[str], cache: EmbeddingCache | None) -> np.ndarray:
    if not texts:
        return np.zeros((0, model.embedder.dim), dtype=np.float32)
    return model.embed(texts, cache=cache)


def retrain(
    registry: Registry,
    new_data: LabelledData | None = None,
    feedback: FeedbackLog | None = None,
    frozen: LabelledData | None = None,
    config: RetrainConfig | None = None,
    cache: EmbeddingCache | None = None,
    embedder: TextEmbedder | None = None,
    report_dir: str | Path | None = None,
    version: str | None = None,
    progress: bool = False,
) -> RetrainResult:
    """Train a candidate from the served bundle plus feedback, gate it, report, maybe promote.

    The feedback log is taken as the complete history: KB priors are recomputed from all its
    reply decisions (when it has any). The candidate is a new bundle ``<registry>/<version>``.
    """
    config = config or RetrainConfig()
    t_start = time.perf_counter()
    current = registry.current()
    if current is None:
        raise RegistryError(f"{registry.root}: no served version (no CURRENT); train a bundle "
                            "into the registry and run `triage models promote VERSION` first")
    current_dir = registry.path(current)
    manifest = read_manifest(current_dir)
    check_compatible(manifest, current_dir)
    embedder = embedder or make_embedder(str(manifest["encoder"]), threads=batch_threads())
    current_model = TriageModel.load(current_dir, embedder=embedder)
    heads = list(current_model.heads_)
    base = load_training_data(current_dir, heads)
    corrections = feedback.corrections_data(heads) if feedback is not None else None
    frozen = frozen if frozen is not None else _empty(heads)
    assembled = assemble_data(base, new_data, corrections, heads, config, exclude_texts=frozen.texts)
    if not len(assembled.train):
        raise ValueError("no labelled rows to train on")
    log.info("retrain data: %s", assembled.stats)

    t0 = time.perf_counter()
    eval_vecs = _embed(current_model, frozen.texts + assembled.holdout.texts, cache)
    frozen_vecs, holdout_vecs = eval_vecs[: len(frozen)], eval_vecs[len(frozen):]
    t_eval_embed = time.perf_counter() - t0
    t0 = time.perf_counter()
    metrics, raw = score_set(current_model, frozen, frozen_vecs, heads)
    frozen_cmp = SetComparison("frozen", len(frozen), metrics, raw_current=raw)
    metrics, raw = score_set(current_model, assembled.holdout, holdout_vecs, heads)
    corr_cmp = SetComparison("corrections", len(assembled.holdout), metrics, raw_current=raw)
    t_served_eval = time.perf_counter() - t0

    decision: list[GateDecision] = []
    t_candidate_eval: list[float] = []

    def gate(candidate: TriageModel) -> dict[str, object]:
        t = time.perf_counter()
        frozen_cmp.candidate, frozen_cmp.raw_candidate = score_set(
            candidate, frozen, frozen_vecs, heads)
        corr_cmp.candidate, corr_cmp.raw_candidate = score_set(
            candidate, assembled.holdout, holdout_vecs, heads)
        decision.append(decide(frozen_cmp if len(frozen) else None,
                               corr_cmp if len(assembled.holdout) else None,
                               config.tolerance, config.min_gain))
        t_candidate_eval.append(time.perf_counter() - t)
        return {"gate": {"against": current, **decision[0].to_dict()}}

    kb_index, kb_info = _candidate_kb(current_dir, embedder, feedback)
    version = version or new_version()
    out = registry.root / version
    t0 = time.perf_counter()
    _, cand_manifest = train_bundle(
        assembled.train, out, config=TrainingConfig.from_dict(asdict(current_model.config)),
        embedder=embedder, cache=cache, version=version, progress=progress,
        parent_version=current, kb_index=kb_index, evaluate=gate,
        metrics={"retrain": {**assembled.stats, "config": asdict(config)}},
    )
    t_train = time.perf_counter() - t0
    result_gate = decision[0]

    promoted = False
    if result_gate.passed and config.promote:
        reason = "retrain: gate passed: " + "; ".join(result_gate.reasons)
        promoted = registry.promote(version, reason=reason) is not None
    bundle_dir: Path | None = out
    if not result_gate.passed and not config.keep_rejected:
        shutil.rmtree(out)
        bundle_dir = None
    seconds = {
        "embed_evaluation": round(t_eval_embed, 2),
        "embed_training": float(cand_manifest.metrics["training_seconds"]["embed"]),  # type: ignore[index]
        "fit": float(cand_manifest.metrics["training_seconds"]["fit"]),  # type: ignore[index]
        "train_bundle": round(t_train, 2),
        "served_model_eval": round(t_served_eval, 2),
        "candidate_eval": round(t_candidate_eval[0], 2),
    }
    result = RetrainResult(version, current, promoted, result_gate, bundle_dir, None,
                           assembled.stats, kb_info, seconds)
    t0 = time.perf_counter()
    result.report = write_gate_report(
        Path(report_dir) if report_dir else registry.root / REPORTS_DIR / version, result)
    result.seconds["report"] = round(time.perf_counter() - t0, 2)
    result.seconds["total"] = round(time.perf_counter() - t_start, 2)
    return result


def _candidate_kb(
    current_dir: Path, embedder: TextEmbedder, feedback: FeedbackLog | None
) -> tuple[KnowledgeBaseIndex | None, dict[str, object]]:
    """The served bundle's KB index (vectors reused, not re-embedded) with learned priors."""
    if not (current_dir / KB_DIR).is_dir():
        return None, {"index": False}
    index = KnowledgeBaseIndex.load(current_dir / KB_DIR, embedder)
    decisions = feedback.decisions if feedback is not None else []
    info: dict[str, object] = {"index": True, "reply_decisions": len(decisions)}
    if decisions:
        index.priors = learn_priors(decisions, index.articles)
        info["priors"] = len(index.priors)
    else:
        info["priors"] = len(index.priors)
        info["priors_kept_from"] = current_dir.name
    return index, info
