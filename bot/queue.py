"""The audit queue: background audits keyed by pull request, newest head wins."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Protocol

logger = logging.getLogger(__name__)

#: (repository full name, pull request number)
JobKey = tuple[str, int]

#: Why a job was cancelled (`AuditJob.cancel_reason`).
SUPERSEDED = "superseded"
CLOSED = "closed"
SHUTDOWN = "shutdown"


@dataclass(eq=False)
class AuditJob:
    """One audit of one pull request head; `run(job)` does the work."""

    key: JobKey
    head_sha: str
    run: Callable[[AuditJob], Awaitable[None]]
    #: Jobs with the same key, head and variant are duplicates (e.g. `"full"` for `/txaudit full`).
    variant: Hashable = ""
    #: Set before the job's task is cancelled: SUPERSEDED, CLOSED or SHUTDOWN.
    cancel_reason: str | None = None
    #: The head sha of the job that replaced this one (with SUPERSEDED).
    superseded_by: str | None = None
    log_extra: dict[str, object] = field(default_factory=dict)
    #: Called when a shutdown cancels the job before it started (it has no check run yet).
    on_interrupted: Callable[[AuditJob], Awaitable[None]] | None = None


class AuditQueue(Protocol):
    """Where handlers put audits. A shared multi-process queue can implement the same."""

    async def submit(self, job: AuditJob) -> bool:
        """Queue `job`, cancelling an older job for the same pull request.

        Returns False when an identical job (same key, head and variant) is already waiting
        or running.
        """
        ...

    async def cancel(self, key: JobKey, *, reason: str) -> int:
        """Cancel queued or running jobs for `key`; returns how many were cancelled."""
        ...

    async def join(self) -> None:
        """Wait until no job is queued or running."""
        ...

    async def close(self) -> None:
        """Cancel everything (reason SHUTDOWN) and wait for the jobs to wind down."""
        ...


class LocalAuditQueue:
    """An in-process `AuditQueue`: one asyncio task per job, `max_running` at a time."""

    def __init__(self, max_running: int = 8, *, shutdown_grace: float = 20.0) -> None:
        self._slots = asyncio.Semaphore(max_running)
        self._current: dict[JobKey, tuple[AuditJob, asyncio.Task[None]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._shutdown_grace = shutdown_grace

    async def submit(self, job: AuditJob) -> bool:
        existing = self._current.get(job.key)
        if existing is not None:
            old, task = existing
            if (
                not task.done()
                and old.cancel_reason is None
                and old.head_sha == job.head_sha
                and old.variant == job.variant
            ):
                logger.info("duplicate audit request ignored", extra=job.log_extra)
                return False
            self._cancel(old, task, SUPERSEDED, superseded_by=job.head_sha)
        task = asyncio.create_task(self._run(job), name=f"audit {job.key[0]}#{job.key[1]}")
        self._current[job.key] = (job, task)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def cancel(self, key: JobKey, *, reason: str) -> int:
        existing = self._current.get(key)
        if existing is None or existing[1].done() or existing[0].cancel_reason is not None:
            return 0
        self._cancel(*existing, reason)
        return 1

    async def join(self) -> None:
        while self._tasks:
            # wait() (not gather()) so that cancelling the waiter never cancels the tasks
            await asyncio.wait(list(self._tasks))

    async def close(self) -> None:
        for job, task in list(self._current.values()):
            if not task.done() and job.cancel_reason is None:
                self._cancel(job, task, SHUTDOWN)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=self._shutdown_grace)

    def running(self, key: JobKey) -> AuditJob | None:
        """The live job for `key`, if any."""
        existing = self._current.get(key)
        return existing[0] if existing is not None and not existing[1].done() else None

    def _cancel(
        self,
        job: AuditJob,
        task: asyncio.Task[None],
        reason: str,
        *,
        superseded_by: str | None = None,
    ) -> None:
        if task.done() or job.cancel_reason is not None:
            return  # never interrupt a job that is already winding down
        job.cancel_reason = reason
        job.superseded_by = superseded_by
        logger.info(
            "audit cancelled",
            extra={**job.log_extra, "reason": reason, "superseded_by": superseded_by},
        )
        task.cancel()

    async def _run(self, job: AuditJob) -> None:
        started = False
        try:
            async with self._slots:
                started = True
                await job.run(job)
        except asyncio.CancelledError:
            # A started job saw the cancellation and completed its check run.
            if not started and job.cancel_reason == SHUTDOWN and job.on_interrupted is not None:
                try:
                    await job.on_interrupted(job)
                except Exception:
                    logger.exception("could not report an interrupted audit", extra=job.log_extra)
        except Exception:
            logger.exception("audit job crashed", extra=job.log_extra)
        finally:
            current = self._current.get(job.key)
            if current is not None and current[0] is job:
                del self._current[job.key]
