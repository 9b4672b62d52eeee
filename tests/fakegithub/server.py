"""The fake GitHub REST API as a real aiohttp application served on loopback.

:class:`FakeGitHub` = the in-memory state of :class:`~.state.GitHubState` + an aiohttp app whose
middleware does what GitHub does around every endpoint: authentication (app JWT or installation
token), rate-limit headers, ETags and 304s, plus what tests need: fault injection, injected
latency and a request log. The endpoints themselves live in :mod:`.api`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jwt
from aiohttp import web

from .faults import FaultInjector
from .log import RequestLog, RequestRecord
from .state import App, GitHubState, Token

FAKE_KEY: web.AppKey[FakeGitHub] = web.AppKey("fake_github")
DOCS = "https://docs.github.com/rest"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """An error answer in GitHub's JSON shape: ``{"message", "errors"?, "documentation_url"}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        errors: Any = None,
        headers: dict[str, str] | None = None,
        documentation_url: str = DOCS,
    ) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.payload: dict[str, Any] = {"message": message}
        if errors is not None:
            self.payload["errors"] = errors
        self.payload["documentation_url"] = documentation_url
        self.payload["status"] = str(status)
        self.headers = headers or {}

    def response(self) -> web.Response:
        """The JSON response for this error."""
        return json_response(self.payload, status=self.status, headers=self.headers)


def json_response(
    data: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON response with GitHub's content type."""
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers=headers,
        content_type="application/json",
        charset="utf-8",
    )


@dataclass
class Auth:
    """Who made a request: an installation token, an app JWT, or nobody."""

    kind: str  # "token" | "jwt" | "none"
    token: Token | None = None
    app: App | None = None

    @property
    def app_id(self) -> int | None:
        """The app behind the credentials, if any."""
        if self.token is not None:
            return self.token.app_id
        return self.app.id if self.app is not None else None


@dataclass
class RateBucket:
    """Primary rate limit state for one set of credentials (``core`` resource)."""

    limit: int
    used: int
    reset: int

    @property
    def remaining(self) -> int:
        """Requests left in the current window."""
        return max(self.limit - self.used, 0)


class FakeGitHub(GitHubState):
    """A stateful fake of GitHub's REST API for one GitHub App.

    Construct it, then serve :meth:`make_app` (the ``fake_github`` fixture does this with
    pytest-aiohttp's ``aiohttp_server``) or call :meth:`start`. ``url`` is the API base URL to give
    to gidgethub's ``base_url`` (it includes ``base_path``, e.g. ``/api/v3`` for GHES layout).
    """

    def __init__(
        self,
        *,
        base_path: str = "",
        latency: float = 0.0,
        rate_limit: int = 5000,
        html_url: str | None = None,
        **state_options: Any,
    ) -> None:
        super().__init__(**state_options)
        self.base_path = "/" + base_path.strip("/") if base_path.strip("/") else ""
        #: seconds added to every call (a benchmark knob; default 0)
        self.latency = latency
        #: primary rate limit of new buckets (GitHub: 5000/h for installation tokens)
        self.rate_limit = rate_limit
        self.rate_buckets: dict[str, RateBucket] = {}
        self.faults = FaultInjector()
        self.log = RequestLog()
        self.url = "http://127.0.0.1" + self.base_path
        self._html_url = html_url
        self.organizations: set[str] = {"acme", self.app.owner}
        self.in_flight = 0
        self.max_in_flight = 0
        self._runner: web.AppRunner | None = None

    # -- serving ----------------------------------------------------------------------------------

    @property
    def html_url(self) -> str:
        """Base of web URLs: ``https://github.com``, or the server root in GHES layout."""
        if self._html_url is not None:
            return self._html_url
        if self.base_path:
            return self.url[: -len(self.base_path)]
        return "https://github.com"

    @property
    def root_url(self) -> str:
        """``scheme://host:port`` of the served fake (no API prefix)."""
        return self.url[: -len(self.base_path)] if self.base_path else self.url

    def bind(self, root_url: str) -> None:
        """Record where the app is served (``http://127.0.0.1:PORT``); sets :attr:`url`."""
        self.url = root_url.rstrip("/") + self.base_path

    def make_app(self) -> web.Application:
        """Build the aiohttp application serving the fake API under :attr:`base_path`."""
        from . import api  # the endpoints import this module

        app = web.Application(middlewares=[self._middleware], client_max_size=50 * 1024 * 1024)
        app[FAKE_KEY] = self
        for method, template, handler, _auth in api.ROUTES:
            app.router.add_route(method, self.base_path + template, handler)
        for method, template, handler, _auth in api.WEB_ROUTES:
            app.router.add_route(method, template, handler)
        from .graphql_api import graphql_endpoint

        app.router.add_route("POST", self.graphql_path, graphql_endpoint)
        return app

    @property
    def graphql_path(self) -> str:
        """Where GitHub serves GraphQL: `/graphql`, or `/api/graphql` beside `/api/v3`."""
        if self.base_path.endswith("/v3"):
            return self.base_path[: -len("/v3")] + "/graphql"
        return self.base_path + "/graphql"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve the fake on ``host:port`` (0 = ephemeral) outside pytest; returns :attr:`url`."""
        self._runner = web.AppRunner(self.make_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        bound_port = sockets[0].getsockname()[1]
        self.bind(f"http://{host}:{bound_port}")
        return self.url

    async def close(self) -> None:
        """Stop a server started with :meth:`start`."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- rate limits ------------------------------------------------------------------------------

    def rate_bucket(self, key: str) -> RateBucket:
        """The rate-limit bucket of ``key`` (a token string, ``app:<id>`` or ``anon``)."""
        now = self.clock.now()
        bucket = self.rate_buckets.get(key)
        if bucket is None or now >= bucket.reset:
            bucket = RateBucket(self.rate_limit, 0, int(now) + 3600)
            self.rate_buckets[key] = bucket
        return bucket

    def set_rate_limit(self, token: str, *, remaining: int, reset_in: int = 3600) -> RateBucket:
        """Set how many calls ``token`` has left (0 => 403 'API rate limit exceeded')."""
        bucket = self.rate_bucket(token)
        bucket.used = bucket.limit - remaining
        bucket.reset = int(self.clock.now()) + reset_in
        return bucket

    def _rate_headers(self, bucket: RateBucket) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(bucket.limit),
            "x-ratelimit-remaining": str(bucket.remaining),
            "x-ratelimit-used": str(bucket.used),
            "x-ratelimit-reset": str(bucket.reset),
            "x-ratelimit-resource": "core",
        }

    # -- authentication ---------------------------------------------------------------------------

    def _credentials(self, request: web.Request) -> tuple[str, str] | None:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if not value:
            return None
        return scheme.lower(), value.strip()

    def verify_jwt(self, token: str) -> App:
        """Verify an app JWT like GitHub: RS256 by the app's key, ``iss``, ``iat``/``exp``."""
        # PyJWS checks only the signature: PyJWT's claim checks would reject an integer ``iss``,
        # which GitHub accepts (the app id as a number).
        jws = jwt.PyJWS()
        try:
            header = jws.get_unverified_header(token)
            claims = json.loads(jws.decode(token, options={"verify_signature": False}))
        except (jwt.PyJWTError, ValueError) as exc:
            raise ApiError(401, "A JSON web token could not be decoded") from exc
        issuer = str(claims.get("iss", "")) if isinstance(claims, dict) else ""
        app = next((a for a in self.apps.values() if issuer in (str(a.id), a.client_id)), None)
        if app is None or header.get("alg") != "RS256":
            raise ApiError(401, "A JSON web token could not be decoded")
        try:
            jws.decode(token, app.public_key_pem, algorithms=["RS256"])
        except jwt.PyJWTError as exc:
            raise ApiError(401, "A JSON web token could not be decoded") from exc
        now = self.clock.now()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int | float) or iat > now + 60:
            raise ApiError(
                401,
                "'Issued at' claim ('iat') must be an Integer representing the time that the "
                "assertion was issued.",
            )
        if not isinstance(exp, int | float) or exp <= now:
            raise ApiError(
                401,
                "'Expiration time' claim ('exp') must be a numeric value representing the future "
                "time at which the assertion expires.",
            )
        if exp - iat > 600:
            raise ApiError(401, "'Expiration time' claim ('exp') is too far in the future.")
        return app

    def _authenticate(self, request: web.Request, required: str) -> Auth:
        creds = self._credentials(request)
        if required == "none":
            return Auth("none")
        if creds is None:
            if required == "any":
                return Auth("none")
            if required == "jwt":
                raise ApiError(
                    401,
                    "You must authenticate with an access token authorized to a GitHub App in "
                    "order to list installations",
                )
            raise ApiError(401, "Requires authentication")
        scheme, value = creds
        if required == "jwt":
            if scheme != "bearer":
                raise ApiError(401, "A JSON web token could not be decoded")
            return Auth("jwt", app=self.verify_jwt(value))
        token = self.tokens.get(value) if scheme in ("token", "bearer") else None
        if token is None or not token.valid(self.clock.now()):
            raise ApiError(401, "Bad credentials")
        inst = self.installations.get(token.installation_id)
        if inst is None or inst.suspended:
            raise ApiError(403, "This installation has been suspended")
        return Auth("token", token=token, app=self.apps.get(token.app_id))

    # -- the middleware ---------------------------------------------------------------------------

    def _route_of(self, request: web.Request) -> tuple[str, str]:
        """(route template without prefix, required auth) of a request."""
        from . import api

        resource = request.match_info.route.resource
        canonical = resource.canonical if resource is not None else ""
        template = (
            canonical[len(self.base_path) :] if canonical.startswith(self.base_path) else canonical
        )
        auth = api.AUTH_BY_ROUTE.get((request.method, template))
        if auth is None:
            return f"{request.method} UNMATCHED", "none"
        return f"{request.method} {template}", auth

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.monotonic()
        path = (
            request.path[len(self.base_path) :]
            if request.path.startswith(self.base_path)
            else request.path
        )
        route, required = self._route_of(request)
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", "replace")
        request["json"] = body
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        auth_kind = "none"
        fault_fired = False
        bucket: RateBucket | None = None
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            fault = self.faults.pick(request.method, path, route)
            if fault is not None:
                fault_fired = True
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                if fault.drop:
                    self._record(request, path, route, body, 0, started, auth_kind, True)
                    if request.transport is not None:
                        request.transport.close()
                    raise asyncio.CancelledError  # nothing is sent: the client sees a disconnect
                if fault.status is not None:
                    payload = (
                        fault.json
                        if fault.json is not None
                        else {
                            "message": web.Response(status=fault.status).reason,
                            "documentation_url": DOCS,
                        }
                    )
                    response: web.StreamResponse = json_response(payload, status=fault.status)
                    bucket = self._bucket_for(request)
                    self._finish(response, bucket, counted=True)
                    response.headers.update(fault.headers)
                    self._record(request, path, route, body, fault.status, started, auth_kind, True)
                    return response
            try:
                if route.endswith("UNMATCHED"):
                    raise ApiError(404, "Not Found")
                auth = self._authenticate(request, required)
                auth_kind = auth.kind
                request["auth"] = auth
                bucket = self._bucket_for(request, auth)
                if bucket is not None and bucket.remaining <= 0 and route != "GET /rate_limit":
                    who = f"installation ID {auth.token.installation_id}" if auth.token else "app"
                    raise ApiError(
                        403,
                        f"API rate limit exceeded for {who}.",
                        documentation_url=DOCS + "/overview/rate-limits-for-the-rest-api",
                    )
                response = await handler(request)
            except ApiError as err:
                auth_kind = (
                    auth_kind
                    if auth_kind != "none"
                    else ("invalid" if err.status == 401 else "none")
                )
                response = err.response()
            counted = route != "GET /rate_limit"
            if bucket is None:  # authentication failed: GitHub still sends rate-limit headers
                bucket = self._bucket_for(request)
            if (
                request.method == "GET"
                and response.status == 200
                and isinstance(response, web.Response)
            ):
                etag = self._etag(request, response)
                response.headers["ETag"] = etag
                if self._matches(request.headers.get("If-None-Match"), etag):
                    response = web.Response(status=304, headers={"ETag": etag})
                    counted = False  # conditional hits do not count against the limit
            self._finish(response, bucket, counted=counted)
            self._record(
                request, path, route, body, response.status, started, auth_kind, fault_fired
            )
            return response
        finally:
            self.in_flight -= 1

    def _bucket_for(self, request: web.Request, auth: Auth | None = None) -> RateBucket | None:
        if auth is None:
            creds = self._credentials(request)
            if creds is not None and creds[1] in self.tokens:
                return self.rate_bucket(creds[1])
            return self.rate_bucket("anon")
        if auth.token is not None:
            return self.rate_bucket(auth.token.token)
        if auth.app is not None:
            return self.rate_bucket(f"app:{auth.app.id}")
        return self.rate_bucket("anon")

    def _finish(
        self, response: web.StreamResponse, bucket: RateBucket | None, *, counted: bool
    ) -> None:
        if bucket is not None:
            if counted:
                bucket.used += 1
            response.headers.update(self._rate_headers(bucket))
        response.headers.setdefault("X-GitHub-Request-Id", uuid.uuid4().hex[:20].upper())
        response.headers.setdefault("X-GitHub-Media-Type", "github.v3; format=json")
        if self.base_path:
            response.headers.setdefault("X-GitHub-Enterprise-Version", "3.16.0")

    @staticmethod
    def _etag(request: web.Request, response: web.Response) -> str:
        digest = hashlib.sha256(response.body if isinstance(response.body, bytes) else b"")
        digest.update(request.headers.get("Accept", "").encode())
        return f'W/"{digest.hexdigest()[:40]}"'

    @staticmethod
    def _matches(if_none_match: str | None, etag: str) -> bool:
        if not if_none_match:
            return False
        candidates = {c.strip() for c in if_none_match.split(",")}
        bare = etag.removeprefix("W/")
        return (
            "*" in candidates
            or etag in candidates
            or bare in candidates
            or f"W/{bare}" in candidates
        )

    def _record(
        self,
        request: web.Request,
        path: str,
        route: str,
        body: Any,
        status: int,
        started: float,
        auth: str,
        fault: bool,
    ) -> None:
        self.log.append(
            RequestRecord(
                method=request.method,
                path=path,
                query=dict(request.query),
                json=body,
                status=status,
                route=route,
                started=started,
                duration=time.monotonic() - started,
                auth=auth,
                fault=fault,
            )
        )
