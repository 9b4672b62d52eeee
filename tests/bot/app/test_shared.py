"""Shared mode (REDIS_URL) against a real redis-server: web processes store deliveries,
`txaudit worker` processes audit them, and nothing answered 202 is lost."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from app_helpers import FAST_RETRY, Harness, helper_source, settings_for
from fakegithub import FakeGitHub, PullRequest, payloads
from redis_server import RedisServer

from bot.app.redeliver import Redeliverer, RedisLookState
from bot.app.server import QUEUE, make_app
from bot.app.shared import RedisAuditQueue

PATH = "app/jobs.py"
#: The workers' heartbeat in these tests: a killed worker's job runs again within ~3 s.
HEARTBEAT = "2"


class Workers:
    """`txaudit worker` processes (`python -m bot.app.worker`) against the fake and Redis."""

    def __init__(self, fake: FakeGitHub, redis: RedisServer) -> None:
        self.fake = fake
        self.redis = redis
        self.processes: list[asyncio.subprocess.Process] = []

    async def start(self, **extra_env: str) -> asyncio.subprocess.Process:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": os.getcwd(),
            "GITHUB_APP_ID": str(self.fake.app_id),
            "GITHUB_PRIVATE_KEY": self.fake.private_key_pem,
            "GITHUB_WEBHOOK_SECRET": self.fake.webhook_secret,
            "GITHUB_API_URL": self.fake.url,
            "REDIS_URL": self.redis.url,
            "TXAUDIT_WORKERS": "0",
            "TXAUDIT_JOB_HEARTBEAT": HEARTBEAT,
            "TXAUDIT_SHUTDOWN_GRACE": "0",
            "TXAUDIT_WRITE_INTERVAL": "0.05",  # GitHub's 1 s pacing is tested elsewhere
            **extra_env,
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.app.worker",
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        self.processes.append(process)
        return process

    async def stop_all(self) -> None:
        for process in self.processes:
            if process.returncode is None:
                process.kill()
                await process.wait()


@pytest.fixture
async def shared(
    aiohttp_client: Any,
    make_fake_github: Callable[..., Any],
    redis_server: RedisServer,
) -> AsyncIterator[tuple[Harness, Workers]]:
    """A web process in shared mode (in this test's loop) and a way to start workers."""
    fake = await make_fake_github(latency=0.02)
    harness = await _web(aiohttp_client, fake, redis_server)
    workers = Workers(fake, redis_server)
    yield harness, workers
    await workers.stop_all()


async def _web(aiohttp_client: Any, fake: FakeGitHub, redis: RedisServer) -> Harness:
    app = make_app(settings_for(fake, redis_url=redis.url), retry=FAST_RETRY)
    client = await aiohttp_client(app)
    return Harness(client=client, app=app, fake=fake)


def _pr(fake: FakeGitHub, number: int = 0, files: dict[str, str] | None = None) -> PullRequest:
    repo = fake.create_repo(f"acme/svc{number}", files={"README.md": "hello\n"})
    repo.push("feature", files or {PATH: helper_source(2)})
    return repo.open_pull(head="feature", user="alice")


async def _opened(harness: Harness, pr: PullRequest, delivery: str | None = None) -> Any:
    event = payloads.pull_request_event(harness.fake, pr, "opened")
    return await harness.deliver("pull_request", event, delivery=delivery, settle=False)


async def _until(check: Callable[[], bool], timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.05)


def _completed(fake: FakeGitHub, pr: PullRequest) -> bool:
    return any(run.status == "completed" for run in fake.runs_for(pr.head_sha))


async def test_a_worker_audits_what_the_web_process_stored(
    shared: tuple[Harness, Workers],
) -> None:
    harness, workers = shared
    fake = harness.fake
    pr = _pr(fake)
    response = await _opened(harness, pr, delivery="d-1")
    assert response.status == 202
    assert fake.runs_for(pr.head_sha) == []  # the web process only stored it
    await workers.start()
    await _until(lambda: _completed(fake, pr))
    [run] = fake.runs_for(pr.head_sha)
    assert run.conclusion == "failure" and len(run.annotations) == 2
    await _until(lambda: len(fake.review_comments_of(pr)) == 2)
    # The same delivery again (GitHub's redelivery keeps the id): routed already, ignored.
    again = await _opened(harness, pr, delivery="d-1")
    assert again.status == 200 and "already seen" in await again.text()
    health = await (await harness.client.get("/healthz")).json()
    assert health["redis"] == "ok" and health["queue_depth"] == 0


async def test_a_killed_worker_s_audit_is_finished_by_another(
    shared: tuple[Harness, Workers],
) -> None:
    harness, workers = shared
    fake = harness.fake
    fake.latency = 0.4  # an audit takes several seconds: time to kill its worker
    pr = _pr(fake)
    first = await workers.start()
    assert (await _opened(harness, pr)).status == 202
    await _until(lambda: bool(fake.runs_for(pr.head_sha)))  # the audit is under way
    first.send_signal(signal.SIGKILL)
    await first.wait()
    assert [run.status for run in fake.runs_for(pr.head_sha)] == ["in_progress"]
    fake.latency = 0.02
    await workers.start()
    await _until(lambda: _completed(fake, pr))
    # The second run adopted the first one's check run: one run for the head, completed.
    [run] = fake.runs_for(pr.head_sha)
    assert run.status == "completed" and run.conclusion == "failure"
    await _until(lambda: len(fake.review_comments_of(pr)) == 2)
    await asyncio.sleep(0.5)
    assert len(fake.review_comments_of(pr)) == 2  # no duplicate comments


async def test_sigterm_hands_the_audit_back_instead_of_failing_it(
    shared: tuple[Harness, Workers],
) -> None:
    harness, workers = shared
    fake = harness.fake
    fake.latency = 0.4
    pr = _pr(fake)
    first = await workers.start()
    assert (await _opened(harness, pr)).status == 202
    await _until(lambda: bool(fake.runs_for(pr.head_sha)))
    first.send_signal(signal.SIGTERM)  # grace 0: the running audit is handed back at once
    assert await asyncio.wait_for(first.wait(), 20) == 0
    [run] = fake.runs_for(pr.head_sha)
    assert run.status == "in_progress"  # not completed as a failure or "interrupted"
    fake.latency = 0.02
    await workers.start()
    await _until(lambda: _completed(fake, pr))
    [run] = fake.runs_for(pr.head_sha)
    assert run.conclusion == "failure" and run.output["title"] == "2 errors in 1 file"


async def test_queued_deliveries_survive_restarting_every_process(
    aiohttp_client: Any,
    make_fake_github: Callable[..., Any],
    redis_server: RedisServer,
) -> None:
    fake = await make_fake_github()
    web = await _web(aiohttp_client, fake, redis_server)
    prs = [_pr(fake, number) for number in range(20)]
    for pr in prs:
        assert (await _opened(web, pr)).status == 202
    await web.client.close()  # the web process stops ...
    redis_server.restart()  # ... and so does Redis (append-only file: the queue survives)
    workers = Workers(fake, redis_server)
    try:
        await workers.start()
        await _until(lambda: all(_completed(fake, pr) for pr in prs), timeout=90)
    finally:
        await workers.stop_all()
    assert all(len(fake.runs_for(pr.head_sha)) == 1 for pr in prs)


async def test_redis_down_answers_503_and_the_redelivery_recovers_it(
    shared: tuple[Harness, Workers], redis_server: RedisServer
) -> None:
    harness, workers = shared
    fake = harness.fake
    fake.webhook_url = str(harness.client.make_url("/webhook"))
    pr = _pr(fake)
    redis_server.stop()
    event = payloads.pull_request_event(fake, pr, "opened")
    async with aiohttp.ClientSession() as session:
        status = await payloads.send(fake, session, "pull_request", event, url=fake.webhook_url)
    assert status == 503  # never 202 for work that could not be stored
    health = await harness.client.get("/healthz")
    assert health.status == 503 and (await health.json())["redis"] == "unreachable"
    redis_server.start()
    # The next look for failed deliveries asks GitHub for it again; it is stored and audited.
    client = aioredis.from_url(redis_server.url)
    try:
        asked = await Redeliverer(harness.github, RedisLookState(client)).look_once()
    finally:
        await client.aclose()
    assert asked == [fake.hook_deliveries[0].id]
    await _until(lambda: any(d.redelivery and d.status_code == 202 for d in fake.hook_deliveries))
    await workers.start()
    await _until(lambda: _completed(fake, pr))


async def test_two_webs_two_workers_one_run_per_head_and_supersede(
    aiohttp_client: Any,
    make_fake_github: Callable[..., Any],
    redis_server: RedisServer,
) -> None:
    fake = await make_fake_github(latency=0.3)
    web_a = await _web(aiohttp_client, fake, redis_server)
    web_b = await _web(aiohttp_client, fake, redis_server)
    workers = Workers(fake, redis_server)
    try:
        await workers.start()
        await workers.start()
        pr = _pr(fake)
        old_head = pr.head_sha
        assert (await _opened(web_a, pr, delivery="d-open")).status == 202
        # The same delivery reaches the other web process (a redelivery): ignored.
        assert (await _opened(web_b, pr, delivery="d-open")).status in (200,)
        await _until(lambda: bool(fake.runs_for(old_head)))
        # A push while the old head's audit runs on some worker: the newer head wins.
        pr.push({PATH: helper_source(3)})
        event = payloads.pull_request_event(fake, pr, "synchronize")
        response = await web_b.deliver("pull_request", event, settle=False)
        assert response.status == 202
        fake.latency = 0.02
        await _until(lambda: _completed(fake, pr))
        await _until(lambda: all(r.status == "completed" for r in fake.runs_for(old_head)))
    finally:
        await workers.stop_all()
    [old] = fake.runs_for(old_head)
    assert old.conclusion == "cancelled"
    [new] = fake.runs_for(pr.head_sha)
    assert new.conclusion == "failure" and new.output["title"] == "3 errors in 1 file"
    queue = web_a.app[QUEUE]
    assert isinstance(queue, RedisAuditQueue) and await queue.depth() == 0
