"""The real txaudit server against the shared fake GitHub (`app_client`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from app_helpers import FAST_RETRY, Harness, settings_for
from fakegithub import FakeGitHub

from bot.app.server import make_app


@pytest.fixture
async def make_app_client(aiohttp_client: Any) -> Any:
    """Factory: `harness = await make_app_client(fake, **settings_overrides)`."""

    async def make(fake: FakeGitHub, **overrides: Any) -> Harness:
        sleeps: list[float] = []

        async def sleep(seconds: float) -> None:
            sleeps.append(seconds)

        app = make_app(settings_for(fake, **overrides), retry=FAST_RETRY, sleep=sleep)
        client = await aiohttp_client(app)
        return Harness(client=client, app=app, fake=fake, sleeps=sleeps)

    return make


@pytest.fixture
async def app_client(make_app_client: Any, fake_github: FakeGitHub) -> AsyncIterator[Harness]:
    """The txaudit server configured against the `fake_github` fixture."""
    harness = await make_app_client(fake_github)
    yield harness
    await harness.settle()
