"""The in-process audit queue: newest head wins, duplicates dropped, closed PRs cancelled."""

from __future__ import annotations

import asyncio

from bot.queue import CLOSED, SUPERSEDED, AuditJob, LocalAuditQueue


class Recorder:
    def __init__(self) -> None:
        self.started: list[str] = []
        self.finished: list[str] = []
        self.cancelled: list[tuple[str, str | None, str | None]] = []
        self.gate = asyncio.Event()

    async def __call__(self, job: AuditJob) -> None:
        self.started.append(job.head_sha)
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled.append((job.head_sha, job.cancel_reason, job.superseded_by))
            raise
        self.finished.append(job.head_sha)


async def test_newer_head_cancels_older() -> None:
    queue, rec = LocalAuditQueue(), Recorder()
    assert await queue.submit(AuditJob(("o/r", 1), "aaa", rec))
    await asyncio.sleep(0)
    assert await queue.submit(AuditJob(("o/r", 1), "bbb", rec))
    await asyncio.sleep(0)
    rec.gate.set()
    await queue.join()
    assert rec.cancelled == [("aaa", SUPERSEDED, "bbb")]
    assert rec.finished == ["bbb"]


async def test_duplicate_is_dropped_and_other_prs_are_independent() -> None:
    queue, rec = LocalAuditQueue(), Recorder()
    assert await queue.submit(AuditJob(("o/r", 1), "aaa", rec))
    assert not await queue.submit(AuditJob(("o/r", 1), "aaa", rec))
    assert await queue.submit(AuditJob(("o/r", 1), "aaa", rec, variant="full"))
    assert await queue.submit(AuditJob(("o/r", 2), "aaa", rec))
    rec.gate.set()
    await queue.join()
    assert sorted(rec.finished) == ["aaa", "aaa"]


async def test_cancel_for_closed_pr_and_queued_jobs_never_start() -> None:
    queue, rec = LocalAuditQueue(max_running=1), Recorder()
    await queue.submit(AuditJob(("o/r", 1), "aaa", rec))
    await queue.submit(AuditJob(("o/r", 2), "ccc", rec))
    await asyncio.sleep(0)
    assert await queue.cancel(("o/r", 2), reason=CLOSED) == 1  # still waiting for a slot
    assert await queue.cancel(("o/r", 1), reason=CLOSED) == 1
    assert await queue.cancel(("o/r", 1), reason=CLOSED) == 0
    await queue.join()
    assert rec.started == ["aaa"]
    assert rec.cancelled == [("aaa", CLOSED, None)]
