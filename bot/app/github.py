"""GitHub access: installation tokens, retries, conditional GETs and the blob cache."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import cachetools
from gidgethub import aiohttp as gh_aiohttp
from gidgethub import apps as gh_apps

from bot import __version__
from bot.app.pacing import Buckets, LocalBuckets, Pacer, Rate
from bot.app.settings import AppSettings, load_private_key

logger = logging.getLogger(__name__)

USER_AGENT = f"txaudit/{__version__}"
#: Re-mint an installation token this long before GitHub says it expires.
TOKEN_MARGIN = 5 * 60
#: An app JWT is valid for 10 minutes; one is signed at most this often (seconds).
JWT_REUSE = 5 * 60
#: Concurrent requests per installation: a quarter of the 100 GitHub allows across REST and
#: GraphQL, so that a 1,000-file pull request reads its files in 40 round trips, not 125.
CONCURRENCY_PER_INSTALLATION = 25
#: Cached file contents, in bytes, across installations (a blob sha names its content).
BLOB_CACHE_BYTES = 64 * 1024 * 1024
#: Responses kept for conditional GETs (ETag / Last-Modified); a 304 costs no rate limit.
#: Bounded by (approximate) size: one page of a pull request's files can hold megabytes.
ETAG_CACHE_BYTES = 32 * 1024 * 1024

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long GitHub calls are retried."""

    attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0
    #: Longest wait for a rate limit to reset; beyond it the call fails at once.
    max_rate_limit_wait: float = 300.0
    #: Spacing of POST/PATCH/PUT/DELETE per installation, as GitHub's best practices ask...
    mutation_interval: float = 1.0
    #: ...after a burst of this many: one audit's create, complete and review go out at
    #: once, while a sustained stream stays at one per `mutation_interval` (`bot.app.pacing`
    #: adds the content and per-endpoint limits; 0 turns all pacing off).
    mutation_burst: int = 5

    @property
    def writes(self) -> Rate:
        return Rate("writes", self.mutation_interval, max(self.mutation_burst, 1))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RetryPolicy:
        """GitHub's advice by default; `TXAUDIT_WRITE_INTERVAL` (seconds between writes of one
        installation, 0 for no pacing) is for GitHub Enterprise Server hosts without
        secondary limits, benchmarks and tests."""
        interval = (os.environ if env is None else env).get("TXAUDIT_WRITE_INTERVAL", "").strip()
        return cls(mutation_interval=float(interval)) if interval else cls()

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter for the `attempt`-th retry (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


class _ConditionalCache(cachetools.LRUCache[str, Any]):
    """gidgethub's ETag cache, minus blobs and trees (immutable; cached by sha elsewhere).

    gidgethub keys the cache by URL only, ignoring Accept and token, so never read the same
    URL with two media types through it.
    """

    def __init__(self, max_bytes: int = ETAG_CACHE_BYTES) -> None:
        super().__init__(maxsize=max_bytes, getsizeof=approx_size)

    def __setitem__(self, key: str, value: Any) -> None:
        if "/git/blobs/" in key or "/git/trees/" in key:
            return
        try:
            super().__setitem__(key, value)
        except ValueError:  # larger than the whole cache: not kept
            pass


def approx_size(value: object) -> int:
    """A cheap estimate, in bytes, of the memory a decoded JSON value (or a tuple of them)
    holds: string lengths plus a fixed overhead per object. For cache bounds, not accounting."""
    if isinstance(value, str | bytes):
        return 50 + len(value)
    if isinstance(value, dict):
        return 64 + sum(approx_size(k) + approx_size(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return 56 + sum(approx_size(item) for item in value)
    return 32


class TokenCache:
    """Installation tokens, minted with the app JWT and kept until shortly before expiry."""

    def __init__(
        self,
        mint: Callable[[int], Awaitable[dict[str, Any]]],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._mint = mint
        self._clock = clock
        self._tokens: dict[int, tuple[str, float]] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    async def get(
        self, installation_id: int, *, refresh: bool = False, stale: str | None = None
    ) -> str:
        """A valid token; `refresh` re-mints unless another caller already replaced `stale`."""
        lock = self._locks.setdefault(installation_id, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(installation_id)
            if cached is not None:
                token, renew_at = cached
                if refresh and token != stale:
                    return token
                if not refresh and self._clock() < renew_at:
                    return token
            data = await self._mint(installation_id)
            token = data["token"]
            renew_at = _expiry(data.get("expires_at"), self._clock()) - TOKEN_MARGIN
            self._tokens[installation_id] = (token, renew_at)
            logger.info(
                "minted installation token",
                extra={"installation": installation_id, "expires_at": data.get("expires_at")},
            )
            return token

    def forget(self, installation_id: int) -> None:
        self._tokens.pop(installation_id, None)


def _expiry(expires_at: Any, now: float) -> float:
    if isinstance(expires_at, str):
        try:
            return datetime.fromisoformat(expires_at.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return now + 3600  # GitHub's documented lifetime


class GitHubClient(gh_aiohttp.GitHubAPI):
    """gidgethub's client with retries, a per-installation concurrency bound and token refresh.

    All policy lives in `_request`, below gidgethub's response decoding, so every call
    (`getitem`, `getiter` pages, `post`, ...) gets it.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        hub: GitHub,
        installation_id: int | None,
        oauth_token: str | None = None,
    ) -> None:
        super().__init__(
            session,
            USER_AGENT,
            oauth_token=oauth_token,
            cache=hub.etag_cache if installation_id is not None else None,
            base_url=hub.settings.api_url,
        )
        self.hub = hub
        self.installation_id = installation_id
        #: Whose pace a call counts against: the installation's, or the app's own.
        self.pace_scope = f"installation:{installation_id}" if installation_id else "app"

    async def sleep(self, seconds: float) -> None:
        await self.hub.sleep(seconds)

    async def _request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes = b""
    ) -> tuple[int, Mapping[str, str], bytes]:
        hub, policy = self.hub, self.hub.retry
        request_headers = dict(headers)
        token: str | None = None
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            if self.installation_id is not None:
                token = await hub.tokens.get(self.installation_id)
                request_headers["authorization"] = f"token {token}"
            try:
                status, response_headers, data = await self._send(
                    method, url, request_headers, body
                )
            except (TimeoutError, aiohttp.ClientError) as exc:
                if attempt >= policy.attempts:
                    raise
                delay = policy.backoff(attempt)
                self._log_retry(method, url, attempt, delay, reason=exc.__class__.__name__)
                await self.sleep(delay)
                continue
            if status == 401 and token is not None and not refreshed:
                # A revoked or expired installation token: mint a fresh one, once.
                refreshed = True
                assert self.installation_id is not None
                await hub.tokens.get(self.installation_id, refresh=True, stale=token)
                attempt -= 1
                continue
            wait = self._retry_delay(status, response_headers, data, attempt)
            if wait is not None and status in (403, 429):
                # A rate limit holds for the installation: every process waits, not only this.
                await hub.pacer.pause(self.pace_scope, wait)
            if wait is None or attempt >= policy.attempts:
                return status, response_headers, data
            self._log_retry(method, url, attempt, wait, reason=str(status))
            await self.sleep(wait)

    async def _send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, Mapping[str, str], bytes]:
        await self.hub.pacer.before(self.pace_scope, method, url, body)
        async with self.hub.limiter(self.installation_id).semaphore:
            return await super()._request(method, url, headers, body)

    def _retry_delay(
        self, status: int, headers: Mapping[str, str], body: bytes, attempt: int
    ) -> float | None:
        """Seconds to wait before retrying, or None when the response is final."""
        policy = self.hub.retry
        if status >= 500:
            return policy.backoff(attempt)
        if status not in (403, 429):
            return None
        retry_after = headers.get("retry-after")
        if retry_after is not None:
            # Secondary rate limit: https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api
            try:
                wait = float(retry_after)
            except ValueError:
                wait = policy.max_delay
            return wait if wait <= policy.max_rate_limit_wait else None
        if headers.get("x-ratelimit-remaining") == "0":
            try:
                wait = float(headers.get("x-ratelimit-reset", "0")) - self.hub.clock() + 1
            except ValueError:
                wait = policy.max_delay
            wait = max(wait, 1.0)
            return wait if wait <= policy.max_rate_limit_wait else None
        if status == 429 or b"rate limit" in body.lower():
            # No Retry-After: GitHub asks for at least a minute, then exponential backoff.
            return max(60.0, policy.backoff(attempt))
        return None  # a plain 403: permission denied

    def _log_retry(self, method: str, url: str, attempt: int, delay: float, *, reason: str) -> None:
        logger.warning(
            "retrying GitHub call",
            extra={
                "method": method,
                "url": url.split("?", 1)[0],
                "attempt": attempt,
                "delay": round(delay, 2),
                "reason": reason,
                "installation": self.installation_id,
            },
        )


class _Limiter:
    """Per-installation bound on concurrent requests (of this process)."""

    def __init__(self) -> None:
        self.semaphore = asyncio.Semaphore(CONCURRENCY_PER_INSTALLATION)


class BlobCache:
    """File contents by git blob sha, bounded by total bytes."""

    def __init__(self, max_bytes: int = BLOB_CACHE_BYTES) -> None:
        self._cache: cachetools.LRUCache[str, bytes] = cachetools.LRUCache(
            maxsize=max_bytes, getsizeof=lambda value: max(1, len(value))
        )

    def get(self, sha: str) -> bytes | None:
        return self._cache.get(sha)

    def put(self, sha: str, content: bytes) -> None:
        if len(content) <= self._cache.maxsize:
            self._cache[sha] = content


class GitHub:
    """The process's door to GitHub: one per server, shared by all audits."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: AppSettings,
        *,
        retry: RetryPolicy | None = None,
        sleep: Sleep | None = None,
        clock: Callable[[], float] = time.time,
        buckets: Buckets | None = None,
    ) -> None:
        self.session = session
        self.settings = settings
        self.retry = retry or RetryPolicy()
        self.sleep: Sleep = sleep or asyncio.sleep
        #: Local buckets by default; `RedisBuckets` shares the pace between processes.
        self.pacer = Pacer(buckets or LocalBuckets(), sleep=self.sleep, writes=self.retry.writes)
        self.clock = clock
        self.etag_cache = _ConditionalCache()
        self.blobs = BlobCache()
        self.tokens = TokenCache(self._mint_token, clock=clock)
        self._limiters: dict[int | None, _Limiter] = {}
        self._app_client = GitHubClient(
            session,
            hub=self,
            installation_id=None,
        )
        # Parsed once: gidgethub's `get_jwt` would parse the PEM (~28 ms) on every signing.
        self._private_key = load_private_key(settings.private_key)
        self._app_info: dict[str, Any] | None = None
        self._jwt: tuple[str, float] | None = None

    def limiter(self, installation_id: int | None) -> _Limiter:
        limiter = self._limiters.get(installation_id)
        if limiter is None:
            limiter = self._limiters[installation_id] = _Limiter()
        return limiter

    def _app_jwt(self) -> str:
        """The app's JWT (gidgethub's `get_jwt`), reused for `JWT_REUSE` seconds."""
        now = time.monotonic()
        if self._jwt is None or now - self._jwt[1] > JWT_REUSE:
            # PyJWT signs with a parsed key as well as with PEM text (which it parses again).
            token = gh_apps.get_jwt(
                app_id=self.settings.app_id,
                private_key=self._private_key,  # type: ignore[arg-type]
            )
            self._jwt = (token, now)
        return self._jwt[0]

    async def _mint_token(self, installation_id: int) -> dict[str, Any]:
        """`POST /app/installations/{id}/access_tokens` with the app JWT."""
        try:
            data: dict[str, Any] = await self._app_client.post(
                f"/app/installations/{installation_id}/access_tokens",
                data=b"",
                jwt=self._app_jwt(),
            )
        except Exception:
            self._jwt = None  # e.g. a JWT refused for clock skew: sign a new one next time
            raise
        return data

    def app_client(self) -> GitHubClient:
        """The client that acts as the app itself (pass `jwt=self.app_jwt()` to its calls)."""
        return self._app_client

    def app_jwt(self) -> str:
        """The app's current JWT (for `/app/...` endpoints)."""
        return self._app_jwt()

    def installation(self, installation_id: int) -> GitHubClient:
        """A client acting as the installation; its token is minted on first use.

        `_request` puts the current token in every request, so the client never holds one.
        """
        return GitHubClient(
            self.session, hub=self, installation_id=installation_id, oauth_token="unused"
        )

    async def app_info(self) -> dict[str, Any]:
        """`GET /app` (slug, id, owner), fetched once with the app JWT."""
        if self._app_info is None:
            self._app_info = await self._app_client.getitem("/app", jwt=self._app_jwt())
        return self._app_info

    async def bot_login(self) -> str | None:
        """The login the app comments as (`<slug>[bot]`), or None when GitHub will not say."""
        try:
            info = await self.app_info()
        except Exception:  # noqa: BLE001 - only used to narrow a filter
            logger.warning("could not read GET /app", exc_info=True)
            return None
        slug = info.get("slug")
        return f"{slug}[bot]" if slug else None

    async def blob(self, gh: GitHubClient, owner: str, repo: str, sha: str) -> bytes:
        """A file's content by blob sha, from the cache or `GET .../git/blobs/{sha}`."""
        cached = self.blobs.get(sha)
        if cached is not None:
            return cached
        data = await gh.getitem(
            "/repos/{owner}/{repo}/git/blobs/{sha}", {"owner": owner, "repo": repo, "sha": sha}
        )
        content = _decode_content(data)
        self.blobs.put(sha, content)
        return content


def _decode_content(data: Mapping[str, Any]) -> bytes:
    """The bytes of a blob or contents API answer (base64 by default)."""
    raw = data.get("content") or ""
    if data.get("encoding", "base64") == "base64":
        return base64.b64decode(raw)
    return str(raw).encode("utf-8")


decode_content = _decode_content
