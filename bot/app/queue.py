"""The audit queue: background audits keyed by pull request, newest head wins.

A job is data: the `AuditRequest` (installation, repository, pull request, head, trigger,
variant) and the pull request as GitHub returned it when the job was queued, both plain and
JSON-serialisable. The queue runs a job through the `JobRunner` attached to it (the
`bot.app.auditor.Auditor`), never through a closure that the job carries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

logger = logging.getLogger(__name__)

#: (repository full name, pull request number)
JobKey = tuple[str, int]

#: Why a job was cancelled (`AuditJob.cancel_reason`).
SUPERSEDED = "superseded"
CLOSED = "closed"
SHUTDOWN = "shutdown"
#: A worker of the shared queue stops: the job goes back to the queue as it is (no outcome).
HANDED_BACK = "handed back"


@dataclass(frozen=True)
class AuditRequest:
    """What a handler asks for: audit this pull request (at `head_sha` once it is queued)."""

    installation_id: int
    owner: str
    repo: str
    number: int
    filter_override: str | None = None
    delivery_id: str | None = None
    trigger: str = ""
    #: The head the job audits; set when the request is queued ("" before).
    head_sha: str = ""

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.repo}"

    @property
    def variant(self) -> str:
        """Jobs with the same key, head and variant are duplicates (`"full"` for
        `/txaudit full`)."""
        return self.filter_override or ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AuditRequest:
        return cls(**data)


@dataclass(eq=False)
class AuditJob:
    """One audit of one pull request head, as queued."""

    request: AuditRequest
    #: The pull request's JSON from GitHub when the job was queued (base sha, changed files).
    pull: Mapping[str, Any] = field(default_factory=dict)
    #: Set before the job's task is cancelled: SUPERSEDED, CLOSED or SHUTDOWN.
    cancel_reason: str | None = None
    #: The head sha of the job that replaced this one (with SUPERSEDED).
    superseded_by: str | None = None
    #: Which run of the job this is (> 1: a re-run after a worker died or stopped).
    attempt: int = 1

    @property
    def key(self) -> JobKey:
        return (self.request.full_name, self.request.number)

    @property
    def head_sha(self) -> str:
        return self.request.head_sha

    @property
    def variant(self) -> str:
        return self.request.variant

    @property
    def log_extra(self) -> dict[str, object]:
        request = self.request
        return {
            "delivery": request.delivery_id,
            "event": request.trigger,
            "installation": request.installation_id,
            "repo": request.full_name,
            "pr": request.number,
            "head_sha": request.head_sha,
        }

    def to_json(self) -> dict[str, Any]:
        """What a shared queue stores (the cancellation state is not part of the job)."""
        return {"request": self.request.to_json(), "pull": dict(self.pull)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AuditJob:
        return cls(AuditRequest.from_json(data["request"]), data.get("pull") or {})


class JobRunner(Protocol):
    """Runs queued jobs (the `Auditor`); looked up by the queue, not carried by the job."""

    async def run(self, job: AuditJob) -> None:
        """Run the audit; on cancellation, complete its check run and re-raise."""
        ...

    async def interrupted(self, job: AuditJob) -> None:
        """A shutdown cancelled `job` before it started: report it (no check run yet)."""
        ...


class AuditQueue(Protocol):
    """Where handlers put audits. A shared multi-process queue can implement the same."""

    def attach(self, runner: JobRunner) -> None:
        """Run the jobs through `runner` from now on."""
        ...

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

    def __init__(
        self,
        max_running: int = 8,
        *,
        shutdown_grace: float = 20.0,
        runner: JobRunner | None = None,
    ) -> None:
        self._runner = runner
        self._slots = asyncio.Semaphore(max_running)
        self._current: dict[JobKey, tuple[AuditJob, asyncio.Task[None]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._shutdown_grace = shutdown_grace

    def attach(self, runner: JobRunner) -> None:
        self._runner = runner

    async def submit(self, job: AuditJob) -> bool:
        if self._runner is None:
            raise RuntimeError("no JobRunner attached to the queue")
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
        runner = self._runner
        assert runner is not None  # `submit` checked
        started = False
        try:
            async with self._slots:
                started = True
                await runner.run(job)
        except asyncio.CancelledError:
            # A started job saw the cancellation and completed its check run.
            if not started and job.cancel_reason == SHUTDOWN:
                try:
                    await runner.interrupted(job)
                except Exception:
                    logger.exception("could not report an interrupted audit", extra=job.log_extra)
        except Exception:
            logger.exception("audit job crashed", extra=job.log_extra)
        finally:
            current = self._current.get(job.key)
            if current is not None and current[0] is job:
                del self._current[job.key]
