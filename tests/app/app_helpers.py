"""Helpers for the app tests: the harness around the server, payloads, sample code."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from fakegithub import FakeGitHub, PullRequest, payloads

from bot.github import RetryPolicy
from bot.server import AUDITOR, ENGINE, GITHUB, wait_idle
from bot.settings import AppSettings

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


# --- the engine ------------------------------------------------------------------------


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


def engine_ready() -> bool:
    from rules.config import Config
    from rules.engine import audit_source

    try:
        audit_source(b"x = 1\n", "a.py", Config())
    except NotImplementedError:
        return False
    return True


def stub_engine(source: bytes, path: str, config: Any, project: object | None) -> Any:
    """Stands in for rules.engine until it lands: TX002 on each `session.commit()` line."""
    from rules.model import FileResult, Finding, Severity

    findings = []
    scope = "<module>"
    severity = config.severity_for("TX002", Severity.ERROR, path)
    if severity is Severity.OFF:
        return FileResult(path=path)
    for number, line in enumerate(source.decode().splitlines(), start=1):
        if line.startswith("async def ") or line.startswith("def "):
            scope = line.split("def ", 1)[1].split("(", 1)[0]
        column = line.find("session.commit()")
        if column >= 0:
            findings.append(
                Finding(
                    rule="TX002",
                    name="borrowed-session-commit",
                    severity=severity,
                    path=path,
                    line=number,
                    column=column + 1,
                    end_line=number,
                    end_column=len(line) + 1,
                    message="Helper commits the caller's session.",
                    scope=scope,
                    snippet=line.strip(),
                )
            )
    return FileResult(path=path, findings=tuple(findings))
