"""The web server: routes, startup and shutdown, and the `txaudit serve` entry point."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from gidgethub import sansio

from bot import __version__
from bot.app.auditor import Auditor
from bot.app.engine_pool import EngineRunner
from bot.app.github import GitHub, RetryPolicy, Sleep
from bot.app.handlers import routed_actions, router
from bot.app.intake import LISTEN_BACKLOG, MAX_BODY_BYTES, BackgroundTasks, WebhookIntake
from bot.app.intake_pool import IntakeConfig, IntakePool, listening_socket
from bot.app.logs import configure_logging
from bot.app.loop import run as run_event_loop
from bot.app.pacing import RedisBuckets
from bot.app.pages import health, rule_doc, rules_index
from bot.app.queue import AuditQueue, LocalAuditQueue
from bot.app.redeliver import MemoryLookState, Redeliverer, RedisLookState
from bot.app.settings import AppSettings, SettingsError
from bot.app.shared import RedisAuditQueue, SharedIntake, make_queue

logger = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", AppSettings)
QUEUE = web.AppKey("queue", AuditQueue)
BACKGROUND = web.AppKey("background", BackgroundTasks)
ENGINE = web.AppKey("engine", EngineRunner)
GITHUB = web.AppKey("github", GitHub)
AUDITOR = web.AppKey("auditor", Auditor)
INTAKE = web.AppKey("intake", WebhookIntake)
SHARED = web.AppKey("shared", SharedIntake)

#: Timeouts of calls to GitHub (seconds); failures are retried by `bot.app.github`.
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=60, connect=10, sock_read=45)
#: After the grace period, how long interrupted audits get to complete their check runs.
WIND_DOWN_SECONDS = 8.0


def make_app(
    settings: AppSettings,
    *,
    queue: AuditQueue | None = None,
    engine: EngineRunner | None = None,
    retry: RetryPolicy | None = None,
    sleep: Sleep | None = None,
    http_timeout: aiohttp.ClientTimeout = HTTP_TIMEOUT,
) -> web.Application:
    """Build the app; nothing starts until aiohttp runs its startup hooks."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    shared: SharedIntake | None = None
    if settings.redis_url is not None and queue is None:
        # Shared mode: this process stores deliveries; `txaudit worker` processes audit.
        saq_queue = make_queue(settings.redis_url)
        shared = SharedIntake(saq_queue)
        queue = RedisAuditQueue(saq_queue, audit_timeout=settings.audit_timeout)
        engine = engine if engine is not None else EngineRunner(0)  # never used here
    app[QUEUE] = (
        queue
        if queue is not None
        else LocalAuditQueue(settings.running_jobs, shutdown_grace=WIND_DOWN_SECONDS)
    )
    app[BACKGROUND] = BackgroundTasks()
    app[ENGINE] = engine if engine is not None else EngineRunner(settings.workers)
    owns_engine = engine is None and shared is None
    if shared is not None:
        app[SHARED] = shared

    async def dispatch(event: sansio.Event, installation_id: int) -> None:
        gh = app[GITHUB].installation(installation_id)
        await router.dispatch(event, gh, app[AUDITOR])

    intake = WebhookIntake(
        secret=settings.webhook_secret,
        router=router,
        dispatch=dispatch,
        background=app[BACKGROUND],
    )
    app[INTAKE] = intake
    if shared is not None:
        intake.store = shared.store

    async def github_context(app: web.Application) -> AsyncIterator[None]:
        if owns_engine:
            app[ENGINE].start()
        async with aiohttp.ClientSession(timeout=http_timeout) as session:
            # Shared mode: every process of the deployment keeps GitHub's pace in Redis.
            buckets = RedisBuckets(shared.queue.redis) if shared is not None else None  # type: ignore[attr-defined]
            app[GITHUB] = GitHub(session, settings, retry=retry, sleep=sleep, buckets=buckets)
            app[AUDITOR] = Auditor(
                hub=app[GITHUB], settings=settings, queue=app[QUEUE], engine=app[ENGINE]
            )
            logger.info(
                "txaudit started",
                extra={
                    "version": __version__,
                    "api_url": settings.api_url,
                    "app_id": settings.app_id,
                },
            )
            looking = _start_redelivery(app, shared)
            yield
            if looking is not None:
                looking.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await looking
            await shutdown(app)
            if owns_engine:
                app[ENGINE].close()
            if shared is not None:
                await shared.queue.disconnect()

    app.cleanup_ctx.append(github_context)
    app.router.add_post("/webhook", intake.handle)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/rules", rules_index)
    app.router.add_get("/rules/{rule_id}", rule_doc)
    return app


def _start_redelivery(
    app: web.Application, shared: SharedIntake | None
) -> asyncio.Task[None] | None:
    """Look for failed deliveries now and every `redeliver_interval` seconds (if set)."""
    interval = app[SETTINGS].redeliver_interval
    if interval <= 0:
        return None
    state = RedisLookState(shared.queue.redis) if shared is not None else MemoryLookState()  # type: ignore[attr-defined]
    return asyncio.create_task(Redeliverer(app[GITHUB], state).run(interval), name="redeliver")


async def wait_idle(app: web.Application) -> None:
    """Wait until no delivery is being handled and no audit is queued or running."""
    while True:
        await app[BACKGROUND].join()
        await app[QUEUE].join()
        if not len(app[BACKGROUND]):
            return


async def shutdown(app: web.Application) -> None:
    """Drain the app (SIGTERM): refuse deliveries with 503, give running audits
    `shutdown_grace` seconds to finish, then interrupt the rest; an interrupted audit
    completes its check run saying so. Safe to call more than once."""
    intake = app[INTAKE]
    if intake.draining:
        return
    intake.draining = True
    grace = app[SETTINGS].shutdown_grace
    logger.info("draining", extra={"grace": grace})
    try:
        async with asyncio.timeout(grace):
            await wait_idle(app)
    except TimeoutError:
        pass
    interrupted = app[BACKGROUND].cancel()
    if interrupted:
        logger.warning("deliveries interrupted by shutdown", extra={"count": interrupted})
    await app[QUEUE].close()  # interrupted audits complete their check runs
    logger.info("drained")


async def healthz(request: web.Request) -> web.Response:
    shared = request.app.get(SHARED)
    return health(
        request.app[INTAKE].draining, await shared.health() if shared is not None else None
    )


def run() -> None:
    """Start the webhook server (`txaudit serve`, `python -m bot`).

    Variables the environment does not set are read from `.env` (what the setup page
    writes); with no app id, key or secret at all it serves the setup page instead.
    """
    from bot.app import setup

    environ = setup.with_env_file(os.environ)
    if setup.needs_setup(environ):
        configure_logging()
        asyncio.run(setup.serve_setup(setup.SetupConfig.from_env(environ)))
        return
    try:
        settings = AppSettings.from_env(environ)
    except SettingsError as exc:
        print(f"txaudit: cannot start: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging()
    app = make_app(settings, retry=RetryPolicy.from_env())
    run_event_loop(serve(app, port=settings.port), uvloop=on_uvloop(settings))


def on_uvloop(settings: AppSettings) -> bool:
    """Whether the audit process runs on uvloop: only when intake processes answer the
    webhooks. An audit process answering them itself did worse on uvloop in a burst of 200
    (p99 149-210 ms in 3 runs, 67-83 ms on asyncio's loop in 2; bench_app --load 200)."""
    return settings.intake_processes > 0


async def serve(app: web.Application, *, port: int) -> None:
    """Serve `app` until SIGTERM or SIGINT, then drain it while still answering (503).

    With `intake_processes`, those processes answer on `port` and hand deliveries to this
    one; otherwise this process answers them itself.
    """
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    pool: IntakePool | None = None
    listener: socket.socket | None = None
    try:
        if app[SETTINGS].intake_processes:
            listener = listening_socket(port)
            pool = intake_pool(app, listener)
            try:
                await pool.start()
            except RuntimeError as exc:
                logger.error("cannot start", extra={"reason": str(exc)})
                raise SystemExit(1) from None
        else:
            await web.TCPSite(runner, port=port, backlog=LISTEN_BACKLOG).start()
        await stop.wait()
        logger.info("shutdown requested")
        if pool is not None:
            await pool.drain()
        await shutdown(app)
    finally:
        if pool is not None:
            await pool.close()
        if listener is not None:
            listener.close()
        await runner.cleanup()


def intake_pool(app: web.Application, listener: socket.socket) -> IntakePool:
    """Intake processes on `listener` that hand deliveries to `app` (not started yet)."""
    config = IntakeConfig(
        secret=app[SETTINGS].webhook_secret,
        routes=routed_actions(),
        log_level=logging.getLogger().getEffectiveLevel(),
    )
    return IntakePool(app[SETTINGS].intake_processes, listener, config, take=app[INTAKE].take)
