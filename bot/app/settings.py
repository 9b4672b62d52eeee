"""The app's settings, read once from the environment at startup."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

DEFAULT_API_URL = "https://api.github.com"
DEFAULT_PORT = 3000
#: Webhook intake processes of `txaudit serve` (see `bot.app.intake_pool`).
DEFAULT_INTAKE = 2


class SettingsError(Exception):
    """A setting is missing or invalid; `str()` is one line that says which and what to do."""


#: See `AppSettings.running_jobs`: a burst of 50 pull requests on one installation all get
#: their check runs created first (`bot.app.pacing`) while 8 audits read and run.
JOBS_PER_AUDIT_PLACE = 8


@dataclass(frozen=True)
class AppSettings:
    """Everything the server needs from its environment."""

    app_id: str
    private_key: str = ""
    webhook_secret: str = ""
    api_url: str = DEFAULT_API_URL
    port: int = DEFAULT_PORT
    #: Where this server is reachable from the outside; `/rules/<ID>` links use it.
    public_url: str | None = None
    #: Engine worker processes (0: run the engine in a thread, for tests and tiny hosts).
    workers: int = 2
    #: Audits that may run at the same time in this process.
    max_audits: int = 8
    #: Seconds after which an audit gives up and completes its check run as an error.
    audit_timeout: float = 600.0
    #: Seconds that running audits get to finish after SIGTERM before they are interrupted.
    shutdown_grace: float = 20.0
    #: Processes that answer webhooks for `serve` (0: the audit process answers them itself).
    intake_processes: int = 0
    #: Shared mode: the Redis that holds the queue (`redis://host:6379/0`); None: embedded.
    redis_url: str | None = None
    #: Seconds between looks for failed deliveries to redeliver (0: never look).
    redeliver_interval: float = 0.0

    @property
    def running_jobs(self) -> int:
        """Audit jobs a process runs at once: `max_audits` read and run the rules, the others
        wait for GitHub's pace to create or complete their check runs and post reviews."""
        return self.max_audits * JOBS_PER_AUDIT_PLACE

    def __repr__(self) -> str:  # never show the key or the secret in logs or tracebacks
        return (
            f"AppSettings(app_id={self.app_id!r}, api_url={self.api_url!r}, port={self.port}, "
            f"public_url={self.public_url!r}, workers={self.workers}, "
            f"max_audits={self.max_audits}, intake_processes={self.intake_processes}, "
            f"shared={self.redis_url is not None})"
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AppSettings:
        """Read and validate the settings; raise `SettingsError` with a one-line reason."""
        env = os.environ if env is None else env
        app_id = env.get("GITHUB_APP_ID", "").strip()
        if not app_id:
            raise SettingsError("GITHUB_APP_ID is not set: give the GitHub App's id (or client id)")
        private_key = _read_private_key(env)
        secret = env.get("GITHUB_WEBHOOK_SECRET", "")
        if not secret:
            raise SettingsError(
                "GITHUB_WEBHOOK_SECRET is not set: give the webhook secret of the GitHub App"
            )
        api_url = (env.get("GITHUB_API_URL") or DEFAULT_API_URL).strip().rstrip("/")
        if not api_url.startswith(("https://", "http://")):
            raise SettingsError(f"GITHUB_API_URL must be an http(s) URL, got {api_url!r}")
        public_url = (env.get("PUBLIC_URL") or "").strip().rstrip("/") or None
        redis_url = (env.get("REDIS_URL") or "").strip() or None
        if redis_url is not None and not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError("REDIS_URL must be a redis:// or rediss:// URL")
        return cls(
            app_id=app_id,
            private_key=private_key,
            webhook_secret=secret,
            api_url=api_url,
            port=_int(env, "PORT", DEFAULT_PORT, minimum=1),
            public_url=public_url,
            workers=_int(env, "TXAUDIT_WORKERS", min(4, os.cpu_count() or 1), minimum=0),
            max_audits=_int(env, "TXAUDIT_MAX_AUDITS", 8, minimum=1),
            audit_timeout=float(_int(env, "TXAUDIT_AUDIT_TIMEOUT", 600, minimum=1)),
            shutdown_grace=float(_int(env, "TXAUDIT_SHUTDOWN_GRACE", 20, minimum=0)),
            # shared mode: web replicas answer deliveries themselves (they only store them)
            intake_processes=0
            if redis_url
            else _int(env, "TXAUDIT_INTAKE_PROCESSES", DEFAULT_INTAKE, minimum=0),
            redis_url=redis_url,
            redeliver_interval=float(_int(env, "TXAUDIT_REDELIVER_INTERVAL", 300, minimum=0)),
        )


def _read_private_key(env: Mapping[str, str]) -> str:
    text = env.get("GITHUB_PRIVATE_KEY", "")
    path = env.get("GITHUB_PRIVATE_KEY_PATH", "")
    if not text and path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(
                f"GITHUB_PRIVATE_KEY_PATH: cannot read {path}: {exc.__class__.__name__}"
            ) from None
    if not text.strip():
        raise SettingsError(
            "GITHUB_PRIVATE_KEY or GITHUB_PRIVATE_KEY_PATH is not set: "
            "give the App's PEM private key"
        )
    if "\\n" in text and "\n" not in text.strip():
        text = text.replace("\\n", "\n")  # a PEM squeezed onto one line by a .env file or a PaaS
    check_private_key(text)
    return text


def check_private_key(pem: str) -> None:
    """Raise `SettingsError` unless `pem` is an RSA private key (GitHub App keys are RS256)."""
    load_private_key(pem)


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    """The app's RSA private key, parsed once (parsing costs ~28 ms; signing with the parsed
    key ~0.3 ms); `SettingsError` when it is not one."""
    try:
        key = serialization.load_pem_private_key(pem.strip().encode(), password=None)
    except (ValueError, TypeError):
        raise SettingsError(
            "the GitHub App private key does not parse: give the PEM file GitHub generated"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SettingsError("the GitHub App private key is not an RSA key: GitHub signs with RS256")
    return key


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value
