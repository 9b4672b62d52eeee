"""Fixtures for the robustness tests: the real server against the shared fake GitHub."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from app_helpers import FAST_RETRY, Harness, settings_for
from fakegithub import FakeGitHub

from bot.app.server import make_app


@pytest.fixture
async def make_app_client(aiohttp_client: Any) -> Any:
    """Factory: `harness = await make_app_client(fake, retry=..., **settings_overrides)`.

    Sleeps of the retry logic are recorded in `harness.sleeps` instead of waited for.
    """

    async def make(fake: FakeGitHub, *, retry: Any = FAST_RETRY, **overrides: Any) -> Harness:
        sleeps: list[float] = []

        async def sleep(seconds: float) -> None:
            sleeps.append(seconds)

        app_options = {k: overrides.pop(k) for k in ("http_timeout",) if k in overrides}
        app = make_app(settings_for(fake, **overrides), retry=retry, sleep=sleep, **app_options)
        client = await aiohttp_client(app)
        return Harness(client=client, app=app, fake=fake, sleeps=sleeps)

    return make


@pytest.fixture
async def app_client(make_app_client: Any, fake_github: FakeGitHub) -> AsyncIterator[Harness]:
    """The txaudit server configured against the `fake_github` fixture."""
    harness = await make_app_client(fake_github)
    yield harness
    await harness.settle()
