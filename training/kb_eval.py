"""Retrieval quality of reply suggestions: Recall@1/3, MRR and reply-language match per language."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from triage.data import expand_paths
from triage.service import MessageInput, TriageService


def load_queries(path: str | Path) -> list[dict[str, str]]:
    """JSONL rows with ``text``, ``language`` and ``article_id`` (a file or a directory)."""
    rows = []
    for f in expand_paths([path]):
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                row = json.loads(line)
                missing = {"text", "language", "article_id"} - set(row)
                if missing:
                    raise ValueError(f"{f}:{n}: missing {', '.join(sorted(missing))}")
                rows.append(row)
    return rows


def _summary(rows: list[dict[str, float]]) -> dict[str, float]:
    n = len(rows)
    lm = [r["language_match"] for r in rows if r["language_match"] is not None]
    return {
        "n": n,
        "recall_at_1": sum(r["rank"] == 1 for r in rows) / n if n else 0.0,
        "recall_at_3": sum(0 < r["rank"] <= 3 for r in rows) / n if n else 0.0,
        "mrr": sum(1.0 / r["rank"] for r in rows if r["rank"]) / n if n else 0.0,
        "language_match": sum(lm) / len(lm) if lm else 0.0,
        "refused": sum(r["refused"] for r in rows) / n if n else 0.0,
    }


def _is_cross_lingual(service: TriageService, q: dict[str, str]) -> bool:
    """True when the query's language has no example question in its target article."""
    art = service.kb.articles.get(q["article_id"]) if service.kb else None
    return art is None or q["language"] not in art.questions


def evaluate_kb_cross_lingual(service: TriageService, queries: list[dict[str, str]],
                              batch: int = 64, progress: bool = False) -> dict[str, object]:
    """Recall with each query language's example questions removed from the index.

    Every query then has no example question in its own language: it must be matched across
    languages. Returns the same summary as :func:`evaluate_kb` (per language and overall).
    """
    import copy as _copy

    assert service.kb is not None
    full_kb = service.kb
    rows: list[dict[str, object]] = []
    try:
        for lang in sorted({q["language"] for q in queries}):
            service.kb = full_kb.without_question_language(lang)
            part = [q for q in queries if q["language"] == lang]
            result = evaluate_kb(service, part, batch=batch, progress=progress)
            rows.append({"language": lang, **_copy.deepcopy(result)})
    finally:
        service.kb = full_kb
    n = sum(int(r["n"]) for r in rows)  # type: ignore[call-overload]
    overall = {k: sum(float(r[k]) * int(r["n"]) for r in rows) / n  # type: ignore[call-overload]
               for k in ("recall_at_1", "recall_at_3", "mrr", "language_match", "refused")}
    return {"n": n, **overall,
            "per_language": {str(r["language"]): {k: r[k] for k in ("n", *overall)} for r in rows}}


def evaluate_kb(service: TriageService, queries: list[dict[str, str]], batch: int = 64,
                progress: bool = False, top_k: int = 3) -> dict[str, object]:
    """Run every query through the full service (language, department, threshold) and score it.

    A query whose answer is refused ("no confident suggestion") counts as a miss.
    ``language_match`` counts only queries where the top article has a reply in the query's
    language, and compares it with the language the suggestion was returned in.
    """
    from tqdm.auto import tqdm

    assert service.kb is not None
    results = []
    for start in tqdm(range(0, len(queries), batch), disable=not progress, desc="queries"):
        chunk = queries[start:start + batch]
        analyses = service.analyze_many([MessageInput(text=q["text"], top_k=top_k) for q in chunk])
        for q, a in zip(chunk, analyses):
            items = a.suggestions.suggestions if a.suggestions else []
            ids = [s.article_id for s in items]
            rank = ids.index(q["article_id"]) + 1 if q["article_id"] in ids else 0
            lm = None
            if items and q["language"] in service.kb.articles[items[0].article_id].replies:
                lm = float(items[0].language == q["language"])
            results.append({"language": q["language"], "rank": rank, "language_match": lm,
                            "refused": float(not a.suggestions or not a.suggestions.confident),
                            "cross_lingual": _is_cross_lingual(service, q)})
    by_lang = defaultdict(list)
    for r in results:
        by_lang[r["language"]].append(r)
    out: dict[str, object] = _summary(results)
    out["per_language"] = {lang: _summary(rows) for lang, rows in sorted(by_lang.items())}
    cross = [r for r in results if r["cross_lingual"]]
    if cross:
        out["cross_lingual"] = _summary(cross)
    return out


def evaluate_bitext(service: TriageService, csv_path: str | Path, intent_map: dict[str, list[str]],
                    batch: int = 64, progress: bool = False) -> dict[str, object]:
    """Recall@1/3 of suggestions on Bitext's instructions, an answer counting when it is any
    article mapped to the row's intent. Refusals count as misses."""
    import csv

    from tqdm.auto import tqdm

    with Path(csv_path).open(newline="", encoding="utf-8") as f:
        rows = [(r["instruction"], r["intent"]) for r in csv.DictReader(f)]
    mapped = [(t, i) for t, i in rows if intent_map.get(i)]
    hits1 = hits3 = refused = 0
    per_intent: dict[str, list[int]] = defaultdict(list)
    for start in tqdm(range(0, len(mapped), batch), disable=not progress, desc="bitext"):
        chunk = mapped[start:start + batch]
        analyses = service.analyze_many([MessageInput(text=t, top_k=3) for t, _ in chunk])
        for (_, intent), a in zip(chunk, analyses):
            ids = [s.article_id for s in a.suggestions.suggestions] if a.suggestions else []
            ok = set(intent_map[intent])
            hits1 += bool(ids[:1]) and ids[0] in ok
            hit3 = any(i in ok for i in ids[:3])
            hits3 += hit3
            refused += not (a.suggestions and a.suggestions.confident)
            per_intent[intent].append(int(hit3))
    n = len(mapped)
    return {
        "n": n,
        "unmapped_rows": len(rows) - n,
        "unmapped_intents": sorted(i for i, arts in intent_map.items() if not arts),
        "recall_at_1": hits1 / n if n else 0.0,
        "recall_at_3": hits3 / n if n else 0.0,
        "refused": refused / n if n else 0.0,
        "recall_at_3_per_intent": {i: round(sum(v) / len(v), 3) for i, v in sorted(per_intent.items())},
    }
