"""Webhook intake over HTTP: signatures, bad input, ping, redeliveries, routes."""

from __future__ import annotations

import asyncio
import json

import yaml
from fakegithub import FakeGitHub

from bot import __version__
from bot.app.handlers import registered_events
from bot.app.intake import MAX_BODY_BYTES


async def test_ping_is_answered(app_client) -> None:
    response = await app_client.post_raw(
        json.dumps({"zen": "Keep it simple", "hook_id": 1}).encode()
    )
    assert response.status == 200
    assert app_client.fake.log.count() == 0


async def test_missing_or_wrong_signature_is_401(app_client) -> None:
    body = json.dumps({"zen": "hi"}).encode()
    assert (await app_client.post_raw(body, signature=None)).status == 401
    assert (await app_client.post_raw(body, signature="sha256=" + "0" * 64)).status == 401
    assert (await app_client.post_raw(body, signature="md5=abc")).status == 401


async def test_bad_json_or_missing_headers_is_400(app_client) -> None:
    assert (await app_client.post_raw(b"{not json")).status == 400
    assert (await app_client.post_raw(b"[1, 2]")).status == 400
    assert (await app_client.post_raw(b"{}", event=None)).status == 400
    assert (await app_client.post_raw(b"{}", delivery=False)).status == 400  # type: ignore[arg-type]
    assert (await app_client.post_raw(b"{}", content_type="text/plain")).status == 400


async def test_body_above_25_mb_is_413(app_client) -> None:
    body = b"{" + b" " * MAX_BODY_BYTES + b"}"
    response = await app_client.post_raw(body)
    assert response.status == 413


async def test_unhandled_event_or_action_is_200(app_client) -> None:
    repo = app_client.fake.create_repo("acme/svc", files={"a.py": "x = 1\n"})
    payload = {
        "action": "labeled",
        "repository": {"full_name": repo.full_name},
        "installation": {"id": 1},
    }
    assert (await app_client.deliver("pull_request", payload)).status == 200
    assert (await app_client.deliver("star", {"action": "created"})).status == 200
    assert app_client.fake.log.count() == 0


async def test_handled_event_without_installation_is_400(app_client) -> None:
    payload = {"action": "opened", "pull_request": {"number": 1}}
    assert (await app_client.deliver("pull_request", payload)).status == 400


async def test_redelivery_does_nothing(app_client) -> None:
    fake: FakeGitHub = app_client.fake
    repo = fake.create_repo("acme/svc", files={"a.py": "x = 1\n"})
    repo.push("feature", {"b.py": "y = 2\n"}, parent=repo.branches["main"])
    pr = repo.open_pull(head="feature")
    payload = app_client.pr_event("opened", pr)
    first = await app_client.deliver("pull_request", payload, delivery="d-1")
    assert first.status == 202
    calls = len(fake.log)
    again = await app_client.deliver("pull_request", payload, delivery="d-1")
    assert again.status == 200
    assert len(fake.log) == calls
    assert len(fake.runs_for(pr.head_sha)) == 1


async def test_healthz(app_client) -> None:
    response = await app_client.client.get("/healthz")
    assert response.status == 200
    assert (await response.json()) == {"status": "ok", "version": __version__}


async def test_rules_page(app_client) -> None:
    response = await app_client.client.get("/rules/TX001")
    assert response.status == 200
    assert response.content_type == "text/markdown"
    text = await response.text()
    assert text.startswith("# TX001")
    page = await app_client.client.get("/rules/tx001", headers={"accept": "text/html"})
    assert page.content_type == "text/html" and "TX001" in await page.text()
    assert (await app_client.client.get("/rules/TX999")).status == 404


def test_manifest_subscribes_to_the_events_the_routers_handle() -> None:
    with open("app.yaml", encoding="utf-8") as handle:
        manifest = yaml.safe_load(handle)
    assert set(manifest["default_events"]) == registered_events()
    assert manifest["default_permissions"] == {
        "checks": "write",
        "pull_requests": "write",
        "contents": "read",
        "metadata": "read",
        "issues": "write",
    }
    assert manifest["hook_attributes"]["active"] is True
    assert {"name", "url", "description", "public"} <= set(manifest)


def test_procfile_starts_the_server_and_the_shared_mode_worker() -> None:
    with open("Procfile", encoding="utf-8") as handle:
        roles = dict(line.split(": ", 1) for line in handle.read().strip().splitlines())
    assert roles == {"web": "python -m bot", "worker": "txaudit worker"}


async def test_webhook_is_answered_before_the_audit_runs(app_client) -> None:
    fake: FakeGitHub = app_client.fake
    repo = fake.create_repo("acme/svc", files={"a.py": "x = 1\n"})
    repo.push("feature", {"b.py": "y = 2\n"})
    pr = repo.open_pull(head="feature")
    fake.faults.add(route="POST /repos/{o}/{r}/check-runs", delay=1.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    response = await app_client.deliver(
        "pull_request", app_client.pr_event("opened", pr), settle=False
    )
    assert response.status == 202
    assert loop.time() - started < 0.5
    await app_client.settle()
    assert fake.runs_for(pr.head_sha)[0].status == "completed"
