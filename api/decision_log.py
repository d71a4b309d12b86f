"""Group commit for the decision log: decisions arriving during a commit share the next one.

Each analyze request still waits for its own decision to be committed (fsynced) before it is
answered, but under load one fsync covers many requests instead of one each.
"""

from __future__ import annotations

import asyncio

from starlette.concurrency import run_in_threadpool

from .storage import DecisionRecord, Storage


class DecisionLog:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._pending: list[tuple[DecisionRecord, asyncio.Future[DecisionRecord]]] = []
        self._flushing = False
        self._task: asyncio.Task[None] | None = None  # held so the flush is not garbage-collected

    async def record(self, record: DecisionRecord) -> DecisionRecord:
        """Commit ``record``; returns what is stored (an earlier identical decision, if any)."""
        future: asyncio.Future[DecisionRecord] = asyncio.get_running_loop().create_future()
        self._pending.append((record, future))
        if not self._flushing:
            self._flushing = True
            self._task = asyncio.create_task(self._flush())
        return await future

    async def record_many(self, records: list[DecisionRecord]) -> list[DecisionRecord]:
        return list(await asyncio.gather(*(self.record(r) for r in records)))

    async def _flush(self) -> None:
        try:
            while self._pending:
                group, self._pending = self._pending, []
                try:
                    stored = await run_in_threadpool(self.storage.record_decisions,
                                                     [record for record, _ in group])
                except Exception as exc:  # noqa: BLE001 (every waiting request gets it)
                    for _, future in group:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(group, stored, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._flushing = False
