"""Failed deliveries are asked for again (`bot.app.redeliver`), against the fake's delivery
log (`GET /app/hook/deliveries`, `POST .../attempts`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from app_helpers import Harness, helper_source
from fakegithub import FakeGitHub, payloads
from redis_server import RedisServer

from bot.app import redeliver
from bot.app.redeliver import MemoryLookState, Redeliverer, RedisLookState

PATH = "app/jobs.py"
NOBODY = "http://127.0.0.1:9/webhook"  # the discard port: the app is "down"


def _opened_event(fake: FakeGitHub, name: str = "acme/payments") -> tuple[Any, dict[str, Any]]:
    repo = fake.create_repo(name, files={"README.md": "hello\n"})
    repo.push("feature", {PATH: helper_source(1)})
    pr = repo.open_pull(head="feature", user="alice")
    return pr, payloads.pull_request_event(fake, pr, "opened")


async def _until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.02)


async def test_a_delivery_that_failed_while_the_app_was_down_is_audited(
    app_client: Harness,
) -> None:
    fake = app_client.fake
    fake.webhook_url = str(app_client.client.make_url("/webhook"))
    pr, event = _opened_event(fake)
    async with aiohttp.ClientSession() as session:
        assert await payloads.send(fake, session, "pull_request", event, url=NOBODY) == 0
        # A guid that failed once and then got through is not asked for again.
        _, other = _opened_event(fake, "acme/other")
        await payloads.send(fake, session, "ping", other, url=NOBODY, delivery_id="g-2")
        await payloads.send(fake, session, "ping", other, url=fake.webhook_url, delivery_id="g-2")
    assert fake.runs_for(pr.head_sha) == []
    looker = Redeliverer(app_client.github, MemoryLookState())
    asked = await looker.look_once()
    [failed] = [d for d in fake.hook_deliveries if d.event == "pull_request"]
    assert asked == [failed.id]
    await _until(lambda: any(d.redelivery for d in fake.hook_deliveries))
    [again] = [d for d in fake.hook_deliveries if d.redelivery]
    assert again.guid == failed.guid and again.status_code == 202
    await app_client.settle()
    [run] = fake.runs_for(pr.head_sha)
    assert run.status == "completed" and run.conclusion == "failure"
    # The next look starts after what this one saw: nothing more to ask for.
    assert await looker.look_once() == []


async def test_looks_follow_the_cursor_and_are_bounded(
    app_client: Harness, monkeypatch: Any
) -> None:
    fake = app_client.fake
    fake.webhook_url = str(app_client.client.make_url("/webhook"))
    monkeypatch.setattr(redeliver, "MAX_REDELIVERIES", 120)
    async with aiohttp.ClientSession() as session:
        for _ in range(150):  # two pages of 100 in the log, every one failed
            await payloads.send(fake, session, "ping", {"zen": "hi"}, url=NOBODY)
    asked = await Redeliverer(app_client.github, MemoryLookState()).look_once()
    assert len(asked) == 120  # the bound per look, across both pages
    pages = [r for r in fake.log if r.route == "GET /app/hook/deliveries"]
    assert len(pages) == 2 and "cursor" in pages[1].query
    await _until(lambda: len(fake.hook_deliveries) == 270)


async def test_two_replicas_one_look_then_the_marker(
    app_client: Harness, redis_server: RedisServer
) -> None:
    fake = app_client.fake
    fake.webhook_url = str(app_client.client.make_url("/webhook"))
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            await payloads.send(fake, session, "ping", {"zen": "hi"}, url=NOBODY)
    client = aioredis.from_url(redis_server.url)
    try:
        one = Redeliverer(app_client.github, RedisLookState(client))
        two = Redeliverer(app_client.github, RedisLookState(client))
        first, second = await asyncio.gather(one.look_once(), two.look_once())
        assert sorted([len(first), len(second)]) == [0, 3]  # the lock: one replica looked
        await _until(lambda: len(fake.hook_deliveries) == 6)
        # The other replica's next look continues from the shared marker.
        assert await two.look_once() == []
        # (that look saw the three redeliveries, which got through: the marker is past them)
        newest = max(d.id for d in fake.hook_deliveries)
        assert await RedisLookState(client).marker() == newest
    finally:
        await client.aclose()
