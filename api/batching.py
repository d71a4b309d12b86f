"""Micro-batching: concurrent analyze requests share one encoder call on one worker thread.

Requests go into a bounded asyncio queue. One coroutine takes the first waiting request, gives
the event loop one turn so requests arriving in the same instant can join, and if nothing else
is queued dispatches at once (a lone request never waits the window). When others are queued it
keeps collecting until ``window`` has passed since the first one arrived or ``max_batch`` is
reached. The batch is encoded once (``embedder.encode_queries``) and analysed
(``service.analyze_embedded``) on a single-thread executor, so CPU-bound work never runs on the
event loop and requests that queue meanwhile form the next batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field

from triage.data import compose_text
from triage.service import Analysis, MessageInput, TriageService

from .metrics import ServiceMetrics

log = logging.getLogger(__name__)


class QueueFullError(RuntimeError):
    """The queue is at capacity; the caller should answer 429."""


@dataclass
class _Job:
    message: MessageInput
    suggest: bool
    classify: bool
    future: asyncio.Future[Analysis]
    enqueued: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    """Groups single-message analyses into batches for one encoder call each.

    Parameters:
        get_service: returns the service to use, read once per batch (so a reload applies
            from the next batch on, and a batch never mixes models).
        executor: runs the CPU-bound work; a one-thread executor keeps encoder calls serial.
        window: seconds a batch may wait for company once more than one request is queued.
        max_batch: most messages per encoder call.
        queue_size: most requests waiting; beyond it :meth:`submit` raises QueueFullError.
    """

    def __init__(
        self,
        get_service: Callable[[], TriageService],
        executor: Executor,
        window: float = 0.002,
        max_batch: int = 32,
        queue_size: int = 256,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.get_service = get_service
        self.executor = executor
        self.window = window
        self.max_batch = max_batch
        self.queue_size = queue_size
        self.metrics = metrics
        self._queue: asyncio.Queue[_Job] | None = None
        self._worker: asyncio.Task[None] | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        self._queue = asyncio.Queue(maxsize=self.queue_size)
        self._worker = asyncio.create_task(self._run(), name="triage-batcher")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        if self._queue is not None:
            while not self._queue.empty():
                job = self._queue.get_nowait()
                if not job.future.done():
                    job.future.set_exception(RuntimeError("service is shutting down"))

    @property
    def depth(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    # -- requests ---------------------------------------------------------------------------
    async def submit(
        self, message: MessageInput, suggest: bool = True, classify: bool = True
    ) -> Analysis:
        """Analyse one message in the next batch (``model_version`` says which model did)."""
        if self._queue is None:
            raise RuntimeError("MicroBatcher.start() was not called")
        future: asyncio.Future[Analysis] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(_Job(message, suggest, classify, future))
        except asyncio.QueueFull:
            if self.metrics:
                self.metrics.rejected.inc()
            raise QueueFullError(f"{self.queue_size} requests are already waiting") from None
        if self.metrics:
            self.metrics.queue_depth.set(self._queue.qsize())
        return await future

    # -- the worker -------------------------------------------------------------------------
    async def _collect(self) -> list[_Job]:
        assert self._queue is not None
        queue = self._queue
        batch = [await queue.get()]
        await asyncio.sleep(0)  # one loop turn: requests submitted in the same instant join
        while len(batch) < self.max_batch and not queue.empty():
            batch.append(queue.get_nowait())
        if len(batch) > 1:
            # Others are waiting, so more are likely: wait out the window (counted from the
            # first request's arrival, which bounds the latency it adds).
            deadline = batch[0].enqueued + self.window
            while len(batch) < self.max_batch:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), remaining))
                except TimeoutError:
                    break
                while len(batch) < self.max_batch and not queue.empty():
                    batch.append(queue.get_nowait())
        return [job for job in batch if not job.future.done()]  # drop cancelled requests

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            if self.metrics:
                self.metrics.queue_depth.set(self.depth)
            if not batch:
                continue
            if self.metrics:
                now = time.perf_counter()
                for job in batch:
                    self.metrics.observe_stage("queue_wait", now - job.enqueued)
            try:
                service = self.get_service()
                results = await loop.run_in_executor(self.executor, analyze_jobs, service, batch,
                                                     self.metrics)
            except asyncio.CancelledError:
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(RuntimeError("service is shutting down"))
                raise
            # Whatever failed is delivered to every request of the batch; the worker lives on.
            except Exception as exc:  # noqa: BLE001
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            if self.metrics:
                self.metrics.batch_size.observe(len(batch))
            for job, result in zip(batch, results, strict=True):
                if job.future.done():
                    continue
                if isinstance(result, BaseException):
                    job.future.set_exception(result)
                else:
                    job.future.set_result(result)


def analyze_jobs(service: TriageService, jobs: Sequence[_Job],
                 metrics: ServiceMetrics | None = None) -> list[Analysis | BaseException]:
    """One encoder call for all jobs, then the heads and KB per (suggest, classify) group.

    If the batch fails, each message is retried alone so one bad message fails only itself.
    """
    try:
        return _analyze_batch(service, jobs, metrics)
    except Exception:
        if len(jobs) == 1:
            raise
        log.warning("batch of %d failed; retrying its messages one by one", len(jobs))
    out: list[Analysis | BaseException] = []
    for job in jobs:
        try:
            out.extend(_analyze_batch(service, [job], metrics))
        except Exception as exc:  # noqa: BLE001 (delivered to this message's request)
            out.append(exc)
    return out


def _analyze_batch(service: TriageService, jobs: Sequence[_Job],
                   metrics: ServiceMetrics | None = None) -> list[Analysis | BaseException]:
    texts = [compose_text(j.message.text, j.message.subject) for j in jobs]
    t0 = time.perf_counter()
    vecs = service.embedder.encode_queries(texts)
    t1 = time.perf_counter()
    out: list[Analysis | BaseException] = [RuntimeError("not analysed")] * len(jobs)
    groups: dict[tuple[bool, bool], list[int]] = {}
    for i, job in enumerate(jobs):
        groups.setdefault((job.suggest, job.classify), []).append(i)
    for (suggest, classify), idx in groups.items():
        analyses = service.analyze_embedded(
            [jobs[i].message for i in idx], [texts[i] for i in idx], vecs[idx],
            suggest=suggest, classify=classify,
        )
        for i, analysis in zip(idx, analyses, strict=True):
            out[i] = analysis
    if metrics:
        metrics.observe_stage("encode", t1 - t0)
        metrics.observe_stage("analyze", time.perf_counter() - t1)
    return out
