"""Shutdown (SIGTERM on a platform restart): drain with 503, a grace period, interrupted runs."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from app_helpers import Harness, helper_source, start_bot_process
from fakegithub import FakeGitHub, payloads

from bot.app.server import BACKGROUND, shutdown

PATH = "app/jobs.py"
FILES = "GET /repos/{o}/{r}/pulls/{n}/files"


def open_pr(fake: FakeGitHub, name: str = "acme/payments", base: dict | None = None) -> Any:
    repo = fake.create_repo(name, files=base or {"README.md": "hi\n"})
    repo.push("feature", {PATH: helper_source(1)})
    return repo.open_pull(head="feature", user="alice")


async def until(predicate: Callable[[], Any], timeout: float = 10.0) -> None:
    """Wait for a condition that the fake's state will reach (polls; never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def in_progress(fake: FakeGitHub, sha: str) -> bool:
    return any(run.status == "in_progress" for run in fake.runs_for(sha))


def assert_interrupted(run: Any, conclusion: str = "failure") -> None:
    assert run.status == "completed" and run.conclusion == conclusion, run.output["title"]
    assert run.output["title"] == "Audit interrupted"
    summary = run.output["summary"]
    assert "interrupted" in summary and "re-run with `/txaudit`" in summary
    assert run.actions and run.actions[0]["identifier"] == "reaudit"


async def test_draining_answers_503_and_interrupts_what_outlives_the_grace(
    make_app_client: Any, fake_github: FakeGitHub
) -> None:
    fake = fake_github
    harness: Harness = await make_app_client(fake, shutdown_grace=0.3)
    pr = open_pr(fake)
    fake.faults.add(route=FILES, delay=2.0)  # a slow GitHub: outlives the grace period
    await harness.deliver("pull_request", harness.pr_event("opened", pr), settle=False)
    await until(lambda: in_progress(fake, pr.head_sha))

    draining = asyncio.create_task(shutdown(harness.app))
    await asyncio.sleep(0)  # let the drain start
    late = await harness.deliver("pull_request", harness.pr_event("reopened", pr), settle=False)
    assert late.status == 503
    assert (await harness.client.get("/healthz")).status == 503
    started = time.monotonic()
    await draining
    assert time.monotonic() - started < 1.5  # the grace period, plus one PATCH
    [run] = fake.runs_for(pr.head_sha)
    assert_interrupted(run)
    assert fake.reviews_of(pr) == []


async def test_audits_that_finish_within_the_grace_are_not_interrupted(
    make_app_client: Any, fake_github: FakeGitHub
) -> None:
    fake = fake_github
    harness: Harness = await make_app_client(fake, shutdown_grace=10)
    pr = open_pr(fake)
    fake.faults.add(route=FILES, delay=0.3)
    await harness.deliver("pull_request", harness.pr_event("opened", pr), settle=False)
    await until(lambda: in_progress(fake, pr.head_sha))
    started = time.monotonic()
    await shutdown(harness.app)
    assert time.monotonic() - started < 5  # returns when the audit is done, not after 10 s
    [run] = fake.runs_for(pr.head_sha)
    assert run.conclusion == "failure" and run.output["title"] == "1 error in 1 file"
    assert len(fake.reviews_of(pr)) == 1


async def test_queued_audits_get_an_interrupted_check_run_too(
    make_app_client: Any, fake_github: FakeGitHub
) -> None:
    """With one audit slot, the second pull request is still queued (no check run yet)."""
    fake = fake_github
    harness: Harness = await make_app_client(fake, shutdown_grace=0.2, max_audits=1)
    first = open_pr(fake, "acme/one")
    second = open_pr(fake, "acme/two")
    fake.faults.add(route=FILES, delay=2.0)
    await harness.deliver("pull_request", harness.pr_event("opened", first), settle=False)
    await until(lambda: in_progress(fake, first.head_sha))
    await harness.deliver("pull_request", harness.pr_event("opened", second), settle=False)
    await until(lambda: not len(harness.app[BACKGROUND]))
    assert fake.runs_for(second.head_sha) == []
    await shutdown(harness.app)
    [run_one] = fake.runs_for(first.head_sha)
    [run_two] = fake.runs_for(second.head_sha)
    assert_interrupted(run_one)
    assert_interrupted(run_two)


async def test_interrupted_audit_honours_on_error_neutral(
    make_app_client: Any, fake_github: FakeGitHub
) -> None:
    fake = fake_github
    harness: Harness = await make_app_client(fake, shutdown_grace=0.2)
    pr = open_pr(fake, base={".github/txaudit.yml": "on_error: neutral\n"})
    fake.faults.add(route=FILES, delay=2.0)
    await harness.deliver("pull_request", harness.pr_event("opened", pr), settle=False)
    # The config is read (on_error known) before the files are listed.
    await until(lambda: fake.log.count("GET /repos/{o}/{r}/contents/{path}") > 0)
    await shutdown(harness.app)
    [run] = fake.runs_for(pr.head_sha)
    assert_interrupted(run, conclusion="neutral")


# --- a real `python -m bot` process --------------------------------------------------------


@pytest.mark.parametrize("intake", ["0", "2"])  # the audit process answers / intake processes
async def test_sigterm_to_python_m_bot_drains_and_completes_the_run(
    fake_github, intake: str
) -> None:
    fake = fake_github
    pr = open_pr(fake)
    fake.faults.add(route=FILES, delay=30.0)  # this audit cannot finish in the grace period
    proc, base = await start_bot_process(
        fake, TXAUDIT_WORKERS="0", TXAUDIT_SHUTDOWN_GRACE="2", TXAUDIT_INTAKE_PROCESSES=intake
    )
    try:
        async with aiohttp.ClientSession() as session:
            payload = payloads.pull_request_event(fake, pr, "opened")
            response = await payloads.deliver(
                session, "pull_request", payload, fake.webhook_secret, url=base + "/webhook"
            )
            assert response.status == 202
            await until(lambda: in_progress(fake, pr.head_sha), timeout=20)

            proc.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            # Still listening while draining: /healthz and deliveries answer 503.
            health = 200
            while health == 200:
                assert time.monotonic() - sent < 1.5, "not draining"
                async with session.get(base + "/healthz") as response:
                    health = response.status
            assert health == 503
            late = await payloads.deliver(
                session, "pull_request", payload, fake.webhook_secret, url=base + "/webhook"
            )
            assert late.status == 503
        returncode = await asyncio.wait_for(proc.wait(), timeout=15)
        elapsed = time.monotonic() - sent
    finally:
        if proc.returncode is None:
            proc.kill()
        stderr = (await proc.communicate())[1].decode()
    assert returncode == 0, stderr
    assert 1.5 <= elapsed < 12, elapsed  # waited for the 2 s grace, not for the 30 s call
    [run] = fake.runs_for(pr.head_sha)
    assert_interrupted(run)
    assert "draining" in stderr and "drained" in stderr
