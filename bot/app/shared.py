"""Shared mode (`REDIS_URL`): deliveries and audits in a durable queue on Redis, via saq.

Web processes verify a delivery, store it as a `deliver` job and answer; worker processes
(`txaudit worker`) route stored deliveries to the handlers and run the `audit` jobs those
queue. saq keeps a job in Redis until it finished: a worker that dies mid-job stops touching
it, saq's sweep finds it stuck after `HEARTBEAT_SECONDS` and another worker runs it again.

What this module adds on top of saq, all in plain Redis keys:

- `txaudit:pr:<repo>#<n>`: the job key of the pull request's current audit, so that a
  newer head or a close aborts the older audit on whichever worker runs it;
- `txaudit:cancel:<job key>`: why a job was aborted (superseded by which head, or closed),
  read by the worker that runs it to complete the check run with the right words;
- `txaudit:seen:<delivery id>`: deliveries that were routed, so a redelivery is ignored
  (one that was never processed still gets through).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from gidgethub import sansio
from redis.exceptions import RedisError
from saq import Job, Queue
from saq.job import Status

from bot.app.queue import HANDED_BACK, SUPERSEDED, AuditJob, JobKey, JobRunner

logger = logging.getLogger(__name__)

QUEUE_NAME = "txaudit"
#: A running job that its worker has not touched for this long is stuck: saq's sweep hands
#: it to another worker. A job whose worker was killed runs again within HEARTBEAT_SECONDS
#: + SWEEP_SECONDS (25 s by default). `TXAUDIT_JOB_HEARTBEAT` changes it (tests use 2 s).
HEARTBEAT_SECONDS = max(2, int(os.environ.get("TXAUDIT_JOB_HEARTBEAT", "20")))
TOUCH_SECONDS = HEARTBEAT_SECONDS / 4
SWEEP_SECONDS = max(1, HEARTBEAT_SECONDS // 4)
#: Runs of one job at most (the first and the re-runs after a worker died or stopped).
MAX_ATTEMPTS = 5
#: How long a routed delivery id is remembered (GitHub redelivers within days at most).
SEEN_TTL_SECONDS = 3 * 24 * 3600
#: Keys that point at a running audit outlive it by this much at most.
POINTER_TTL_SECONDS = 24 * 3600

#: What an unreachable Redis raises.
Unavailable = (RedisError, OSError, TimeoutError)


def make_queue(url: str) -> Queue:
    """The saq queue on the Redis at `url` (it reconnects by itself)."""
    return Queue.from_url(url, name=QUEUE_NAME)


def audit_key(job: AuditJob) -> str:
    """saq's key of an audit job: one per pull request, head and variant."""
    repo, number = job.key
    return f"audit:{repo}#{number}@{job.head_sha}:{job.variant}"


def _pr_pointer(key: JobKey) -> str:
    return f"txaudit:pr:{key[0]}#{key[1]}"


def _cancel_note(job_key: str) -> str:
    return f"txaudit:cancel:{job_key}"


def _seen(delivery_id: str) -> str:
    return f"txaudit:seen:{delivery_id}"


class RedisAuditQueue:
    """The shared `bot.app.queue.AuditQueue`: audit jobs as saq jobs on Redis."""

    def __init__(self, queue: Queue, *, audit_timeout: float) -> None:
        self.queue = queue
        self._timeout = int(audit_timeout) + 60
        self._runner: JobRunner | None = None

    @property
    def redis(self) -> Any:
        return self.queue.redis  # type: ignore[attr-defined]

    def attach(self, runner: JobRunner) -> None:
        self._runner = runner

    async def submit(self, job: AuditJob) -> bool:
        key = audit_key(job)
        previous = await self.redis.set(_pr_pointer(job.key), key, get=True, ex=POINTER_TTL_SECONDS)
        if previous is not None and previous.decode() != key:
            await self._abort(previous.decode(), SUPERSEDED, superseded_by=job.head_sha)
        queued = await self.queue.enqueue(
            Job(
                function="audit",
                kwargs={"job": job.to_json()},
                key=key,
                timeout=self._timeout,
                heartbeat=HEARTBEAT_SECONDS,
                retries=MAX_ATTEMPTS,
                ttl=600,
            )
        )
        if queued is None:
            logger.info("duplicate audit request ignored", extra=job.log_extra)
        return queued is not None

    async def cancel(self, key: JobKey, *, reason: str) -> int:
        current = await self.redis.get(_pr_pointer(key))
        if current is None:
            return 0
        return await self._abort(current.decode(), reason)

    async def _abort(self, job_key: str, reason: str, *, superseded_by: str | None = None) -> int:
        job = await self.queue.job(job_key)
        if job is None or job.status not in (Status.QUEUED, Status.ACTIVE):
            return 0
        note = json.dumps({"reason": reason, "superseded_by": superseded_by})
        await self.redis.set(_cancel_note(job_key), note, ex=POINTER_TTL_SECONDS)
        await self.queue.abort(job, error=reason)
        logger.info(
            "audit cancelled",
            extra={"job": job_key, "reason": reason, "superseded_by": superseded_by},
        )
        return 1

    async def cancel_note(self, job_key: str) -> tuple[str, str | None] | None:
        """(reason, superseded_by) of an aborted job, or None when nobody aborted it."""
        raw = await self.redis.get(_cancel_note(job_key))
        if raw is None:
            return None
        note = json.loads(raw)
        return str(note["reason"]), note.get("superseded_by")

    async def depth(self) -> int:
        """Jobs waiting for a worker."""
        return int(await self.queue.count("queued"))

    async def join(self) -> None:
        """Nothing runs in this process: the jobs are the workers' (see `wait_empty`)."""

    async def wait_empty(self) -> None:
        """Wait until no job is queued or running on any worker."""
        while await self.queue.count("incomplete"):
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        """Nothing to wind down here: unfinished jobs stay in Redis for the workers."""


class SharedIntake:
    """The web process's side: store verified deliveries for the workers."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    async def store(self, event: sansio.Event, installation_id: int) -> bool:
        """Store `event` as a `deliver` job; False when it was already routed or is queued.

        Atomic across replicas: saq's enqueue refuses a second job with the same key while
        the first is unfinished, and the seen key is set only once a worker routed it.
        """
        redis = self.queue.redis  # type: ignore[attr-defined]
        if await redis.exists(_seen(event.delivery_id or "")):
            return False
        queued = await self.queue.enqueue(
            Job(
                function="deliver",
                kwargs={
                    "event": event.event,
                    "delivery_id": event.delivery_id,
                    "installation_id": installation_id,
                    "data": event.data,
                },
                key=f"delivery:{event.delivery_id}",
                timeout=300,
                heartbeat=HEARTBEAT_SECONDS,
                retries=3,
                ttl=600,
            )
        )
        return queued is not None

    async def health(self) -> dict[str, Any]:
        """Redis reachability and the queue depth, for `/healthz`."""
        try:
            async with asyncio.timeout(2):
                await self.queue.redis.ping()  # type: ignore[attr-defined]
                depth = int(await self.queue.count("queued"))
        except Unavailable:
            return {"redis": "unreachable"}
        return {"redis": "ok", "queue_depth": depth}


async def mark_routed(queue: Queue, delivery_id: str) -> None:
    await queue.redis.set(_seen(delivery_id), b"1", ex=SEEN_TTL_SECONDS)  # type: ignore[attr-defined]


async def run_audit_job(
    runner: JobRunner, shared: RedisAuditQueue, saq_job: Job, job: AuditJob
) -> None:
    """Run one audit job in a worker: touch it while it runs (the heartbeat), and when
    saq cancels it, tell the audit why before it winds down.

    Aborted (a newer head, a close): the audit completes its check run saying so. Cancelled
    for any other reason (this worker stops): the job is handed back to the queue as it is,
    and the next run adopts the check run that this one created.
    """
    job.attempt = saq_job.attempts
    audit = asyncio.ensure_future(runner.run(job))
    touching = asyncio.ensure_future(_touch(saq_job))
    try:
        await asyncio.shield(audit)
    except asyncio.CancelledError:
        note = None
        with contextlib.suppress(*Unavailable):
            note = await shared.cancel_note(saq_job.key)
        if note is None:
            job.cancel_reason = HANDED_BACK
        else:
            job.cancel_reason, job.superseded_by = note
        audit.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await audit
        raise
    finally:
        touching.cancel()


async def _touch(saq_job: Job) -> None:
    while True:
        await asyncio.sleep(TOUCH_SECONDS)
        with contextlib.suppress(*Unavailable):
            await saq_job.update()


Route = Callable[[sansio.Event, int], Awaitable[None]]


async def route_delivery(queue: Queue, route: Route, **delivery: Any) -> None:
    """Run a stored delivery through the handlers, then remember it as routed."""
    event = sansio.Event(
        delivery["data"], event=delivery["event"], delivery_id=delivery["delivery_id"]
    )
    await route(event, int(delivery["installation_id"]))
    await mark_routed(queue, str(delivery["delivery_id"]))
