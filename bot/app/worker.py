"""`txaudit worker`: the shared mode's worker process (the Procfile's `worker:`).

It routes the deliveries that web processes stored and runs the audits they queue, from
the saq queue on `REDIS_URL`. SIGTERM: running audits get `TXAUDIT_SHUTDOWN_GRACE` seconds
to finish; those still running then go back to the queue for another worker.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import aiohttp
from gidgethub import sansio
from saq import Worker
from saq.types import Context

from bot import __version__
from bot.app.auditor import Auditor
from bot.app.engine_pool import EngineRunner
from bot.app.github import GitHub, RetryPolicy
from bot.app.handlers import router
from bot.app.logs import configure_logging
from bot.app.loop import run as run_event_loop
from bot.app.pacing import RedisBuckets
from bot.app.queue import AuditJob
from bot.app.server import HTTP_TIMEOUT
from bot.app.settings import AppSettings, SettingsError
from bot.app.setup import with_env_file
from bot.app.shared import (
    SWEEP_SECONDS,
    RedisAuditQueue,
    make_queue,
    route_delivery,
    run_audit_job,
)

logger = logging.getLogger(__name__)


async def work(settings: AppSettings) -> None:
    """Process jobs until SIGTERM or SIGINT (saq handles the signals)."""
    assert settings.redis_url is not None
    queue = make_queue(settings.redis_url)
    shared = RedisAuditQueue(queue, audit_timeout=settings.audit_timeout)
    engine = EngineRunner(settings.workers)
    engine.start()
    try:
        async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
            buckets = RedisBuckets(queue.redis)  # type: ignore[attr-defined]
            hub = GitHub(session, settings, retry=RetryPolicy.from_env(), buckets=buckets)
            auditor = Auditor(hub=hub, settings=settings, queue=shared, engine=engine)

            async def route(event: sansio.Event, installation_id: int) -> None:
                await router.dispatch(event, hub.installation(installation_id), auditor)

            async def deliver(ctx: Context, **delivery: Any) -> None:
                await route_delivery(queue, route, **delivery)

            async def audit(ctx: Context, *, job: dict[str, Any]) -> None:
                await run_audit_job(auditor, shared, ctx["job"], AuditJob.from_json(job))

            worker = Worker(
                queue,
                functions=[("deliver", deliver), ("audit", audit)],
                concurrency=settings.running_jobs + 2,
                timers={"sweep": SWEEP_SECONDS, "abort": 1, "schedule": 1, "worker_info": 10},
                shutdown_grace_period_s=int(settings.shutdown_grace),
                cancellation_hard_deadline_s=5.0,
            )
            logger.info(
                "txaudit worker started",
                extra={"version": __version__, "api_url": settings.api_url},
            )
            await worker.start()
            logger.info("txaudit worker stopped")
    finally:
        engine.close()
        await queue.disconnect()


def run() -> None:
    """`txaudit worker`, `python -m bot.app.worker`."""
    try:
        settings = AppSettings.from_env(with_env_file(os.environ))  # `.env` of the setup page
    except SettingsError as exc:
        print(f"txaudit: cannot start: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if settings.redis_url is None:
        print("txaudit: cannot start a worker: REDIS_URL is not set", file=sys.stderr)
        raise SystemExit(2)
    configure_logging()
    run_event_loop(work(settings), uvloop=False)


if __name__ == "__main__":
    run()
