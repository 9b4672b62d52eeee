"""`python -m bot` with intake processes (the default of `txaudit serve`) against the fake
GitHub: the intake processes answer, the audit process audits."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from app_helpers import helper_source, start_bot_process
from fakegithub import FakeGitHub, payloads
from gidgethub import sansio

from bot import __version__
from bot.app.handlers import routed_actions, router
from bot.app.intake_pool import IntakeConfig, IntakePool, listening_socket, read_frame, router_for

INTAKE = 2


def intake_pids(parent: int) -> list[int]:
    """The `python -m bot.app.intake_pool` children of `parent`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read().split(b"\0")
        except OSError:
            continue
        if ppid == parent and b"bot.app.intake_pool" in cmdline:
            found.append(int(entry))
    return sorted(found)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def until(predicate: Callable[[], Any], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.fixture
async def bot(fake_github: FakeGitHub) -> AsyncIterator[tuple[Any, str]]:
    """`python -m bot` with intake processes: (process, base URL)."""
    proc, base = await start_bot_process(
        fake_github, TXAUDIT_WORKERS="0", TXAUDIT_INTAKE_PROCESSES=str(INTAKE)
    )
    yield proc, base
    await stop(proc)


async def stop(proc: Any) -> str:
    """SIGTERM (once), wait for the exit; its standard error."""
    if proc.returncode is None:
        proc.terminate()
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
    return stderr.decode() if stderr else ""


def open_pr(fake: FakeGitHub, name: str = "acme/payments") -> Any:
    repo = fake.create_repo(name, files={"README.md": "hi\n"})
    repo.push("feature", {"app/jobs.py": helper_source(1)})
    return repo.open_pull(head="feature")


async def post(
    session: aiohttp.ClientSession, base: str, body: bytes, secret: str, **headers: str
) -> int:
    sent = {
        "content-type": "application/json",
        "x-github-event": "ping",
        "x-github-delivery": "d-raw",
        "x-hub-signature-256": payloads.sign(body, secret),
        **headers,
    }
    async with session.post(base + "/webhook", data=body, headers=sent) as response:
        return response.status


async def test_intake_processes_answer_and_the_audit_process_audits(bot, fake_github) -> None:
    proc, base = bot
    fake = fake_github
    assert len(intake_pids(proc.pid)) == INTAKE
    pr = open_pr(fake)
    secret = fake.webhook_secret
    async with aiohttp.ClientSession() as session:
        assert await post(session, base, b'{"zen": "hi"}', secret) == 200
        assert await post(session, base, b'{"zen": "hi"}', "wrong") == 401
        assert await post(session, base, b"{not json", secret) == 400
        assert await post(session, base, b"[1]", secret) == 400
        labeled = json.dumps({"action": "labeled", "installation": {"id": 1}}).encode()
        assert (
            await post(session, base, labeled, secret, **{"x-github-event": "pull_request"}) == 200
        )
        opened = json.dumps({"action": "opened", "pull_request": {"number": 1}}).encode()
        assert (
            await post(session, base, opened, secret, **{"x-github-event": "pull_request"}) == 400
        )
        async with session.get(base + "/healthz") as response:
            assert response.status == 200
            assert await response.json() == {"status": "ok", "version": __version__}
        async with session.get(base + "/rules/TX001") as response:
            assert response.status == 200 and (await response.text()).startswith("# TX001")
        assert fake.log.count() == 0  # nothing above reached GitHub

        response = await payloads.deliver(
            session,
            "pull_request",
            payloads.pull_request_event(fake, pr, "opened"),
            secret,
            url=base + "/webhook",
        )
        assert response.status == 202
    await until(lambda: [r.status for r in fake.runs_for(pr.head_sha)] == ["completed"])


async def test_redeliveries_through_intake_processes_are_audited_once(bot, fake_github) -> None:
    proc, base = bot
    fake = fake_github
    pr = open_pr(fake)
    payload = payloads.pull_request_event(fake, pr, "opened")
    async with aiohttp.ClientSession() as session:
        for _ in range(3):  # each may reach another intake process
            response = await payloads.deliver(
                session,
                "pull_request",
                payload,
                fake.webhook_secret,
                "d-same",
                url=base + "/webhook",
            )
            assert response.status == 202
    await until(lambda: [r.status for r in fake.runs_for(pr.head_sha)] == ["completed"])
    lines = (await stop(proc)).splitlines()
    assert len([line for line in lines if "redelivery ignored" in line]) == 2, lines
    assert len(fake.runs_for(pr.head_sha)) == 1


async def test_intake_processes_get_no_key_or_secret_in_environment_or_arguments(
    bot, fake_github
) -> None:
    proc, _ = bot
    fake = fake_github
    pids = intake_pids(proc.pid)
    assert len(pids) == INTAKE
    key_line = fake.private_key_pem.splitlines()[1].encode()
    for pid in pids:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            environ = handle.read()
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            cmdline = handle.read()
        for secret in (key_line, fake.webhook_secret.encode(), b"GITHUB_"):
            assert secret not in environ and secret not in cmdline


def test_the_intake_config_never_shows_the_secret() -> None:
    config = IntakeConfig("s3cret-value", routed_actions())
    assert "s3cret-value" not in repr(config) and "s3cret-value" not in str(config)


async def test_a_killed_intake_process_is_replaced(bot, fake_github) -> None:
    proc, base = bot
    fake = fake_github
    victim, survivor = intake_pids(proc.pid)
    os.kill(victim, signal.SIGKILL)
    try:
        await until(
            lambda: len(intake_pids(proc.pid)) == INTAKE and victim not in intake_pids(proc.pid)
        )
    except AssertionError:
        raise AssertionError(
            f"not replaced: {intake_pids(proc.pid)} {victim}\n" + await stop(proc)
        ) from None
    assert survivor in intake_pids(proc.pid)
    prs = [open_pr(fake, f"acme/svc{i}") for i in range(2)]
    async with aiohttp.ClientSession() as session:
        statuses = await asyncio.gather(
            *(
                payloads.deliver(
                    session,
                    "pull_request",
                    payloads.pull_request_event(fake, pr, "opened"),
                    fake.webhook_secret,
                    url=base + "/webhook",
                )
                for pr in prs
            )
        )
        assert [response.status for response in statuses] == [202] * len(prs)
    for pr in prs:
        await until(lambda pr=pr: [r.status for r in fake.runs_for(pr.head_sha)] == ["completed"])
    logs = await stop(proc)
    # the victim may have been killed while it started (healthz answers once one is up)
    assert "intake process exited; starting another" in logs or (
        "an intake process did not start" in logs
    )


async def test_intake_processes_exit_when_the_audit_process_dies(bot) -> None:
    proc, base = bot
    pids = intake_pids(proc.pid)
    assert len(pids) == INTAKE
    proc.kill()
    await proc.wait()
    await until(lambda: not any(alive(pid) for pid in pids), timeout=15)
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as session:
            async with session.get(base + "/healthz"):
                pass


# --- the routes an intake process knows ---------------------------------------------------------


EVENTS = [
    ("pull_request", action)
    for action in (
        "opened",
        "reopened",
        "synchronize",
        "ready_for_review",
        "edited",
        "closed",
        "labeled",
        "assigned",
        "converted_to_draft",
    )
] + [
    ("check_run", "rerequested"),
    ("check_run", "requested_action"),
    ("check_run", "created"),
    ("check_suite", "rerequested"),
    ("check_suite", "completed"),
    ("issue_comment", "created"),
    ("issue_comment", "edited"),
    ("issue_comment", "deleted"),
    ("push", None),
    ("star", "created"),
    ("installation", "created"),
]


@pytest.mark.parametrize(("event", "action"), EVENTS)
async def test_intake_routes_take_what_the_handlers_take(event: str, action: str | None) -> None:
    channel = asyncio.StreamReader()
    channel.feed_data(IntakeConfig(secret="s", routes=routed_actions()).encode())
    channel.feed_eof()
    kind, _, _, body = await read_frame(channel)
    intake_router = router_for(IntakeConfig.decode(body).routes)  # as the intake process has it
    delivery = sansio.Event(
        {} if action is None else {"action": action}, event=event, delivery_id="d"
    )
    assert bool(intake_router.fetch(delivery)) == bool(router.fetch(delivery))


async def test_an_intake_process_that_does_not_start_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setattr(sys, "executable", "/bin/false")  # exits at once, never says "ready"
    listener = listening_socket(0, host="127.0.0.1")
    pool = IntakePool(2, listener, IntakeConfig("s", routed_actions()), take=lambda event: None)
    try:
        with pytest.raises(RuntimeError, match="an intake process did not start"):
            await pool.start()
        assert pool.pids == []
    finally:
        await pool.close()
        listener.close()


@pytest.mark.parametrize("intake", ["0", "2"])
async def test_a_burst_waits_in_the_listen_backlog_instead_of_being_dropped(
    fake_github, intake: str
) -> None:
    """While every accepting process is busy (here: stopped), 300 connects complete in the
    kernel's queue. With aiohttp's default backlog of 128 the rest were dropped, and TCP
    retried them only after 1 s."""
    proc, base = await start_bot_process(
        fake_github, TXAUDIT_WORKERS="0", TXAUDIT_INTAKE_PROCESSES=intake
    )
    accepting = intake_pids(proc.pid) if intake != "0" else [proc.pid]
    port = int(base.rsplit(":", 1)[1])
    sockets: list[socket.socket] = []
    for pid in accepting:
        os.kill(pid, signal.SIGSTOP)
    try:
        for _ in range(300):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
            sockets.append(sock)
        await asyncio.sleep(0.5)
        connected = 0
        for sock in sockets:
            try:
                sock.getpeername()  # ENOTCONN while the handshake has not completed
                connected += 1
            except OSError:
                pass
        assert connected == len(sockets)
    finally:
        for pid in accepting:
            os.kill(pid, signal.SIGCONT)
        for sock in sockets:
            sock.close()
        await stop(proc)


async def test_an_intake_process_that_fails_to_start_is_retried(monkeypatch) -> None:
    spawn = IntakePool._spawn
    calls = 0

    async def first_fails(self: IntakePool) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("an intake process did not start (test)")
        return await spawn(self)

    monkeypatch.setattr(IntakePool, "_spawn", first_fails)
    listener = listening_socket(0, host="127.0.0.1")
    pool = IntakePool(2, listener, IntakeConfig("s", routed_actions()), take=lambda event: None)
    try:
        await pool.start()  # one started: the server runs, and the other is retried
        assert len(pool.pids) == 1
        await until(lambda: len(pool.pids) == 2)
        assert calls == 3
    finally:
        await pool.close()
        listener.close()
