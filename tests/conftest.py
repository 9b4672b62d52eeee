"""Shared fixtures: the fake GitHub server (see tests/fakegithub) served on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from fakegithub import FakeGitHub
from redis_server import RedisServer


@pytest.fixture(autouse=True)
def _own_result_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each test gets an empty CLI result cache (never the user's ~/.cache/txaudit)."""
    monkeypatch.setenv("TXAUDIT_CACHE_DIR", str(tmp_path_factory.mktemp("txaudit-cache")))


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


@pytest.fixture(scope="session")
def redis_server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the whole run (tests share it; `redis_server` flushes it)."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_server(redis_server_process: RedisServer) -> Iterator[RedisServer]:
    """The shared redis-server, running and empty."""
    if redis_server_process.process is None or redis_server_process.process.poll() is not None:
        redis_server_process.start()  # a test stopped it
    redis_server_process.flush()
    yield redis_server_process
    if redis_server_process.process is None:
        redis_server_process.start()
