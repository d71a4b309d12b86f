"""Training runs: data files in, an immutable model bundle out (model, KB index, manifest)."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from triage.bundle import (
    KB_DIR,
    Manifest,
    new_version,
    save_training_data,
)
from triage.data import LabelledData
from triage.embedders import EmbeddingCache, TextEmbedder, batch_threads, make_embedder
from triage.kb import Article, KnowledgeBaseIndex
from triage.model import TrainingConfig, TriageModel

log = logging.getLogger(__name__)


def train_bundle(
    data: LabelledData,
    out: str | Path,
    config: TrainingConfig | None = None,
    embedder: TextEmbedder | None = None,
    cache: EmbeddingCache | None = None,
    kb_articles: list[Article] | None = None,
    kb_negatives: list[str] | None = None,
    version: str | None = None,
    metrics: dict[str, object] | None = None,
    progress: bool = False,
    parent_version: str | None = None,
    kb_index: KnowledgeBaseIndex | None = None,
    evaluate: Callable[[TriageModel], dict[str, object]] | None = None,
) -> tuple[TriageModel, Manifest]:
    """Fit a :class:`TriageModel` on ``data`` and write a complete bundle to ``out``.

    ``out`` must not exist yet or be empty: bundles are immutable once written.
    ``kb_index`` is a ready index (same encoder) saved as is instead of building one from
    ``kb_articles``. ``evaluate`` is called with the fitted model before the bundle is sealed;
    what it returns is merged into the manifest's metrics.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} already exists and is not empty; bundles are immutable")
    config = config or TrainingConfig()
    embedder = embedder or make_embedder(config.encoder, threads=batch_threads())
    model = TriageModel(config, embedder=embedder)
    t0 = time.perf_counter()
    embeddings = model.embed(data.texts, cache=cache, progress=progress)
    t_embed = time.perf_counter() - t0
    model.fit(data, embeddings=embeddings)
    t_fit = time.perf_counter() - t0 - t_embed
    evaluated = evaluate(model) if evaluate is not None else {}
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    model.save(tmp)
    save_training_data(data, tmp)
    kb_info: dict[str, object] = {}
    index = kb_index
    if index is None and kb_articles:
        index = KnowledgeBaseIndex(embedder).build(kb_articles)
        index.calibrate(kb_negatives or [])
    if index is not None:
        if index.embedder.spec != embedder.spec:
            raise ValueError(f"KB index encoder {index.embedder.spec!r} differs from the model's "
                             f"{embedder.spec!r}")
        index.save(tmp / KB_DIR)
        kb_info = {"articles": len(index.articles), "languages": index.languages,
                   "threshold": round(index.threshold, 4)}
    manifest = Manifest(
        version=version or new_version(),
        encoder=embedder.spec,
        label_sets=model.label_sets,
        training_data_sha256=data.fingerprint(),
        n_training_rows=len(data),
        metrics={**(metrics or {}),
                 "training_seconds": {"embed": round(t_embed, 2), "fit": round(t_fit, 2)},
                 "out_of_fold": _oof_metrics(model),
                 **evaluated},
        parent_version=parent_version,
        kb=kb_info,
    )
    manifest.write(tmp)
    tmp.rename(out)  # a bundle appears whole or not at all
    log.info("wrote bundle %s to %s (embed %.1fs, fit %.1fs)", manifest.version, out, t_embed, t_fit)
    return model, manifest


def _oof_metrics(model: TriageModel) -> dict[str, dict[str, float]]:
    """Cross-validated accuracy and review thresholds recorded by each head during fit."""
    out = {}
    for name, head in model.heads_.items():
        if len(head.oof_correct_):
            out[name] = {
                "accuracy": round(float(np.mean(head.oof_correct_)), 4),
                "review_threshold": round(head.thresholds_[0], 4),
                "high_threshold": round(head.thresholds_[1], 4),
                "temperature": round(head.temperature_, 4),
            }
    return out


def index_bundle(bundle_dir: str | Path, articles: list[Article], negatives: list[str] | None = None,
                 embedder: TextEmbedder | None = None) -> KnowledgeBaseIndex:
    """(Re)build the KB index inside an existing bundle (``triage index``)."""
    from triage.bundle import read_manifest

    bundle_dir = Path(bundle_dir)
    manifest = read_manifest(bundle_dir)
    embedder = embedder or make_embedder(str(manifest["encoder"]), threads=batch_threads())
    index = KnowledgeBaseIndex(embedder).build(articles)
    index.calibrate(negatives or [])
    tmp = bundle_dir / (KB_DIR + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    index.save(tmp)
    if (bundle_dir / KB_DIR).exists():
        shutil.rmtree(bundle_dir / KB_DIR)
    tmp.rename(bundle_dir / KB_DIR)
    manifest["kb"] = {"articles": len(index.articles), "languages": index.languages,
                      "threshold": round(index.threshold, 4)}
    import json

    (bundle_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return index
