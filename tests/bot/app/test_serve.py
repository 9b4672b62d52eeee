"""`python -m bot` as a real process (the Procfile's command) against the fake GitHub."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from app_helpers import helper_source, start_bot_process
from fakegithub import payloads


@pytest.mark.parametrize("intake", ["0", "2"])  # the audit process answers / intake processes
async def test_python_m_bot_serves_and_audits(fake_github, intake: str) -> None:
    fake = fake_github
    repo = fake.create_repo("acme/payments", files={"README.md": "hi\n"})
    repo.push("feature", {"app/jobs.py": helper_source(1)})
    pr = repo.open_pull(head="feature")
    proc, base = await start_bot_process(fake, TXAUDIT_WORKERS="1", TXAUDIT_INTAKE_PROCESSES=intake)
    try:
        async with aiohttp.ClientSession() as session:
            payload = payloads.pull_request_event(fake, pr, "opened")
            response = await payloads.deliver(
                session, "pull_request", payload, fake.webhook_secret, url=base + "/webhook"
            )
            assert response.status == 202
        for _ in range(600):
            runs = fake.runs_for(pr.head_sha)
            if runs and runs[0].status == "completed":
                break
            await asyncio.sleep(0.05)
        [run] = fake.runs_for(pr.head_sha)
        assert run.status == "completed"
    finally:
        proc.terminate()
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
    logs = stderr.decode()
    assert "txaudit started" in logs and "delivery=" in logs
    assert "rate limit after audit" in logs
    assert fake.webhook_secret not in logs and "PRIVATE KEY" not in logs
    for token in fake.tokens:
        assert token not in logs
