"""Helpers for the app tests: the harness around the server, payloads, sample code."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient
from fakegithub import FakeGitHub, PullRequest, payloads

from bot.app.github import RetryPolicy
from bot.app.server import AUDITOR, ENGINE, GITHUB, wait_idle
from bot.app.settings import AppSettings

#: Retries stay as in production, minus the waiting.
FAST_RETRY = RetryPolicy(mutation_interval=0.0)


@dataclass
class Harness:
    """The app under test (`client`), the fake GitHub (`fake`) and webhook helpers."""

    client: TestClient
    app: web.Application
    fake: FakeGitHub
    sleeps: list[float] = field(default_factory=list)

    # -- delivering -------------------------------------------------------------------

    async def post_raw(
        self,
        body: bytes,
        *,
        event: str | None = "ping",
        delivery: str | None = None,
        signature: str | None = "sign",
        content_type: str = "application/json",
    ) -> Any:
        headers = {"content-type": content_type}
        if event is not None:
            headers["x-github-event"] = event
        if delivery is not False:
            headers["x-github-delivery"] = delivery or str(uuid.uuid4())
        if signature == "sign":
            headers["x-hub-signature-256"] = payloads.sign(body, self.fake.webhook_secret)
        elif signature is not None:
            headers["x-hub-signature-256"] = signature
        return await self.client.post("/webhook", data=body, headers=headers)

    async def deliver(
        self,
        event: str,
        payload: dict[str, Any],
        *,
        delivery: str | None = None,
        settle: bool = True,
    ) -> Any:
        """POST a signed webhook as GitHub does; by default wait until the app is idle."""
        response = await payloads.deliver(
            self.client, event, payload, self.fake.webhook_secret, delivery_id=delivery
        )
        if settle:
            await self.settle()
        return response

    async def settle(self) -> None:
        await wait_idle(self.app)

    # -- payloads (tests/fakegithub/payloads.py) ----------------------------------------

    def pr_event(self, action: str, pr: PullRequest, **kwargs: Any) -> dict[str, Any]:
        return payloads.pull_request_event(self.fake, pr, action, **kwargs)

    def comment_event(
        self, issue: Any, body: str, *, user: str = "alice", action: str = "created"
    ) -> dict[str, Any]:
        """A human (or bot) `user` comments `body` on `issue`."""
        comment = issue.repo.add_comment(issue.number, body, user=user)
        return payloads.issue_comment_event(self.fake, comment, action)

    def check_run_event(self, action: str, run: Any, **kwargs: Any) -> dict[str, Any]:
        return payloads.check_run_event(self.fake, run, action, **kwargs)

    def check_suite_event(self, action: str, run: Any) -> dict[str, Any]:
        repo = self.fake.repo(run.repo)
        return payloads.check_suite_event(self.fake, repo, run.head_sha, action)

    # -- reading the app ----------------------------------------------------------------

    @property
    def engine_runs(self) -> int:
        return self.app[ENGINE].runs

    @property
    def auditor(self) -> Any:
        return self.app[AUDITOR]

    @property
    def github(self) -> Any:
        return self.app[GITHUB]


def settings_for(fake: FakeGitHub, **overrides: Any) -> AppSettings:
    values: dict[str, Any] = {
        "app_id": str(fake.app_id),
        "private_key": fake.private_key_pem,
        "webhook_secret": fake.webhook_secret,
        "api_url": fake.url,
        "workers": 0,
        "public_url": "https://txaudit.example.com",
    }
    values.update(overrides)
    return AppSettings(**values)


# --- sample code ---------------------------------------------------------------------


def helper_source(count: int = 1, *, start: int = 0) -> str:
    """`count` helpers that commit a borrowed session (TX002, one finding each)."""
    chunks = ["from sqlalchemy.ext.asyncio import AsyncSession\n"]
    for i in range(start, start + count):
        chunks.append(
            f"\n\nasync def mark_done_{i}(session: AsyncSession, job) -> None:\n"
            '    job.status = "done"\n'
            "    await session.commit()\n"
        )
    return "".join(chunks)


# --- `python -m bot` as a real process -------------------------------------------------------


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def start_bot_process(
    fake: FakeGitHub, **extra_env: str
) -> tuple[asyncio.subprocess.Process, str]:
    """Start `python -m bot` (the Procfile's command) against `fake` and wait until
    `/healthz` answers 200. Returns the process (stderr piped) and its base URL."""
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.getcwd(),
        "GITHUB_APP_ID": str(fake.app_id),
        "GITHUB_PRIVATE_KEY": fake.private_key_pem,
        "GITHUB_WEBHOOK_SECRET": fake.webhook_secret,
        "GITHUB_API_URL": fake.url,
        "PORT": str(port),
        "TXAUDIT_REDELIVER_INTERVAL": "0",  # no look at the delivery log unless a test asks
        **extra_env,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", env=env, stderr=asyncio.subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(base + "/healthz") as response:
                    if response.status == 200:
                        return proc, base
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline or proc.returncode is not None:
                proc.kill()
                raise AssertionError("python -m bot did not start")
            await asyncio.sleep(0.05)


# --- TX007: a scheduler whose session an adapter in another module commits ------------------

SCHEDULER = """\
from app.adapter import Adapter
from app.db import get_background_session


async def run_batch():
    async with get_background_session() as session:
        await Adapter().submit(session)
"""

ADAPTER = """\
class Adapter:
    async def submit(self, session):
        session.add(object())
        await session.commit()
"""
