"""The setup page in a real headless Chromium (Debian's `chromium`, driven by Playwright for
Python; no browser download), against the fake GitHub.

Without `/usr/bin/chromium` the test is skipped with an install hint, and fails when
`TXAUDIT_REQUIRE_BROWSER=1` (which `.ci/run` sets after installing it).
`TXAUDIT_UPDATE_SCREENSHOTS=1` rewrites the screenshots under `docs/` for the README.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from fakegithub import FakeGitHub

from bot.app import setup

DOCS = Path(__file__).resolve().parents[3] / "docs"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _chromium() -> str:
    if Path(CHROMIUM).is_file():
        return CHROMIUM
    message = "no chromium: apt-get install -y chromium (Debian's package, /usr/bin/chromium)"
    if os.environ.get("TXAUDIT_REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


async def test_register_in_chromium(
    make_fake_github: Callable[..., Awaitable[FakeGitHub]], aiohttp_server: Any, tmp_path: Path
) -> None:
    executable = _chromium()
    from playwright.async_api import async_playwright, expect

    ghes = await make_fake_github(base_path="/api/v3")
    env_file = tmp_path / ".env"
    config = setup.SetupConfig.from_env(
        {"GITHUB_URL": ghes.root_url, "TXAUDIT_ENV_FILE": str(env_file)}
    )
    server = await aiohttp_server(setup.make_setup_app(config), host="127.0.0.1")
    base = str(server.make_url("")).rstrip("/")
    update = os.environ.get("TXAUDIT_UPDATE_SCREENSHOTS") == "1"

    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=executable, headless=True)
        try:
            page = await browser.new_page(viewport={"width": 900, "height": 640})
            form_posts: list[str] = []
            page.on(
                "request",
                lambda r: form_posts.append(r.post_data or "") if r.method == "POST" else None,
            )
            await page.goto(f"{base}/setup")
            await expect(page.locator("h1")).to_have_text("Set up txaudit")
            button = page.get_by_role("button", name="Register the GitHub App on GitHub")
            await expect(button).to_be_visible()
            if update:
                await page.screenshot(path=str(DOCS / "setup-page.png"))
            await button.click()

            # The form went to GitHub (through the server's 307), which sent the browser back.
            await page.wait_for_url(f"{base}/setup/callback?code=*")
            await expect(page.locator("h1")).to_have_text("txaudit is registered")
            (app_id,) = ghes.registered_apps
            install = page.locator("#install")
            slug = ghes.apps[app_id].slug
            expected = f"{ghes.root_url}/apps/{slug}/installations/new"
            await expect(install).to_have_attribute("href", expected)
            await expect(page.locator("#registered")).to_contain_text(f"App ID {app_id}")
            if update:
                await page.screenshot(path=str(DOCS / "setup-done.png"))
        finally:
            await browser.close()

    assert form_posts and all("manifest=" in body for body in form_posts)
    (registration,) = ghes.manifest_codes.values()  # what the browser posted to GitHub
    assert registration.manifest["hook_attributes"]["url"] == f"{base}/webhook"
    assert registration.manifest["redirect_url"] == f"{base}/setup/callback"
    assert json.loads(json.dumps(registration.manifest))["name"] == "txaudit"
    assert setup.read_env_file(env_file)["GITHUB_APP_ID"] == str(app_id)
