"""Fixtures for the call-count regression tests: the real server against the fake GitHub."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from app_helpers import FAST_RETRY, Harness, settings_for
from fakegithub import FakeGitHub

from bot.app.server import make_app


@pytest.fixture
async def app_client(aiohttp_client: Any, fake_github: FakeGitHub) -> AsyncIterator[Harness]:
    """The txaudit server (engine in a thread, no waiting between retries) against the fake."""
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    app = make_app(settings_for(fake_github), retry=FAST_RETRY, sleep=sleep)
    harness = Harness(client=await aiohttp_client(app), app=app, fake=fake_github, sleeps=sleeps)
    yield harness
    await harness.settle()
