"""First start without an app: a setup page that registers the GitHub App from its manifest.

GitHub's "register a GitHub App from a manifest" flow (GITHUB-2.md s.4), as Probot does it:
`GET /setup` offers one button (personal account or an organisation) that posts the manifest
built from `app.yaml` to GitHub; GitHub redirects back to `/setup/callback?code=...&state=...`;
the server checks `state` against one it issued, exchanges the one-time code
(`POST /app-manifests/{code}/conversions`) and writes the App ID, private key and webhook
secret to `.env` (mode 0600, never over an existing file, never logged). `txaudit serve` reads
`.env` afterwards for whatever the environment does not set.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import os
import re
import secrets
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import yaml
from aiohttp import web
from gidgethub import GitHubException
from gidgethub.aiohttp import GitHubAPI

from bot import __version__

logger = logging.getLogger(__name__)

#: The variables that make a configured app; with none of them set, `serve` offers setup.
APP_VARIABLES = (
    "GITHUB_APP_ID",
    "GITHUB_PRIVATE_KEY",
    "GITHUB_PRIVATE_KEY_PATH",
    "GITHUB_WEBHOOK_SECRET",
)
ENV_FILE_VARIABLE = "TXAUDIT_ENV_FILE"
#: GitHub: "complete all three steps ... within one hour".
STATE_TTL_SECONDS = 3600
_ORG = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
_CODE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")

STATES = web.AppKey("setup_states", dict)
CONFIG = web.AppKey("setup_config", object)


# --- .env ------------------------------------------------------------------------------


def env_file_path(environ: Mapping[str, str]) -> Path:
    """`TXAUDIT_ENV_FILE`, else `.env` in the working directory."""
    return Path(environ.get(ENV_FILE_VARIABLE) or ".env")


def read_env_file(path: Path) -> dict[str, str]:
    """`KEY=value` lines (optionally quoted; `#` comments); {} when there is no file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    values: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _ENV_LINE.match(line)
        if match is None:
            continue
        key, value = match[1], match[2]
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key] = value
    return values


def with_env_file(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment, completed by `.env` for every variable the environment leaves unset."""
    merged = dict(read_env_file(env_file_path(environ)))
    merged.update({k: v for k, v in environ.items() if v != "" or k not in merged})
    return merged


def needs_setup(environ: Mapping[str, str]) -> bool:
    """No app id, key or secret at all (a partial configuration is an error, not setup)."""
    return not any(environ.get(name, "").strip() for name in APP_VARIABLES)


def _env_text(conversion: Mapping[str, Any], api_url: str) -> str:
    pem = str(conversion["pem"]).strip().replace("\r", "").replace("\n", "\\n")
    lines = [
        "# Written by txaudit's setup page: the GitHub App it registered. Keep this file secret.",
        f"GITHUB_APP_ID={int(conversion['id'])}",
        f'GITHUB_PRIVATE_KEY="{pem}\\n"',
        f"GITHUB_WEBHOOK_SECRET={conversion['webhook_secret']}",
    ]
    if api_url != "https://api.github.com":
        lines.append(f"GITHUB_API_URL={api_url}")
    return "\n".join(lines) + "\n"


def write_env_file(path: Path, text: str) -> None:
    """Create `path` with mode 0600; `FileExistsError` if it exists (never overwritten)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


# --- settings and the manifest ---------------------------------------------------------


@dataclass(frozen=True)
class SetupConfig:
    """Where GitHub is, where this server is reachable, where the results go."""

    web_url: str  # https://github.com, or https://HOST for GitHub Enterprise Server
    api_url: str  # https://api.github.com, or https://HOST/api/v3
    public_url: str | None  # this server from the outside (PUBLIC_URL); None: from the request
    port: int
    env_path: Path
    manifest: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SetupConfig:
        web_url = (environ.get("GITHUB_URL") or "").strip().rstrip("/")
        api_url = (environ.get("GITHUB_API_URL") or "").strip().rstrip("/")
        if not web_url:
            if not api_url or api_url == "https://api.github.com":
                web_url = "https://github.com"
            else:
                web_url = api_url.removesuffix("/api/v3")
        if not api_url:
            api_url = (
                "https://api.github.com" if web_url == "https://github.com" else web_url + "/api/v3"
            )
        return cls(
            web_url=web_url,
            api_url=api_url,
            public_url=(environ.get("PUBLIC_URL") or "").strip().rstrip("/") or None,
            port=int(environ.get("PORT") or 3000),
            env_path=env_file_path(environ),
            manifest=load_manifest(),
        )


def load_manifest() -> dict[str, Any]:
    """`app.yaml` of the working directory, else the one next to this package's source."""
    for candidate in (Path("app.yaml"), Path(__file__).resolve().parents[2] / "app.yaml"):
        if candidate.is_file():
            data = yaml.safe_load(candidate.read_text(encoding="utf-8"))
            if isinstance(data, dict):
                return data
    return {"name": "txaudit", "public": False}


def build_manifest(template: Mapping[str, Any], public_url: str) -> dict[str, Any]:
    """The manifest to post: `app.yaml` with this server as homepage, webhook and redirect."""
    manifest = dict(template)
    manifest["url"] = public_url
    manifest["hook_attributes"] = {
        **dict(template.get("hook_attributes") or {}),
        "url": f"{public_url}/webhook",
    }
    manifest["redirect_url"] = f"{public_url}/setup/callback"
    return manifest


# --- pages -----------------------------------------------------------------------------


def _page(title: str, body: str, *, status: int = 200) -> web.Response:
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;"
        "line-height:1.5;padding:0 1rem}button{font-size:1.1rem;padding:.5rem 1.2rem}"
        "code,pre{background:#f3f3f3;padding:.1rem .3rem}input{font-size:1rem}</style>"
        f"</head><body><h1>{html.escape(title)}</h1>{body}"
        f"<p><small>txaudit {html.escape(__version__)}</small></p></body></html>"
    )
    return web.Response(text=page, content_type="text/html", status=status)


def _problem(title: str, message: str, *, status: int) -> web.Response:
    body = f"<p id='problem'>{html.escape(message)}</p><p><a href='/setup'>Back to setup</a></p>"
    return _page(title, body, status=status)


def _public_url(request: web.Request, config: SetupConfig) -> str:
    if config.public_url:
        return config.public_url
    return f"{request.scheme}://{request.host}"


def _issue_state(app: web.Application) -> str:
    states: dict[str, float] = app[STATES]
    now = time.monotonic()
    for old in [s for s, expiry in states.items() if expiry < now]:
        del states[old]
    state = secrets.token_urlsafe(24)
    states[state] = now + STATE_TTL_SECONDS
    return state


def _take_state(app: web.Application, state: str) -> bool:
    """Whether `state` was issued here and is still valid; it is used up either way."""
    expiry = app[STATES].pop(state, None)
    return expiry is not None and expiry >= time.monotonic()


async def setup_page(request: web.Request) -> web.Response:
    config: SetupConfig = request.app[CONFIG]  # type: ignore[assignment]
    if config.env_path.exists():
        return _problem(
            "txaudit is already set up",
            f"{config.env_path} exists. Restart with `txaudit serve` to use it, or move it "
            "away to register another app.",
            status=409,
        )
    state = _issue_state(request.app)
    manifest = build_manifest(config.manifest, _public_url(request, config))
    body = (
        "<p>This txaudit server has no GitHub App yet. Register one on "
        f"<a href='{html.escape(config.web_url)}'>{html.escape(config.web_url)}</a> from its "
        "manifest: GitHub asks you to confirm the name, then sends you back here.</p>"
        "<form id='register' method='post' action='/setup/register'>"
        f"<input type='hidden' name='manifest' value='{html.escape(json.dumps(manifest))}'>"
        f"<input type='hidden' name='state' value='{html.escape(state)}'>"
        "<p><label>Organisation (leave empty for your personal account): "
        "<input name='organization' id='organization' pattern='[A-Za-z0-9][A-Za-z0-9-]*'>"
        "</label></p>"
        "<p><button type='submit'>Register the GitHub App on GitHub</button></p></form>"
        f"<p>Webhook: <code>{html.escape(manifest['hook_attributes']['url'])}</code>. "
        "The App ID, private key and webhook secret will be written to "
        f"<code>{html.escape(str(config.env_path))}</code> (mode 0600).</p>"
    )
    return _page("Set up txaudit", body)


async def register(request: web.Request) -> web.StreamResponse:
    """Hand the form on to GitHub: a 307 keeps the POST and its `manifest` field."""
    config: SetupConfig = request.app[CONFIG]  # type: ignore[assignment]
    form = await request.post()
    state = str(form.get("state", ""))
    org = str(form.get("organization", "")).strip()
    if state not in request.app[STATES]:
        return _problem("Setup expired", "This setup page is too old: reload it.", status=400)
    if org and not _ORG.match(org):
        return _problem("Not an organisation", f"'{org}' is not a GitHub login.", status=400)
    where = f"/organizations/{org}/settings/apps/new" if org else "/settings/apps/new"
    raise web.HTTPTemporaryRedirect(f"{config.web_url}{where}?{urlencode({'state': state})}")


async def callback(request: web.Request) -> web.Response:
    """GitHub's redirect back: check `state`, exchange the code, write `.env`."""
    config: SetupConfig = request.app[CONFIG]  # type: ignore[assignment]
    code = request.query.get("code", "")
    state = request.query.get("state", "")
    if not _take_state(request.app, state):
        logger.warning("setup callback with an unknown state")
        return _problem(
            "Setup refused",
            "This answer does not belong to a registration started from this page (wrong or "
            "expired state). Nothing was written: start again from the setup page.",
            status=400,
        )
    if config.env_path.exists():
        return _problem(
            "txaudit is already set up",
            f"{config.env_path} exists and is never overwritten. Nothing was written.",
            status=409,
        )
    if not _CODE.match(code):
        return _problem(
            "Setup failed", "GitHub sent no valid code. Nothing was written.", status=400
        )
    try:
        async with aiohttp.ClientSession() as session:
            gh = GitHubAPI(session, f"txaudit/{__version__}", base_url=config.api_url)
            conversion = await gh.post(f"/app-manifests/{code}/conversions", data={})
    except GitHubException as exc:
        status = getattr(getattr(exc, "status_code", None), "value", None)
        logger.warning("manifest conversion refused", extra={"status": status})
        return _problem(
            "Setup failed",
            "GitHub did not accept the code: it is wrong, already used or expired (codes last "
            "one hour). Nothing was written: register again from the setup page.",
            status=400,
        )
    except (TimeoutError, aiohttp.ClientError) as exc:
        logger.warning("cannot reach GitHub", extra={"error": type(exc).__name__})
        return _problem(
            "Setup failed", f"Cannot reach {config.api_url}. Nothing was written.", status=502
        )
    try:
        write_env_file(config.env_path, _env_text(conversion, config.api_url))
    except FileExistsError:
        return _problem(
            "txaudit is already set up",
            f"{config.env_path} exists and is never overwritten. Nothing was written.",
            status=409,
        )
    html_url = str(conversion.get("html_url") or f"{config.web_url}/apps/{conversion['slug']}")
    install = f"{html_url}/installations/new"
    logger.info(
        "registered the GitHub App",
        extra={"app_id": conversion.get("id"), "slug": conversion.get("slug")},
    )
    body = (
        f"<p id='registered'>Registered <strong>{html.escape(str(conversion.get('name', '')))}"
        f"</strong> (App ID {int(conversion['id'])}). Its App ID, private key and webhook "
        f"secret are in <code>{html.escape(str(config.env_path))}</code>.</p>"
        f"<ol><li><a id='install' href='{html.escape(install)}'>Install the app</a> on your "
        "repositories.</li>"
        "<li>Restart the server: stop this one and run <code>txaudit serve</code> in the same "
        "folder.</li></ol>"
    )
    return _page("txaudit is registered", body)


async def root(request: web.Request) -> web.Response:
    raise web.HTTPFound("/setup")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "setup", "version": __version__})


def make_setup_app(config: SetupConfig) -> web.Application:
    """The aiohttp app that serves the setup flow."""
    app = web.Application()
    app[CONFIG] = config
    app[STATES] = {}
    app.router.add_get("/", root)
    app.router.add_get("/setup", setup_page)
    app.router.add_post("/setup/register", register)
    app.router.add_get("/setup/callback", callback)
    app.router.add_get("/healthz", healthz)
    return app


async def serve_setup(config: SetupConfig) -> None:
    """Serve the setup flow until SIGTERM or SIGINT."""
    runner = web.AppRunner(make_setup_app(config), access_log=None, handle_signals=False)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await web.TCPSite(runner, port=config.port).start()
        url = f"{config.public_url or f'http://localhost:{config.port}'}/setup"
        logger.info("no GitHub App configured: open the setup page", extra={"url": url})
        await stop.wait()
    finally:
        await runner.cleanup()
