"""Shared fixtures: the fake GitHub server (see tests/fakegithub) served on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from fakegithub import FakeGitHub


@pytest.fixture
async def make_fake_github(aiohttp_server: Any) -> Callable[..., Awaitable[FakeGitHub]]:
    """Factory: ``fake = await make_fake_github(base_path="/api/v3", latency=0.01)``."""

    async def make(**options: Any) -> FakeGitHub:
        fake = FakeGitHub(**options)
        server = await aiohttp_server(fake.make_app(), host="127.0.0.1")
        fake.bind(str(server.make_url("/")))
        return fake

    return make


@pytest.fixture
async def fake_github(
    make_fake_github: Callable[..., Awaitable[FakeGitHub]],
) -> AsyncIterator[FakeGitHub]:
    """A FakeGitHub at the API root, served on 127.0.0.1 (``.url``, ``.app_id``, ...)."""
    yield await make_fake_github()
