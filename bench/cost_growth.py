"""Cost growth: training time and memory by data size, KB search latency by knowledge-base size.

    python -m bench.cost_growth --json                  # the shipped model in models/
    python -m bench.cost_growth --model /tmp/bundle --only kb
    python -m bench.cost_growth --sizes 1000,5000 --kb-sizes 100,10000 --queries 50

Every figure is also given as a ratio to the per-message encoder cost measured in the same run,
in this process: the bundle's encoder (``make_embedder(manifest["encoder"])``) encodes the KB
evaluation queries (``data/kb/queries``, all languages) one at a time (the single-call p50 that
one analysed message pays) and in batches of 32 (what embedding training data costs per text).

**Training** at 1k, 5k and 20k messages. The seed training rows (``data/seed/train``) are
replicated with small variations (an order number appended) to reach each size, in a random
order, so 1k is a sample of distinct seed rows. The vectors come from an embedding cache: the
seed texts' own vectors (from the default ``EmbeddingCache``, encoded once if missing and not
timed), a variant reusing its seed text's vector. So the timed run is ``train_bundle``, with the
bundle's own training configuration, minus the encoder: cache reads, TF-IDF features, the
calibrated heads with their cross-validation folds, and writing the bundle (no KB). Each size runs in its own subprocess, whose peak RSS
(``VmHWM``) is the memory figure, next to its RSS before training.

**KB search** at 100, 1k, 10k and 100k articles. The shipped KB's article vectors (from the
bundle's ``kb/`` index, 28 entries each on average) are replicated with Gaussian noise (every
variant entry has cosine ``--variant-cosine`` to its original), never re-encoded. The timed call
is ``KnowledgeBaseIndex.suggest`` (search, department boost, reply filling) with one BLAS thread
as in the service, on the encoded queries; brute force (every entry) is timed beside it, and the
index's top 3 is compared with brute force's. Entry matrices larger than ``--ram-gb`` are written
to a temporary file and memory-mapped (100k articles: 10 GB), since a search reads only the rows
of the articles it re-ranks.

Results are also written to ``bench/results/cost_growth.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .workload import (
    REPO,
    SEED_TRAIN,
    MissingRequirement,
    machine,
    percentiles,
    proc_status_kib,
    ratio,
    report,
    shown_path,
)

DEFAULT_MODEL = REPO / "models"
KB_QUERIES = REPO / "data" / "kb" / "queries"
HEADS = {"department": "department", "urgency": "urgency"}
TRAIN_SIZES = (1000, 5000, 20000)
KB_SIZES = (100, 1000, 10000, 100000)
TARGET_KB_SHARE = 0.10  # KB search must stay under 10% of the per-message cost

if TYPE_CHECKING:
    from triage.data import LabelledData
    from triage.kb import KnowledgeBaseIndex


class CachedOnlyEmbedder:
    """Stands in for the bundle's encoder when every vector is already in the cache.

    It has the real encoder's spec and dimension (so cache keys and manifests match) but no
    model: the timed runs never load or call the encoder.
    """

    def __init__(self, spec: str, dim: int, vectors: dict[str, np.ndarray] | None = None) -> None:
        self.spec = spec
        self.dim = dim
        self._vectors = vectors or {}

    def warm_up(self) -> None:
        pass

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in texts if t not in self._vectors]
        if missing:
            raise RuntimeError(f"{len(missing)} texts are not in the embedding cache")
        return np.vstack([self._vectors[t] for t in texts]).astype(np.float32)

    encode_documents = encode_queries


# -- the per-message encoder cost ----------------------------------------------------------------
def kb_queries(n: int) -> list[dict[str, str]]:
    files = sorted(KB_QUERIES.glob("*.jsonl"))
    if not files:
        raise MissingRequirement(f"no KB queries in {KB_QUERIES.relative_to(REPO)}/*.jsonl")
    per_lang = [[json.loads(x) for x in f.read_text(encoding="utf-8").splitlines() if x.strip()]
                for f in files]
    out: list[dict[str, str]] = []
    for i in range(max(len(rows) for rows in per_lang)):
        out.extend(rows[i] for rows in per_lang if i < len(rows))
    return out[:n]


def encoder_cost(spec: str, texts: list[str], batch: int = 32) -> tuple[dict[str, object], np.ndarray]:
    from triage.embedders import make_embedder

    encoder = make_embedder(spec)
    encoder.warm_up()
    for t in texts[:5]:
        encoder.encode_queries([t])
    single, vecs = [], []
    for t in texts:
        t0 = time.perf_counter()
        vecs.append(encoder.encode_queries([t])[0])
        single.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    for i in range(0, len(texts), batch):
        encoder.encode_queries(texts[i:i + batch])
    batched = (time.perf_counter() - t0) / len(texts)
    stats = {"encoder": spec, "texts": len(texts), "single_call": percentiles(single),
             "batched_ms_per_text": round(batched * 1000, 3), "batch_size": batch}
    return stats, np.vstack(vecs)


# -- training ------------------------------------------------------------------------------------
def seed_training_data() -> LabelledData:
    from triage.data import load_labelled

    if not any(SEED_TRAIN.glob("*.jsonl")):
        raise MissingRequirement(f"no seed data in {SEED_TRAIN.relative_to(REPO)}/*.jsonl")
    return load_labelled([SEED_TRAIN], "text", HEADS, "subject")


def replicate(base: LabelledData, n: int, seed: int) -> tuple[LabelledData, list[int]]:
    """``n`` rows: the seed rows in a random order, then again with an order number appended."""
    from triage.data import LabelledData

    rng = random.Random(seed)
    order = list(range(len(base)))
    rng.shuffle(order)
    texts: list[str] = []
    labels: dict[str, list[str | None]] = {h: [] for h in base.labels}
    origin: list[int] = []
    for i in range(n):
        j = order[i % len(order)]
        text = base.texts[j]
        if i >= len(order):
            text = f"{text}\n(order {rng.randrange(10**7, 10**8)})"
        texts.append(text)
        origin.append(j)
        for h in base.labels:
            labels[h].append(base.labels[h][j])
    return LabelledData(texts, labels), origin


def fill_growth_cache(spec: str, sizes: Sequence[int], seed: int, cache_path: Path) -> dict[str, object]:
    """Put the vectors of every replicated row into a fresh cache at ``cache_path``."""
    from triage.embedders import EmbeddingCache, make_embedder

    base = seed_training_data()
    t0 = time.perf_counter()
    encoder = make_embedder(spec)
    shared = EmbeddingCache()  # the user's cache: seed texts embedded by earlier training runs
    base_vecs, n_new = shared.encode(encoder, base.texts)  # loads the encoder only if needed
    shared.close()
    data, origin = replicate(base, max(sizes), seed)
    lookup = {t: base_vecs[j] for t, j in zip(data.texts, origin, strict=True)}
    cache = EmbeddingCache(cache_path)
    cache.encode(CachedOnlyEmbedder(spec, base_vecs.shape[1], lookup), data.texts)
    cache.close()
    return {"seed_rows": len(base), "seed_texts_encoded_now": n_new, "dim": int(base_vecs.shape[1]),
            "setup_seconds": round(time.perf_counter() - t0, 1)}


def train_one(n: int, bundle: Path, dim: int, seed: int, cache_path: Path,
              workdir: Path) -> dict[str, object]:
    """One timed training run with ``bundle``'s training configuration (in a subprocess)."""
    from training.trainer import train_bundle
    from triage.embedders import EmbeddingCache
    from triage.model import CONFIG_FILE, TrainingConfig

    config = TrainingConfig.from_dict(json.loads((bundle / CONFIG_FILE).read_text()))
    spec = config.encoder
    data, _ = replicate(seed_training_data(), n, seed)
    rss_before = proc_status_kib(os.getpid(), "VmRSS") or 0
    t0 = time.perf_counter()
    _, manifest = train_bundle(data, workdir / f"bundle-{n}", config=config,
                               embedder=CachedOnlyEmbedder(spec, dim),
                               cache=EmbeddingCache(cache_path), version=f"growth-{n}")
    seconds = time.perf_counter() - t0
    split: dict[str, float] = manifest.metrics["training_seconds"]  # type: ignore[assignment]
    return {"rows": n, "seconds": round(seconds, 2), "cache_read_seconds": split["embed"],
            "fit_seconds": split["fit"], "save_seconds": round(seconds - split["embed"] - split["fit"], 2),
            "rss_before_mib": round(rss_before / 1024, 1),
            # VmHWM, not ru_maxrss: after fork + exec, ru_maxrss still counts the parent's pages
            "peak_rss_mib": round((proc_status_kib(os.getpid(), "VmHWM") or 0) / 1024, 1)}


def training_growth(bundle: Path, spec: str, sizes: Sequence[int], seed: int,
                    per_text_s: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="cost-growth-train-") as tmp:
        work = Path(tmp)
        cache_path = work / "growth.sqlite"
        setup = fill_growth_cache(spec, sizes, seed, cache_path)
        runs = []
        for n in sizes:
            cmd = [sys.executable, "-m", "bench.cost_growth", "--train-one", str(n),
                   "--bundle", str(bundle), "--dim", str(setup["dim"]), "--seed", str(seed),
                   "--cache", str(cache_path), "--workdir", str(work)]
            proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"training {n} rows failed:\n{proc.stderr[-3000:]}")
            run = json.loads(proc.stdout.strip().splitlines()[-1])
            run["seconds_per_1k_rows"] = round(run["seconds"] / n * 1000, 2)
            # what encoding these rows would cost (batched), so the share the cache saves is visible
            run["fit_over_encoding_them"] = ratio(run["seconds"], n * per_text_s)
            runs.append(run)
    first = runs[0]
    for run in runs:
        run["time_ratio_to_smallest"] = ratio(run["seconds"], first["seconds"])
        run["rows_ratio_to_smallest"] = ratio(run["rows"], first["rows"])
        run["peak_rss_ratio_to_smallest"] = ratio(run["peak_rss_mib"], first["peak_rss_mib"])
    if len(runs) > 1:
        last = runs[-1]
        exponent = np.log(last["seconds"] / first["seconds"]) / np.log(last["rows"] / first["rows"])
    else:
        exponent = None
    return {"runs": runs, "time_growth_exponent": round(float(exponent), 2) if exponent else None,
            "setup": setup,
            "config": "the bundle's config.json (TrainingConfig)",
            "measures": "train_bundle with every vector from an EmbeddingCache: cache reads, "
                        "TF-IDF features, calibrated heads (CV folds + final fit each), saving; "
                        "no encoder, no KB"}


# -- knowledge-base search ------------------------------------------------------------------------
def load_shipped_kb(bundle: Path, spec: str, dim: int) -> KnowledgeBaseIndex:
    from triage.bundle import KB_DIR
    from triage.kb import KnowledgeBaseIndex

    if not (bundle / KB_DIR).is_dir():
        raise MissingRequirement(f"{bundle} has no {KB_DIR}/ index; build one with `triage index`")
    return KnowledgeBaseIndex.load(bundle / KB_DIR, CachedOnlyEmbedder(spec, dim))


def replicated_kb(base: KnowledgeBaseIndex, n_articles: int, cosine: float, seed: int,
                  workdir: Path, ram_bytes: float) -> tuple[KnowledgeBaseIndex, dict[str, object]]:
    """A KnowledgeBaseIndex of ``n_articles``: the base articles, then noisy variants of them."""
    from triage.kb import Article, KnowledgeBaseIndex, SearchIndex

    rng = np.random.default_rng(seed)
    base_ids = sorted(base.articles)
    vecs = {aid: np.asarray(base._vectors[aid], dtype=np.float32) for aid in base_ids}
    dim = vecs[base_ids[0]].shape[1]
    sigma = float(np.sqrt((1 / cosine**2 - 1) / dim))  # |noise| so that cos(variant, original) ~ cosine
    # articles grouped by their original: original, then its variants, contiguous
    groups = {aid: [n for n in range(len(base_ids), n_articles) if n % len(base_ids) == k]
              for k, aid in enumerate(base_ids)}
    if n_articles < len(base_ids):
        groups = {aid: [] for aid in base_ids[:n_articles]}
    ids, counts, departments, nq = [], [], [], []
    for aid, variants in groups.items():
        art = base.articles[aid]
        q = sum(len(v) for v in art.questions.values())
        for k in [0, *variants]:
            ids.append(aid if k == 0 else f"{aid}--v{k}")
            counts.append(len(vecs[aid]))
            departments.append(art.department)
            nq.append(q)
    total = int(sum(counts))
    size = total * dim * 4
    on_disk = size > ram_bytes
    matrix = (np.lib.format.open_memmap(workdir / f"kb-{n_articles}.npy", mode="w+",
                                        dtype=np.float32, shape=(total, dim))
              if on_disk else np.empty((total, dim), dtype=np.float32))
    centroids = np.empty((len(ids), dim), dtype=np.float32)
    row, art_n = 0, 0
    for aid, variants in groups.items():
        v = vecs[aid]
        block = np.broadcast_to(v, (1 + len(variants), *v.shape)).copy()
        if variants:
            noise = rng.standard_normal((len(variants), *v.shape), dtype=np.float32)
            block[1:] += sigma * noise
            block[1:] /= np.linalg.norm(block[1:], axis=2, keepdims=True)
        q = nq[art_n] or v.shape[0]
        c = block[:, :q].mean(axis=1)
        centroids[art_n:art_n + len(block)] = c / np.linalg.norm(c, axis=1, keepdims=True)
        matrix[row:row + block.shape[0] * block.shape[1]] = block.reshape(-1, dim)
        row += block.shape[0] * block.shape[1]
        art_n += len(block)
    if isinstance(matrix, np.memmap):
        matrix.flush()
    t0 = time.perf_counter()
    search = SearchIndex(ids, matrix, counts, centroids, departments, seed=seed)
    build_s = time.perf_counter() - t0
    kb = KnowledgeBaseIndex(base.embedder, base.default_language, base.department_boost,
                            base.threshold)
    kb.language_thresholds = dict(getattr(base, "language_thresholds", {}) or {})
    for aid, art in zip(ids, (base.articles[i.split("--v")[0]] for i in ids), strict=True):
        kb.articles[aid] = art if aid == art.id else Article(aid, art.department, art.title,
                                                              art.replies, art.questions)
    kb._search = search  # the arrays are built above, without a second copy in kb._vectors
    info = {"articles": len(ids), "entries": total, "entry_matrix_gb": round(size / 1e9, 3),
            "entry_matrix_storage": "memory-mapped file" if on_disk else "memory",
            "centroids_mb": round(centroids.nbytes / 1e6, 1),
            "search": "inverted file" if search.lists is not None else "exact (every entry)",
            "lists": len(search.lists) if search.lists is not None else None,
            "index_build_seconds": round(build_s, 2)}
    return kb, info


def kb_growth(bundle: Path, spec: str, sizes: Sequence[int], qvecs: np.ndarray,
              queries: list[dict[str, str]], encoder_p50_ms: float, cosine: float, seed: int,
              ram_gb: float, brute_force_queries: int) -> dict[str, object]:
    from threadpoolctl import threadpool_limits

    base = load_shipped_kb(bundle, spec, qvecs.shape[1])
    dept_of = {aid: a.department for aid, a in base.articles.items()}
    rows = []
    with tempfile.TemporaryDirectory(prefix="cost-growth-kb-") as tmp:
        for n in sizes:
            t0 = time.perf_counter()
            kb, info = replicated_kb(base, n, cosine, seed, Path(tmp), ram_gb * 1e9)
            info["generate_seconds"] = round(time.perf_counter() - t0, 1)
            index = kb.search_index()
            with threadpool_limits(limits=1, user_api="blas"):  # as in TriageService
                for i in range(min(5, len(qvecs))):
                    kb.suggest(qvecs[i], language=queries[i]["language"])
                times = []
                for q, meta in zip(qvecs, queries, strict=True):
                    t = time.perf_counter()
                    kb.suggest(q, language=meta["language"], department=dept_of.get(meta["article_id"]))
                    times.append(time.perf_counter() - t)
                brute = []
                for q in qvecs[:brute_force_queries]:
                    t = time.perf_counter()
                    index.exact_scores(q)
                    brute.append(time.perf_counter() - t)
                found = [[aid for aid, _ in kb.search(q, top_k=3)] for q in qvecs]
            exact = index.exact_scores(qvecs)  # all queries in one pass over the entries
            top = np.argsort(-exact, axis=1)[:, :3]
            truth = [[index.ids[j] for j in row] for row in top]
            stats = percentiles(times)
            r1 = np.mean([f[0] == t[0] for f, t in zip(found, truth, strict=True)])
            r3 = np.mean([len(set(f) & set(t)) / 3 for f, t in zip(found, truth, strict=True)])
            same_base = np.mean([f[0].split("--v")[0] == t[0].split("--v")[0]
                                 for f, t in zip(found, truth, strict=True)])
            # the product's question: is the answering article (any variant of it) on top?
            wanted = [q.get("article_id") for q in queries]
            correct_found = np.mean([f[0].split("--v")[0] == w for f, w in zip(found, wanted, strict=True)])
            correct_exact = np.mean([t[0].split("--v")[0] == w for t, w in zip(truth, wanted, strict=True)])
            pos = index.positions
            gap = np.mean([exact[i, top[i, 0]] - exact[i, pos[found[i][0]]]
                           for i in range(len(found))])
            rows.append({
                **info,
                "suggest": stats,
                "suggest_p50_over_encoder_p50": ratio(stats["p50_ms"], encoder_p50_ms),
                "suggest_p99_over_encoder_p50": ratio(stats["p99_ms"], encoder_p50_ms),
                "brute_force": percentiles(brute),
                "brute_force_p50_over_encoder_p50": ratio(percentiles(brute)["p50_ms"], encoder_p50_ms),
                "agreement_with_brute_force": {
                    "top1": round(float(r1), 3), "top3_overlap": round(float(r3), 3),
                    "top1_same_original_article": round(float(same_base), 3),
                    "mean_top1_score_gap": round(float(gap), 5)},
                "top1_is_the_querys_article": {"index": round(float(correct_found), 3),
                                               "brute_force": round(float(correct_exact), 3)},
            })
            del kb, index, exact
    largest: dict[str, Any] = rows[-1]
    return {"sizes": rows,
            "variant_cosine": cosine,
            "target": f"suggest p50 < {TARGET_KB_SHARE:.0%} of the encoder's single-call p50 at "
                      f"{largest['articles']} articles",
            "passed": bool(largest["suggest_p50_over_encoder_p50"] is not None
                           and largest["suggest_p50_over_encoder_p50"] < TARGET_KB_SHARE)}


# -- driver --------------------------------------------------------------------------------------
def run(model: Path, only: str | None, sizes: Sequence[int], kb_sizes: Sequence[int], n_queries: int,
        seed: int, cosine: float, ram_gb: float, brute_force_queries: int) -> dict[str, object]:
    from triage.bundle import BundleError, read_manifest, resolve_bundle

    try:
        bundle = resolve_bundle(model)
    except BundleError as exc:
        raise MissingRequirement(f"{exc}; pass --model DIR (any bundle with a kb/ index)") from exc
    spec = str(read_manifest(bundle)["encoder"])
    load_before = os.getloadavg()
    t_run = time.perf_counter()
    queries = kb_queries(n_queries)
    enc, qvecs = encoder_cost(spec, [q["text"] for q in queries])
    p50 = enc["single_call"]["p50_ms"]  # type: ignore[index]
    out: dict[str, object] = {"model": {"dir": shown_path(bundle), "encoder": spec},
                              "per_message_encoder_cost": enc}
    if only in (None, "kb"):
        out["kb_search"] = kb_growth(bundle, spec, kb_sizes, qvecs, queries, p50, cosine, seed,
                                     ram_gb, brute_force_queries)
    if only in (None, "training"):
        out["training"] = training_growth(bundle, spec, sizes, seed,
                                          enc["batched_ms_per_text"] / 1000)  # type: ignore[operator]
    out["machine"] = {**machine(), "load_average_before": [round(x, 2) for x in load_before]}
    out["total_benchmark_seconds"] = round(time.perf_counter() - t_run, 1)
    return out


def summary(out: dict[str, Any]) -> str:
    enc = out["per_message_encoder_cost"]
    lines = [(f"cost growth: encoder {enc['encoder']} single call p50 "
              f"{enc['single_call']['p50_ms']:.1f} ms, batched {enc['batched_ms_per_text']:.1f} "
              f"ms/text; {out['machine']['cpus']} CPUs, load {out['machine']['load_average']}")]
    if "kb_search" in out:
        kb = out["kb_search"]
        lines.append("  KB search (suggest, one query):")
        for r in kb["sizes"]:
            a = r["agreement_with_brute_force"]
            lines.append(
                f"    {r['articles']:>7,} articles ({r['search']}): p50 {r['suggest']['p50_ms']:.2f} ms "
                f"= {r['suggest_p50_over_encoder_p50']:.3f} x encoder; brute force "
                f"{r['brute_force']['p50_ms']:.1f} ms = {r['brute_force_p50_over_encoder_p50']:.2f} x; "
                f"top-1 agrees {a['top1']:.0%}, top-3 overlap {a['top3_overlap']:.0%}, right "
                f"article on top {r['top1_is_the_querys_article']['index']:.0%} (brute force "
                f"{r['top1_is_the_querys_article']['brute_force']:.0%}); "
                f"{r['entry_matrix_gb']} GB of entries ({r['entry_matrix_storage']})")
        lines.append(f"    {kb['target']}: {'PASS' if kb['passed'] else 'MISS'}")
    if "training" in out:
        tr = out["training"]
        lines.append(f"  training ({tr['measures']}):")
        for r in tr["runs"]:
            lines.append(
                f"    {r['rows']:>6,} rows: {r['seconds']:.1f} s (fit {r['fit_seconds']:.1f} s), "
                f"x{r['time_ratio_to_smallest']} time for x{r['rows_ratio_to_smallest']} rows; "
                f"peak RSS {r['peak_rss_mib']:.0f} MiB (before {r['rss_before_mib']:.0f}); "
                f"{r['fit_over_encoding_them']} x the time to encode them")
        lines.append(f"    time grows as rows^{tr['time_growth_exponent']}")
    return "\n".join(lines)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cost_growth", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL,
                        help="bundle or registry directory (default: models/)")
    parser.add_argument("--only", choices=["kb", "training"])
    parser.add_argument("--sizes", type=_ints, default=list(TRAIN_SIZES), help="training rows")
    parser.add_argument("--kb-sizes", type=_ints, default=list(KB_SIZES), help="KB articles")
    parser.add_argument("--queries", type=int, default=100, help="KB queries encoded and searched")
    parser.add_argument("--brute-force-queries", type=int, default=5,
                        help="queries timed with brute-force search at each size")
    parser.add_argument("--variant-cosine", type=float, default=0.9)
    parser.add_argument("--ram-gb", type=float, default=3.0,
                        help="larger KB entry matrices go to a memory-mapped temporary file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true",
                        help="do not write bench/results/cost_growth.json")
    # internal: one training run in a fresh process (its peak RSS is the memory figure)
    parser.add_argument("--train-one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--bundle", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--dim", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.train_one:
        print(json.dumps(train_one(args.train_one, args.bundle, args.dim, args.seed, args.cache,
                                   args.workdir)))
        return 0
    return report(
        "bench.cost_growth",
        lambda: run(args.model, args.only, args.sizes, args.kb_sizes, args.queries, args.seed,
                    args.variant_cosine, args.ram_gb, args.brute_force_queries),
        summary, args.json, write=None if args.no_write else "cost_growth")


if __name__ == "__main__":
    raise SystemExit(main())
