"""The retrain report: one self-contained HTML page comparing the served model and the candidate.

For each evaluation set (frozen set, held-out corrections) and head: metrics before and after,
the classes whose F1 moved, which predictions changed, and both confusion matrices.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .retrain import RetrainResult, SetComparison

REPORT_FILE = "index.html"
MOVED_MIN = 0.005  # an F1 change smaller than this is not "moved"

_STYLE = """
body{font-family:sans-serif;margin:2em;max-width:1200px}
table{border-collapse:collapse;margin:0.5em 0 1.2em}
td,th{border:1px solid #ccc;padding:3px 7px;text-align:right;font-size:13px}
th.l,td.l{text-align:left}
.pass{color:#176f2c;font-weight:bold}.fail{color:#b3261e;font-weight:bold}
.up{color:#176f2c}.down{color:#b3261e}
.cms{display:flex;gap:2em;flex-wrap:wrap}
"""


def _e(x: object) -> str:
    return html.escape(str(x))


def _delta(d: float) -> str:
    cls = "up" if d > 0 else "down" if d < 0 else ""
    return f"<td class='{cls}'>{d:+.4f}</td>"


def classes_moved(current: dict[str, object], candidate: dict[str, object],
                  min_change: float = MOVED_MIN) -> list[dict[str, object]]:
    """Per-class F1 before/after, largest absolute change first (only changes >= min_change)."""
    cur = current.get("per_class", {})
    cand = candidate.get("per_class", {})
    rows = []
    for label in sorted(set(cur) | set(cand)):  # type: ignore[arg-type]
        f_cur = float(cur.get(label, {}).get("f1", 0.0))  # type: ignore[union-attr]
        f_cand = float(cand.get(label, {}).get("f1", 0.0))  # type: ignore[union-attr]
        support = int(cur.get(label, cand.get(label, {})).get("support", 0))  # type: ignore[union-attr]
        if abs(f_cand - f_cur) >= min_change:
            rows.append({"class": label, "f1_current": f_cur, "f1_candidate": f_cand,
                         "delta": f_cand - f_cur, "support": support})
    return sorted(rows, key=lambda r: -abs(float(r["delta"])))  # type: ignore[arg-type]


def _metrics_table(cmp: SetComparison) -> str:
    parts = [("<table><tr><th class='l'>head</th><th class='l'>metric</th><th>served</th>"
              "<th>candidate</th><th>change</th></tr>")]
    for head, cur in cmp.current.items():
        cand = cmp.candidate.get(head, {})
        for key in ("accuracy", "macro_f1", "coverage", "accuracy_covered"):
            if key in cur:
                a, b = float(cur[key]), float(cand.get(key, 0.0))  # type: ignore[arg-type]
                parts.append(f"<tr><td class='l'>{_e(head)}</td><td class='l'>{key}</td>"
                             f"<td>{a:.4f}</td><td>{b:.4f}</td>{_delta(b - a)}</tr>")
        parts.append(f"<tr><td class='l'>{_e(head)}</td><td class='l'>n</td>"
                     f"<td>{cur['n']}</td><td>{cand.get('n', '')}</td><td></td></tr>")
    parts.append("</table>")
    return "".join(parts)


def _moved_table(rows: list[dict[str, object]]) -> str:
    if not rows:
        return "<p>No class's F1 moved.</p>"
    parts = [("<table><tr><th class='l'>class</th><th>F1 served</th><th>F1 candidate</th>"
              "<th>change</th><th>support</th></tr>")]
    for r in rows:
        parts.append(f"<tr><td class='l'>{_e(r['class'])}</td><td>{r['f1_current']:.3f}</td>"
                     f"<td>{r['f1_candidate']:.3f}</td>{_delta(float(r['delta']))}"  # type: ignore[arg-type]
                     f"<td>{r['support']}</td></tr>")
    parts.append("</table>")
    return "".join(parts)


def _changes(raw_cur: dict[str, np.ndarray], raw_cand: dict[str, np.ndarray], top: int = 10) -> str:
    y, a, b = raw_cur["y_true"], raw_cur["y_pred"], raw_cand["y_pred"]
    changed = a != b
    fixed = int((changed & (b == y)).sum())
    broken = int((changed & (a == y)).sum())
    moves = Counter(zip(a[changed], b[changed], strict=True)).most_common(top)
    out = [(f"<p>{int(changed.sum())} of {len(y)} predictions changed: "
            f"<span class='up'>{fixed} fixed</span>, <span class='down'>{broken} broken</span>, "
            f"{int(changed.sum()) - fixed - broken} wrong either way.</p>")]
    if moves:
        out.append("<table><tr><th class='l'>served predicted</th><th class='l'>candidate predicts"
                   "</th><th>rows</th></tr>")
        out += [f"<tr><td class='l'>{_e(f)}</td><td class='l'>{_e(t)}</td><td>{n}</td></tr>"
                for (f, t), n in moves]
        out.append("</table>")
    return "".join(out)


def _confusion(raw: dict[str, np.ndarray], labels: list[str], title: str) -> str:
    y, p = raw["y_true"], raw["y_pred"]
    index = {lab: i for i, lab in enumerate(labels)}
    cm = np.zeros((len(labels), len(labels)), dtype=int)
    for t, q in zip(y, p, strict=True):
        cm[index[t], index[q]] += 1
    peak = max(int(cm.max()), 1)
    parts = [f"<div><h4>{_e(title)}</h4><table><tr><th class='l'>true \\ predicted</th>"]
    parts += [f"<th>{_e(lab)}</th>" for lab in labels]
    parts.append("</tr>")
    for i, lab in enumerate(labels):
        parts.append(f"<tr><th class='l'>{_e(lab)}</th>")
        for j in range(len(labels)):
            v = int(cm[i, j])
            alpha = 0.85 * v / peak
            colour = f"rgba(23,111,44,{alpha:.2f})" if i == j else f"rgba(179,38,30,{alpha:.2f})"
            parts.append(f"<td style='background:{colour}'>{v or ''}</td>")
        parts.append("</tr>")
    parts.append("</table></div>")
    return "".join(parts)


def _set_section(cmp: SetComparison, title: str) -> str:
    parts = [f"<h2>{_e(title)} (n={cmp.n})</h2>"]
    if not cmp.current:
        return parts[0] + "<p>Nothing to score.</p>"
    parts.append(_metrics_table(cmp))
    for head, cur in cmp.current.items():
        cand = cmp.candidate.get(head)
        if cand is None:
            continue
        parts.append(f"<h3>{_e(head)}: classes that moved (F1)</h3>")
        parts.append(_moved_table(classes_moved(cur, cand)))
        rc, rn = cmp.raw_current.get(head), cmp.raw_candidate.get(head)
        if rc is not None and rn is not None:
            parts.append(f"<h3>{_e(head)}: predictions that changed</h3>")
            parts.append(_changes(rc, rn))
            labels = sorted(set(rc["y_true"]) | set(rc["y_pred"]) | set(rn["y_pred"]))
            parts.append(f"<h3>{_e(head)}: confusion matrices</h3><div class='cms'>")
            parts.append(_confusion(rc, labels, "served"))
            parts.append(_confusion(rn, labels, "candidate"))
            parts.append("</div>")
    return "".join(parts)


def write_gate_report(report_dir: str | Path, result: RetrainResult) -> Path:
    """Write ``<report_dir>/index.html`` (and ``gate.json``) for one retrain; returns the page."""
    out = Path(report_dir)
    out.mkdir(parents=True, exist_ok=True)
    gate = result.gate
    verdict = ("promoted" if result.promoted else
               "passed the gate, not promoted" if gate.passed else "rejected by the gate")
    title = f"retrain {result.candidate_version} vs served {result.current_version}"
    passed = "pass" if gate.passed else "fail"
    parts = [(f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
              f"<style>{_STYLE}</style></head><body><h1>{_e(title)}</h1>"),
             (f"<p>Decision: <span class='{passed}'>{_e(verdict)}</span>"
              f" (tolerance {gate.tolerance:g}, min gain {gate.min_gain:g})</p><ul>")]
    parts += [f"<li class='{'pass' if c['passed'] else 'fail'}'>{_e(c['detail'])}</li>"
              for c in gate.checks]
    parts.append("</ul>")
    parts.append("<h2>Data</h2><table>" + "".join(
        f"<tr><td class='l'>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in result.data.items())
        + "</table>")
    if result.kb:
        parts.append("<p>Knowledge base: " + _e(", ".join(f"{k} {v}" for k, v in result.kb.items()))
                     + "</p>")
    if gate.frozen is not None:
        parts.append(_set_section(gate.frozen, "Frozen evaluation set"))
    if gate.corrections is not None:
        parts.append(_set_section(gate.corrections, "Held-out recent corrections"))
    parts.append("<h2>Timings (seconds)</h2><pre>"
                 + _e(json.dumps(result.seconds, indent=1)) + "</pre></body></html>")
    page = out / REPORT_FILE
    (out / "gate.json").write_text(json.dumps({**result.to_dict(), "report": str(page)}, indent=1,
                                              ensure_ascii=False) + "\n", encoding="utf-8")
    page.write_text("\n".join(parts), encoding="utf-8")
    return page
