"""`python -m bot` as a real process (the Procfile's command) against the fake GitHub."""

from __future__ import annotations

import asyncio
import os
import socket
import sys

import aiohttp
from app_helpers import helper_source
from fakegithub import payloads


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_python_m_bot_serves_and_audits(fake_github) -> None:
    fake = fake_github
    repo = fake.create_repo("acme/payments", files={"README.md": "hi\n"})
    repo.push("feature", {"app/jobs.py": helper_source(1)})
    pr = repo.open_pull(head="feature")
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.getcwd(),
        "GITHUB_APP_ID": str(fake.app_id),
        "GITHUB_PRIVATE_KEY": fake.private_key_pem,
        "GITHUB_WEBHOOK_SECRET": fake.webhook_secret,
        "GITHUB_API_URL": fake.url,
        "PORT": str(port),
        "TXAUDIT_WORKERS": "1",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", env=env, stderr=asyncio.subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                try:
                    async with session.get(base + "/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("server did not start")
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
