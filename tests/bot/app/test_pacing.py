"""GitHub's pace per installation: creations first, created completed, shared through Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from app_helpers import Harness, helper_source, settings_for
from fakegithub import FakeGitHub, PullRequest
from redis.asyncio import Redis
from redis_server import RedisServer

from bot.app.github import RetryPolicy
from bot.app.pacing import Charge, Priority, Rate, RedisBuckets
from bot.app.server import make_app

CREATE = "POST /repos/{o}/{r}/check-runs"
UPDATE = "PATCH /repos/{o}/{r}/check-runs/{id}"
REVIEW = "POST /repos/{o}/{r}/pulls/{n}/reviews"
PATH = "app/services/jobs.py"


def _pr(fake: FakeGitHub, number: int) -> PullRequest:
    repo = fake.create_repo(f"acme/svc{number}", files={"README.md": "hello\n"})
    repo.push("feature", {PATH: helper_source(2)})
    return repo.open_pull(head="feature", user="alice")


async def test_a_burst_shows_every_check_run_before_it_finishes_any(
    aiohttp_client: Any, make_fake_github: Callable[..., Any]
) -> None:
    """12 pull requests at once, 2 audit places, writes 0.1 s apart: every check run is
    created before any is updated or reviewed (audits waiting for their turn to write do not
    hold the places), and the audits that finished while their creation waited are created
    completed, in one request."""
    fake = await make_fake_github()
    pacing = RetryPolicy(mutation_interval=0.1, mutation_burst=1)
    app = make_app(settings_for(fake, max_audits=2), retry=pacing, sleep=asyncio.sleep)
    harness = Harness(client=await aiohttp_client(app), app=app, fake=fake)
    prs = [_pr(fake, n) for n in range(12)]
    for pr in prs:
        event = harness.pr_event("opened", pr)
        assert (await harness.deliver("pull_request", event, settle=False)).status == 202
    await harness.settle()

    writes = [r.route for r in fake.log if r.route in (CREATE, UPDATE, REVIEW)]
    creations = [i for i, route in enumerate(writes) if route == CREATE]
    assert len(creations) == 12
    assert max(creations) < min(i for i, route in enumerate(writes) if route != CREATE)
    runs = [run for pr in prs for run in fake.runs_for(pr.head_sha)]
    assert len(runs) == 12 and all(run.conclusion == "failure" for run in runs)
    assert all(len(run.annotations) == 2 for run in runs)
    created_completed = [run for run in runs if run.history[0].get("status") == "completed"]
    assert len(created_completed) >= 6  # one request instead of two
    assert writes.count(UPDATE) == 12 - len(created_completed)
    assert all(len(fake.reviews_of(pr)) == 1 for pr in prs)
    # The reviews link to the check run even when it was created after the audit.
    for pr in prs:
        [review] = fake.reviews_of(pr)
        [run] = fake.runs_for(pr.head_sha)
        assert f"{pr.repo.full_name}/runs/{run.id})" in review.body


WRITES = Charge("writes", Rate("writes", 1.0, 2))


async def test_two_processes_keep_one_pace_through_redis(redis_server: RedisServer) -> None:
    first, second = Redis.from_url(redis_server.url), Redis.from_url(redis_server.url)
    try:
        a, b = RedisBuckets(first), RedisBuckets(second)
        delays = [await bucket.reserve("installation:7", [WRITES]) for bucket in (a, b) * 3]
        # a burst of 2, then one a second, whichever process asks
        assert delays[:2] == [pytest.approx(0, abs=0.05)] * 2
        assert delays[2:] == [pytest.approx(n, abs=0.1) for n in (1, 2, 3, 4)]
        assert await a.reserve("installation:8", [WRITES]) == pytest.approx(0, abs=0.05)
    finally:
        await first.aclose()
        await second.aclose()


async def test_creations_of_any_process_go_before_other_writes(redis_server: RedisServer) -> None:
    first, second = Redis.from_url(redis_server.url), Redis.from_url(redis_server.url)
    try:
        a, b = RedisBuckets(first), RedisBuckets(second)
        assert await a.reserve("installation:7", [WRITES], Priority.CREATE) is not None
        # b's review waits while a has a check run to create ...
        assert await b.reserve("installation:7", [WRITES], Priority.CONTENT) is None
        assert await b.reserve("installation:8", [WRITES], Priority.CONTENT) is not None
        assert await b.reserve("installation:7", [WRITES], Priority.CREATE) is not None
        await a.idle("installation:7")  # ... and goes once a has none left
        await b.idle("installation:7")
        assert await b.reserve("installation:7", [WRITES], Priority.CONTENT) is not None
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_retry_after_told_to_one_process_holds_the_others(
    redis_server: RedisServer,
) -> None:
    first, second = Redis.from_url(redis_server.url), Redis.from_url(redis_server.url)
    try:
        a, b = RedisBuckets(first), RedisBuckets(second)
        await a.pause("installation:7", 30)
        read = Charge("points:/repos/{owner}/{repo}/pulls/{id}", Rate("points", 60 / 900, 900))
        assert await b.reserve("installation:7", [read]) == pytest.approx(30, abs=0.2)
        assert await b.reserve("installation:9", [read]) == pytest.approx(0, abs=0.05)
    finally:
        await first.aclose()
        await second.aclose()


async def test_pacing_goes_on_in_process_when_redis_is_down(redis_server: RedisServer) -> None:
    client = Redis.from_url(redis_server.url)
    buckets = RedisBuckets(client)
    try:
        redis_server.stop()
        delays = [await buckets.reserve("installation:7", [WRITES]) for _ in range(3)]
        assert delays == [pytest.approx(d, abs=0.05) for d in (0, 0, 1)]  # paced, no error
    finally:
        redis_server.start()
        await client.aclose()
