"""The in-process audit queue: newest head wins, duplicates dropped, closed PRs cancelled."""

from __future__ import annotations

import asyncio

from bot.app.queue import CLOSED, SUPERSEDED, AuditJob, AuditRequest, LocalAuditQueue


class Recorder:
    def __init__(self) -> None:
        self.started: list[str] = []
        self.finished: list[str] = []
        self.cancelled: list[tuple[str, str | None, str | None]] = []
        self.gate = asyncio.Event()

    async def interrupted(self, job: AuditJob) -> None:
        pass

    async def run(self, job: AuditJob) -> None:
        self.started.append(job.head_sha)
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled.append((job.head_sha, job.cancel_reason, job.superseded_by))
            raise
        self.finished.append(job.head_sha)


def job(number: int, head_sha: str, variant: str | None = None) -> AuditJob:
    """A queued audit of o/r#`number` at `head_sha` (`variant`: e.g. "full")."""
    return AuditJob(AuditRequest(1, "o", "r", number, filter_override=variant, head_sha=head_sha))


def queue_with(rec: Recorder, max_running: int = 8) -> LocalAuditQueue:
    return LocalAuditQueue(max_running, runner=rec)


async def test_newer_head_cancels_older() -> None:
    rec = Recorder()
    queue = queue_with(rec)
    assert await queue.submit(job(1, "aaa"))
    await asyncio.sleep(0)
    assert await queue.submit(job(1, "bbb"))
    await asyncio.sleep(0)
    rec.gate.set()
    await queue.join()
    assert rec.cancelled == [("aaa", SUPERSEDED, "bbb")]
    assert rec.finished == ["bbb"]


async def test_duplicate_is_dropped_and_other_prs_are_independent() -> None:
    rec = Recorder()
    queue = queue_with(rec)
    assert await queue.submit(job(1, "aaa"))
    assert not await queue.submit(job(1, "aaa"))
    assert await queue.submit(job(1, "aaa", variant="full"))
    assert await queue.submit(job(2, "aaa"))
    rec.gate.set()
    await queue.join()
    assert sorted(rec.finished) == ["aaa", "aaa"]


async def test_cancel_for_closed_pr_and_queued_jobs_never_start() -> None:
    rec = Recorder()
    queue = queue_with(rec, max_running=1)
    await queue.submit(job(1, "aaa"))
    await queue.submit(job(2, "ccc"))
    await asyncio.sleep(0)
    assert await queue.cancel(("o/r", 2), reason=CLOSED) == 1  # still waiting for a slot
    assert await queue.cancel(("o/r", 1), reason=CLOSED) == 1
    assert await queue.cancel(("o/r", 1), reason=CLOSED) == 0
    await queue.join()
    assert rec.started == ["aaa"]
    assert rec.cancelled == [("aaa", CLOSED, None)]


def test_a_job_is_plain_data() -> None:
    """What the queue holds survives JSON: a shared queue can store and hand it back."""
    import json

    queued = AuditJob(
        AuditRequest(7, "o", "r", 3, "full", "delivery-1", "issue_comment.created", "abc"),
        {"head": {"sha": "abc"}, "base": {"sha": "def"}, "changed_files": 2},
    )
    again = AuditJob.from_json(json.loads(json.dumps(queued.to_json())))
    assert again.request == queued.request
    assert again.pull == queued.pull
    assert (again.key, again.head_sha, again.variant) == (("o/r", 3), "abc", "full")
