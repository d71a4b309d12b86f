"""Scoring a model on labelled data: metrics per head, plus an HTML report with plots."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

from triage.data import LabelledData
from triage.heads import coverage_curve, threshold_for_precision
from triage.model import TriageModel


def head_metrics(
    y_true: Sequence[str], y_pred: Sequence[str], confidence: np.ndarray, needs_review: np.ndarray
) -> dict[str, object]:
    """Accuracy, macro-F1, coverage, accuracy on covered rows and coverage at 90% accuracy.

    Labels the model never saw simply never match a prediction: they count as errors.
    """
    yt = np.asarray(y_true, dtype=object)
    yp = np.asarray(y_pred, dtype=object)
    correct = yt == yp
    covered = ~np.asarray(needs_review, dtype=bool)
    labels = sorted(set(yt) | set(yp))
    p, r, f, s = precision_recall_fscore_support(yt, yp, labels=labels, zero_division=0)
    thr90 = threshold_for_precision(confidence, correct, 0.90)
    return {
        "n": len(yt),
        "accuracy": float(correct.mean()) if len(yt) else 0.0,
        "macro_f1": float(f1_score(yt, yp, labels=sorted(set(yt)), average="macro", zero_division=0)),
        "coverage": float(covered.mean()) if len(yt) else 0.0,
        "accuracy_covered": float(correct[covered].mean()) if covered.any() else 0.0,
        "coverage_at_90": float((confidence >= thr90).mean()) if thr90 < 1.0 else 0.0,
        "per_class": {
            lab: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, lab in enumerate(labels)
        },
    }


def bootstrap_macro_f1(
    y_true: Sequence[str], y_pred: Sequence[str], n_boot: int = 1000, seed: int = 0
) -> list[float]:
    """95 % percentile-bootstrap interval of macro-F1 (rows resampled with replacement).

    Per-group figures rest on few rows (100 test messages per language in the seed split), so a
    gap between two groups means little without its spread. Macro-F1 is averaged over the labels
    of ``y_true``, as in :func:`head_metrics`.
    """
    yt = np.asarray(y_true, dtype=object)
    yp = np.asarray(y_pred, dtype=object)
    n = len(yt)
    if n == 0:
        return [0.0, 0.0]
    true_labels = sorted(set(yt))
    labels = true_labels + sorted(set(yp) - set(true_labels))
    k = len(labels)
    code = {lab: i for i, lab in enumerate(labels)}
    pairs = np.array([code[t] * k + code[p] for t, p in zip(yt, yp, strict=True)])
    rng = np.random.default_rng(seed)
    scores = []
    chunk = max(1, 2_000_000 // n)  # resamples per step: memory stays ~16 MB for any n
    for start in range(0, n_boot, chunk):
        c = min(chunk, n_boot - start)
        drawn = pairs[rng.integers(0, n, (c, n))] + (np.arange(c) * k * k)[:, None]
        confusion = np.bincount(drawn.ravel(), minlength=c * k * k).reshape(c, k, k)
        tp = np.diagonal(confusion, axis1=1, axis2=2)[:, : len(true_labels)]
        fn = confusion.sum(axis=2)[:, : len(true_labels)] - tp
        fp = confusion.sum(axis=1)[:, : len(true_labels)] - tp
        denom = 2 * tp + fp + fn
        f1 = np.divide(2 * tp, denom, out=np.zeros(tp.shape), where=denom > 0)
        scores.append(f1.mean(axis=1))
    lo, hi = np.percentile(np.concatenate(scores), [2.5, 97.5])
    return [round(float(lo), 4), round(float(hi), 4)]


def evaluate_model(
    model: TriageModel, data: LabelledData, embeddings: np.ndarray | None = None,
    group_by: str | None = None,
) -> tuple[dict[str, dict[str, object]], dict[str, dict[str, np.ndarray]]]:
    """Metrics per head (and per group, e.g. language), plus the raw arrays for plots."""
    preds = model.predict(data.texts, embeddings=embeddings)
    results: dict[str, dict[str, object]] = {}
    raw: dict[str, dict[str, np.ndarray]] = {}
    for head, labels in data.labels.items():
        if head not in model.heads_:
            continue
        idx = [i for i, lab in enumerate(labels) if lab is not None]
        y_true = [labels[i] for i in idx]
        y_pred = [preds[i][head].label for i in idx]
        conf = np.array([preds[i][head].confidence for i in idx])
        review = np.array([preds[i][head].needs_review for i in idx])
        metrics = head_metrics(y_true, y_pred, conf, review)
        metrics["unseen_labels"] = sorted(set(y_true) - set(model.label_sets[head]))
        if group_by and group_by in data.extra:
            groups = np.array([str(data.extra[group_by][i]) for i in idx])
            yt, yp = np.array(y_true, dtype=object), np.array(y_pred, dtype=object)
            metrics[f"per_{group_by}"] = {
                g: {
                    "n": int((groups == g).sum()),
                    "accuracy": float((yt[groups == g] == yp[groups == g]).mean()),
                    "macro_f1": float(f1_score(yt[groups == g], yp[groups == g],
                                               labels=sorted(set(yt[groups == g])),
                                               average="macro", zero_division=0)),
                    "macro_f1_ci95": bootstrap_macro_f1(yt[groups == g], yp[groups == g]),
                }
                for g in sorted(set(groups))
            }
        results[head] = metrics
        raw[head] = {"y_true": np.array(y_true, dtype=object), "y_pred": np.array(y_pred, dtype=object),
                     "confidence": conf}
    return results, raw


def write_report(
    report_dir: str | Path,
    metrics: dict[str, dict[str, object]],
    raw: dict[str, dict[str, np.ndarray]],
    title: str = "support-triage evaluation",
) -> Path:
    """HTML report: confusion matrix PNG, per-class table and coverage-vs-accuracy curve per head."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(report_dir)
    out.mkdir(parents=True, exist_ok=True)
    parts = [f"<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             ("<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style></head><body>"),
             f"<h1>{html.escape(title)}</h1>"]
    for head, m in metrics.items():
        r = raw[head]
        labels = sorted(set(r["y_true"]) | set(r["y_pred"]))
        cm = confusion_matrix(r["y_true"], r["y_pred"], labels=labels)
        fig, ax = plt.subplots(figsize=(1 + 0.45 * len(labels), 1 + 0.45 * len(labels)))
        ax.imshow(cm, cmap="Blues")
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        if len(labels) <= 20:
            for i in range(len(labels)):
                for j in range(len(labels)):
                    if cm[i, j]:
                        ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                                color="white" if cm[i, j] > cm.max() / 2 else "black")
        ax.set_title(f"{head}: confusion matrix")
        fig.tight_layout()
        fig.savefig(out / f"{head}_confusion.png", dpi=110)
        plt.close(fig)

        cov, acc = coverage_curve(r["confidence"], r["y_true"] == r["y_pred"])
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.plot(cov, acc)
        ax.axhline(0.9, ls="--", c="grey", lw=0.8)
        ax.set_xlabel("coverage (share answered automatically)")
        ax.set_ylabel("accuracy on covered share")
        ax.set_ylim(max(0.0, float(acc.min()) - 0.05), 1.0)
        ax.set_title(f"{head}: coverage vs accuracy")
        fig.tight_layout()
        fig.savefig(out / f"{head}_coverage.png", dpi=110)
        plt.close(fig)

        summary = {k: v for k, v in m.items() if not isinstance(v, (dict, list))}
        parts.append(f"<h2>{html.escape(head)}</h2><p>"
                     + ", ".join(f"{k}: <b>{v:.4f}</b>" if isinstance(v, float) else f"{k}: {v}"
                                 for k, v in summary.items()) + "</p>")
        if m.get("unseen_labels"):
            parts.append(f"<p>labels never seen in training (counted as errors): "
                         f"{html.escape(', '.join(m['unseen_labels']))}</p>")  # type: ignore[arg-type]
        parts.append(f"<img src='{head}_confusion.png'> <img src='{head}_coverage.png'>")
        parts.append("<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th>"
                     "<th>support</th></tr>")
        for lab, pc in m["per_class"].items():  # type: ignore[union-attr]
            parts.append(f"<tr><td style='text-align:left'>{html.escape(lab)}</td>"
                         f"<td>{pc['precision']:.3f}</td><td>{pc['recall']:.3f}</td>"
                         f"<td>{pc['f1']:.3f}</td><td>{pc['support']}</td></tr>")
        parts.append("</table>")
        for key, val in m.items():
            if key.startswith("per_") and key != "per_class":
                parts.append(f"<h3>{html.escape(key)}</h3><pre>{html.escape(json.dumps(val, indent=1))}</pre>")
    parts.append("</body></html>")
    path = out / "index.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
