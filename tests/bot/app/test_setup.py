"""The setup page that registers the GitHub App from its manifest, against the fake GitHub
(GHES layout: web pages at the root, the API under /api/v3)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import stat
import sys
from collections.abc import Awaitable, Callable
from html import unescape
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from app_helpers import free_port
from fakegithub import FakeGitHub

from bot.app import setup
from bot.app.settings import AppSettings, load_private_key

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
async def ghes(make_fake_github: Callable[..., Awaitable[FakeGitHub]]) -> FakeGitHub:
    return await make_fake_github(base_path="/api/v3")


@pytest.fixture
async def setup_client(ghes: FakeGitHub, aiohttp_client: Any, tmp_path: Path) -> Any:
    config = setup.SetupConfig.from_env(
        {"GITHUB_URL": ghes.root_url, "TXAUDIT_ENV_FILE": str(tmp_path / ".env")}
    )
    assert config.api_url == ghes.url  # GITHUB_URL of a GHES host: the API under /api/v3
    return await aiohttp_client(setup.make_setup_app(config))


def _field(page: str, name: str) -> str:
    match = re.search(rf"name='{name}' value='([^']*)'", page)
    assert match, page
    return unescape(match[1])


async def _register(client: Any, ghes: FakeGitHub, org: str = "") -> tuple[str, str, dict]:
    """The browser's part: open the page, press the button, confirm on GitHub.
    Returns (the callback URL GitHub redirects to, the state, the manifest posted)."""
    page = await (await client.get("/setup")).text()
    form = {"manifest": _field(page, "manifest"), "state": _field(page, "state")}
    form["organization"] = org
    handed = await client.post("/setup/register", data=form, allow_redirects=False)
    assert handed.status == 307  # the browser re-posts the same form to GitHub
    where = handed.headers["Location"]
    path = f"/organizations/{org}/settings/apps/new" if org else "/settings/apps/new"
    assert where.startswith(f"{ghes.root_url}{path}?state=")
    async with aiohttp.ClientSession() as browser:
        async with browser.post(where, data=form, allow_redirects=False) as confirmed:
            assert confirmed.status == 302, await confirmed.text()
            callback = confirmed.headers["Location"]
    return callback, form["state"], json.loads(form["manifest"])


def _local(client: Any, url: str) -> str:
    """The callback URL's path and query (the test client knows the host)."""
    return url.split(str(client.make_url("")).rstrip("/"), 1)[1]


async def test_register_writes_env_and_shows_the_install_link(
    setup_client: Any, ghes: FakeGitHub, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    callback, state, manifest = await _register(setup_client, ghes)
    public = str(setup_client.make_url("")).rstrip("/")
    assert manifest["hook_attributes"]["url"] == f"{public}/webhook"
    assert manifest["redirect_url"] == f"{public}/setup/callback"
    assert manifest["default_permissions"]["checks"] == "write"  # from app.yaml
    assert manifest["default_events"] == [
        "pull_request",
        "check_run",
        "check_suite",
        "issue_comment",
    ]
    assert callback.startswith(f"{public}/setup/callback?code=") and f"state={state}" in callback

    response = await setup_client.get(_local(setup_client, callback))
    page = await response.text()
    assert response.status == 200, page
    (app_id,) = ghes.registered_apps
    app = ghes.apps[app_id]
    assert f"{ghes.root_url}/apps/{app.slug}/installations/new" in page
    assert "txaudit serve" in page

    env_file = tmp_path / ".env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    values = setup.read_env_file(env_file)
    secret = ghes.registered_apps[app_id]["webhook_secret"]
    assert values["GITHUB_APP_ID"] == str(app_id)
    assert values["GITHUB_WEBHOOK_SECRET"] == secret
    assert values["GITHUB_API_URL"] == ghes.url
    settings = AppSettings.from_env(setup.with_env_file({"TXAUDIT_ENV_FILE": str(env_file)}))
    assert settings.app_id == str(app_id) and settings.api_url == ghes.url
    assert load_private_key(settings.private_key).key_size == 2048
    assert settings.private_key.strip() == app.private_key_pem.strip()
    logged = caplog.text + page
    assert secret not in logged and "PRIVATE KEY" not in logged

    # The code was used up: a second exchange (a reload of the page) is refused.
    again = await setup_client.get(_local(setup_client, callback))
    assert again.status == 400


async def test_organisation_registration(
    setup_client: Any, ghes: FakeGitHub, tmp_path: Path
) -> None:
    callback, _state, _manifest = await _register(setup_client, ghes, org="acme")
    response = await setup_client.get(_local(setup_client, callback))
    assert response.status == 200
    (registration,) = ghes.manifest_codes.values()
    assert registration.owner == "acme"
    assert (tmp_path / ".env").exists()
    bad = await setup_client.post(
        "/setup/register", data={"state": "x", "organization": "a/../b"}, allow_redirects=False
    )
    assert bad.status == 400


async def test_bad_code_gets_a_clear_page_and_no_file(
    setup_client: Any, ghes: FakeGitHub, tmp_path: Path
) -> None:
    _callback, state, _manifest = await _register(setup_client, ghes)
    response = await setup_client.get(f"/setup/callback?code=0123456789abcdef&state={state}")
    page = await response.text()
    assert response.status == 400
    assert "GitHub did not accept the code: it is wrong, already used or expired" in page
    assert "Nothing was written" in page
    assert not (tmp_path / ".env").exists()


async def test_expired_code_gets_a_clear_page_and_no_file(
    setup_client: Any, ghes: FakeGitHub, tmp_path: Path
) -> None:
    callback, _state, _manifest = await _register(setup_client, ghes)
    ghes.clock.advance(3601)  # GitHub: convert within one hour
    response = await setup_client.get(_local(setup_client, callback))
    assert response.status == 400
    assert "expired (codes last one hour)" in await response.text()
    assert not (tmp_path / ".env").exists()
    assert not ghes.registered_apps


async def test_wrong_state_is_refused_before_the_code_is_used(
    setup_client: Any, ghes: FakeGitHub, tmp_path: Path
) -> None:
    callback, state, _manifest = await _register(setup_client, ghes)
    forged = _local(setup_client, callback).replace(f"state={state}", "state=forged")
    response = await setup_client.get(forged)
    page = await response.text()
    assert response.status == 400
    assert "does not belong to a registration started from this page" in page
    assert not (tmp_path / ".env").exists()
    assert not ghes.registered_apps  # the code was never exchanged
    no_state = await setup_client.get(forged.split("&state=")[0])
    assert no_state.status == 400


async def test_existing_env_is_never_overwritten(
    setup_client: Any, ghes: FakeGitHub, tmp_path: Path
) -> None:
    callback, _state, _manifest = await _register(setup_client, ghes)
    env_file = tmp_path / ".env"
    env_file.write_text("GITHUB_APP_ID=1\n")
    response = await setup_client.get(_local(setup_client, callback))
    page = await response.text()
    assert response.status == 409
    assert "exists and is never overwritten. Nothing was written." in page
    assert env_file.read_text() == "GITHUB_APP_ID=1\n"
    assert not ghes.registered_apps
    assert (await setup_client.get("/setup")).status == 409


def test_github_url_and_api_url() -> None:
    dotcom = setup.SetupConfig.from_env({})
    assert (dotcom.web_url, dotcom.api_url) == ("https://github.com", "https://api.github.com")
    ghes = setup.SetupConfig.from_env({"GITHUB_API_URL": "https://git.example.com/api/v3"})
    assert ghes.web_url == "https://git.example.com"
    ghes = setup.SetupConfig.from_env({"GITHUB_URL": "https://git.example.com/"})
    assert ghes.api_url == "https://git.example.com/api/v3"


def test_env_file_fills_only_what_the_environment_leaves_unset(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text('# comment\nGITHUB_APP_ID=7\nGITHUB_WEBHOOK_SECRET="s e"\nPORT=1\n')
    merged = setup.with_env_file({"TXAUDIT_ENV_FILE": str(env_file), "PORT": "3000"})
    assert merged["GITHUB_APP_ID"] == "7" and merged["GITHUB_WEBHOOK_SECRET"] == "s e"
    assert merged["PORT"] == "3000"
    assert not setup.needs_setup(merged)
    assert setup.needs_setup({"PORT": "3000"})


async def _wait_for(url: str, proc: asyncio.subprocess.Process) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(url) as response:
                    return dict(await response.json())
            except aiohttp.ClientError:
                if proc.returncode is not None:
                    raise AssertionError("the server exited") from None
                await asyncio.sleep(0.1)
    raise AssertionError(f"{url} did not answer")


async def _serve(cwd: Path, **env: str) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        cwd=cwd,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(REPO),
            "PORT": str(port),
            "TXAUDIT_REDELIVER_INTERVAL": "0",
            "TXAUDIT_WORKERS": "0",
            "TXAUDIT_INTAKE_PROCESSES": "0",
            **env,
        },
        stderr=asyncio.subprocess.PIPE,
    )
    return proc, f"http://127.0.0.1:{port}"


async def _stop(proc: asyncio.subprocess.Process) -> str:
    proc.terminate()
    _out, err = await asyncio.wait_for(proc.communicate(), 30)
    return err.decode()


async def test_serve_without_an_app_serves_setup_then_reads_env(
    fake_github: FakeGitHub, tmp_path: Path
) -> None:
    proc, base = await _serve(tmp_path)
    try:
        assert (await _wait_for(base + "/healthz", proc))["status"] == "setup"
        async with aiohttp.ClientSession() as session:
            async with session.get(base + "/") as page:
                assert page.url.path == "/setup"
                assert "Register the GitHub App on GitHub" in await page.text()
    finally:
        log = await _stop(proc)
    (line,) = [line for line in log.splitlines() if "setup page" in line]
    assert f"url=http://localhost:{base.rsplit(':', 1)[1]}/setup" in line

    # What the setup page writes, for the fake's app: `txaudit serve` now runs the app.
    pem = fake_github.private_key_pem.strip().replace("\n", "\\n")
    (tmp_path / ".env").write_text(
        f'GITHUB_APP_ID={fake_github.app_id}\nGITHUB_PRIVATE_KEY="{pem}\\n"\n'
        f"GITHUB_WEBHOOK_SECRET={fake_github.webhook_secret}\nGITHUB_API_URL={fake_github.url}\n"
    )
    proc, base = await _serve(tmp_path)
    try:
        assert (await _wait_for(base + "/healthz", proc))["status"] == "ok"
    finally:
        log = await _stop(proc)
    assert fake_github.webhook_secret not in log and "PRIVATE KEY" not in log
