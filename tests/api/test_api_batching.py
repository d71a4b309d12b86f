"""Micro-batching: one encoder call per batch, no wait when alone, 429 when the queue is full."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import AGENT, AppRunner, RecordingEmbedder, assert_error, hold_encoder, wait_until

from api.batching import MicroBatcher, QueueFullError
from triage.service import MessageInput, TriageService


@pytest.fixture
def service(bundle_dir: Path) -> TriageService:
    svc = TriageService.from_bundle(bundle_dir)
    svc.model.embedder = RecordingEmbedder(svc.model.embedder)  # type: ignore[assignment]
    return svc


def _recorder(service: TriageService) -> RecordingEmbedder:
    assert isinstance(service.model.embedder, RecordingEmbedder)
    return service.model.embedder


async def _with_batcher(service: TriageService, body, **kwargs):  # type: ignore[no-untyped-def]
    executor = ThreadPoolExecutor(max_workers=1)
    batcher = MicroBatcher(lambda: service, executor, **kwargs)
    batcher.start()
    try:
        return await body(batcher)
    finally:
        await batcher.stop()
        executor.shutdown()


def test_concurrent_requests_share_one_encoder_call(service: TriageService) -> None:
    texts = [f"Where is my parcel number {i}?" for i in range(10)]

    async def body(batcher: MicroBatcher) -> list[object]:
        return await asyncio.gather(*(batcher.submit(MessageInput(t)) for t in texts))

    results = asyncio.run(_with_batcher(service, body))
    assert _recorder(service).calls == [texts]  # one call, in submission order
    alone = service.analyze_many([MessageInput(t) for t in texts])
    assert [r.to_dict() for r in results] == [a.to_dict() for a in alone]  # type: ignore[attr-defined]


def test_a_lone_request_does_not_wait_for_the_window(service: TriageService) -> None:
    async def body(batcher: MicroBatcher) -> float:
        await batcher.submit(MessageInput("warm up"))
        timings = []
        for _ in range(5):
            start = time.perf_counter()
            await batcher.submit(MessageInput("Where is my parcel?"))
            timings.append(time.perf_counter() - start)
        return min(timings)

    # With a 500 ms window, a request that waited for company would take 500 ms.
    assert asyncio.run(_with_batcher(service, body, window=0.5)) < 0.1
    assert all(len(c) == 1 for c in _recorder(service).calls)


def test_requests_queued_behind_a_busy_encoder_form_batches(service: TriageService) -> None:
    recorder = _recorder(service)
    recorder.release.clear()

    async def body(batcher: MicroBatcher) -> None:
        first = asyncio.ensure_future(batcher.submit(MessageInput("first")))
        while not recorder.entered.is_set():
            await asyncio.sleep(0.001)
        rest = [asyncio.ensure_future(batcher.submit(MessageInput(f"queued {i}")))
                for i in range(40)]
        await asyncio.sleep(0.01)
        recorder.release.set()
        await asyncio.gather(first, *rest)

    asyncio.run(_with_batcher(service, body, max_batch=16))
    assert [len(c) for c in recorder.calls] == [1, 16, 16, 8]


def test_full_queue_raises(service: TriageService) -> None:
    recorder = _recorder(service)
    recorder.release.clear()

    async def body(batcher: MicroBatcher) -> None:
        first = asyncio.ensure_future(batcher.submit(MessageInput("first")))
        while not recorder.entered.is_set():
            await asyncio.sleep(0.001)
        queued = [asyncio.ensure_future(batcher.submit(MessageInput(f"q{i}"))) for i in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(QueueFullError):
            await batcher.submit(MessageInput("one too many"))
        recorder.release.set()
        await asyncio.gather(first, *queued)

    asyncio.run(_with_batcher(service, body, queue_size=2))


def test_http_requests_are_batched_and_answered_in_order(start_app: AppRunner) -> None:
    client = start_app()
    recorder = hold_encoder(client)
    batcher = client.app.state.runtime.batcher  # type: ignore[attr-defined]
    messages = ["Where is my parcel?", "Wo ist mein Paket?", "Où est mon colis ?",
                "¿Dónde está mi pedido?", "我的包裹在哪里", "荷物はどこですか"] * 2
    results: dict[int, dict[str, object]] = {}

    def call(i: int) -> None:
        r = client.post("/v1/analyze", json={"text": messages[i], "ticket_id": f"H-{i}"},
                        headers=AGENT)
        results[i] = r.json()

    threads = [threading.Thread(target=call, args=(0,))]
    threads[0].start()
    wait_until(recorder.entered.is_set)
    threads += [threading.Thread(target=call, args=(i,)) for i in range(1, len(messages))]
    for t in threads[1:]:
        t.start()
    wait_until(lambda: batcher.depth == len(messages) - 1)
    recorder.release.set()
    for t in threads:
        t.join(10)
    assert [len(c) for c in recorder.calls] == [1, len(messages) - 1]
    for i in range(len(messages)):
        assert results[i]["ticket_id"] == f"H-{i}"
        expected = ["en", "de", "fr", "es", "zh", "ja"][i % 6]
        assert results[i]["language"]["code"] == expected  # type: ignore[index]
    metrics = client.get("/metrics").text
    assert "triage_batch_size_count 2.0" in metrics


def test_full_queue_answers_429_with_retry_after(start_app: AppRunner) -> None:
    client = start_app(queue_size=2, max_batch_size=1)
    recorder = hold_encoder(client)
    batcher = client.app.state.runtime.batcher  # type: ignore[attr-defined]
    statuses: list[int] = []

    def call(text: str) -> None:
        statuses.append(client.post("/v1/triage", json={"text": text}, headers=AGENT).status_code)

    threads = [threading.Thread(target=call, args=("in the encoder",))]
    threads[0].start()
    wait_until(recorder.entered.is_set)
    threads += [threading.Thread(target=call, args=(f"queued {i}",)) for i in range(2)]
    for t in threads[1:]:
        t.start()
    wait_until(lambda: batcher.depth == 2)
    r = client.post("/v1/triage", json={"text": "one too many"}, headers=AGENT)
    assert_error(r, 429, "too_many_requests")
    assert r.headers["Retry-After"] == "1"
    recorder.release.set()
    for t in threads:
        t.join(10)
    assert statuses == [200, 200, 200]
    assert "triage_queue_rejections_total 1.0" in client.get("/metrics").text


def test_batch_endpoint_uses_one_encoder_call(start_app: AppRunner) -> None:
    client = start_app()
    recorder = hold_encoder(client)
    recorder.release.set()
    r = client.post("/v1/analyze/batch", headers=AGENT,
                    json={"messages": [{"text": f"message {i}"} for i in range(5)]})
    assert r.status_code == 200
    assert [len(c) for c in recorder.calls] == [5]
