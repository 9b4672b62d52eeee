"""Webhook intake: verify, deduplicate, acknowledge at once, dispatch in the background."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import cachetools
from aiohttp import web
from gidgethub import BadRequest, ValidationFailure, routing, sansio

logger = logging.getLogger(__name__)

#: GitHub does not deliver payloads above 25 MB, so larger bodies are not from GitHub.
MAX_BODY_BYTES = 25 * 1024 * 1024
#: Connections the kernel queues while the server is busy (GitHub opens one per delivery).
#: aiohttp's default of 128 dropped part of a burst of 200, whose connects were then retried
#: by TCP after 1 s. The kernel caps it at `net.core.somaxconn`.
LISTEN_BACKLOG = 1024
#: Redeliveries reuse X-GitHub-Delivery and are possible for 3 days (7 on GHES).
SEEN_DELIVERIES_MAX = 50_000
SEEN_DELIVERIES_TTL = 8 * 24 * 3600

#: `dispatch(event, installation_id)` runs the routers for one verified delivery.
Dispatch = Callable[[sansio.Event, int], Awaitable[None]]
#: Shared mode: store a delivery (and its installation id); False if already seen.
Store = Callable[[sansio.Event, int], Awaitable[bool]]
#: Seconds a web process waits for Redis to store one delivery before answering 503.
STORE_TIMEOUT = 3.0


class BackgroundTasks:
    """Fire-and-forget tasks that are still awaitable as a group (for shutdown and tests)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Awaitable[Any], *, name: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def __len__(self) -> int:
        return len(self._tasks)

    def cancel(self) -> int:
        """Cancel the tasks still running; returns how many there were."""
        pending = [task for task in self._tasks if not task.done()]
        for task in pending:
            task.cancel()
        return len(pending)

    async def join(self) -> None:
        while self._tasks:
            # wait() (not gather()) so that cancelling the waiter never cancels the tasks
            await asyncio.wait(list(self._tasks))


def event_log_extra(event: sansio.Event) -> dict[str, Any]:
    """The structured log fields of a delivery."""
    data = event.data if isinstance(event.data, dict) else {}
    extra: dict[str, Any] = {
        "delivery": event.delivery_id,
        "event": event.event,
        "action": data.get("action"),
        "installation": (data.get("installation") or {}).get("id"),
        "repo": (data.get("repository") or {}).get("full_name"),
    }
    pull = data.get("pull_request") or data.get("issue")
    if isinstance(pull, dict) and pull.get("number") is not None:
        extra["pr"] = pull["number"]
    return extra


class WebhookIntake:
    """The `POST /webhook` handler."""

    def __init__(
        self,
        *,
        secret: str,
        router: routing.Router,
        dispatch: Dispatch,
        background: BackgroundTasks,
    ) -> None:
        self._secret = secret
        self._router = router
        self._dispatch = dispatch
        self._background = background
        self._seen: cachetools.TTLCache[str, bool] = cachetools.TTLCache(
            maxsize=SEEN_DELIVERIES_MAX, ttl=SEEN_DELIVERIES_TTL
        )
        #: Set when the server shuts down: deliveries are refused with 503.
        self.draining = False
        #: Shared mode: stores a verified delivery for the workers (`bot.app.shared`).
        self.store: Store | None = None

    async def handle(self, request: web.Request) -> web.Response:
        if self.draining:
            # Shutting down: GitHub records the failure and the delivery can be redelivered.
            return answer(503, "shutting down; redeliver later")
        delivery = await read_delivery(request, self._secret)
        if isinstance(delivery, web.Response):
            return delivery
        if self.store is not None:
            return await self.take_shared(delivery)
        return self.take(delivery)

    async def take_shared(self, event: sansio.Event) -> web.Response:
        """Shared mode: store a verified delivery in Redis for the workers, then answer.

        Never 202 for work that could not be stored: with Redis unreachable the answer is
        503, GitHub records the failure, and the redelivery finds it.
        """
        extra = event_log_extra(event)
        taken = classify(event, self._router)
        if isinstance(taken, web.Response):
            return taken
        try:
            async with asyncio.timeout(STORE_TIMEOUT):
                stored = await self.store(event, taken)  # type: ignore[misc]
        except Exception as exc:  # Redis unreachable or failing: nothing was stored
            logger.error("cannot store the delivery", extra={**extra, "error": type(exc).__name__})
            return answer(503, "cannot store the delivery right now; redeliver later")
        if not stored:
            logger.info("redelivery ignored", extra=extra)
            return answer(200, "already seen")
        logger.info("webhook accepted", extra=extra)
        return answer(202, "accepted")

    def take(self, event: sansio.Event) -> web.Response:
        """Queue a verified delivery (unless it is a redelivery) and say how it was taken."""
        extra = event_log_extra(event)
        if event.delivery_id in self._seen:
            logger.info("redelivery ignored", extra=extra)
            return answer(200, "already seen")
        self._seen[event.delivery_id] = True
        taken = classify(event, self._router)
        if isinstance(taken, web.Response):
            return taken
        logger.info("webhook accepted", extra=extra)
        self._background.spawn(self._run(event, taken, extra), name=f"delivery {event.delivery_id}")
        return answer(202, "accepted")

    async def _run(self, event: sansio.Event, installation_id: int, extra: dict[str, Any]) -> None:
        try:
            await self._dispatch(event, installation_id)
        except Exception:
            # Forget the delivery so that a manual redelivery from GitHub is handled again.
            self._seen.pop(event.delivery_id, None)
            logger.exception("webhook handler failed", extra=extra)


async def read_delivery(request: web.Request, secret: str) -> sansio.Event | web.Response:
    """The verified delivery of `request`, or the answer that refuses it (413, 401, 400)."""
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return answer(413, "payload too large")
    # Only the SHA-256 signature counts; the legacy SHA-1 `X-Hub-Signature` is ignored.
    signature = request.headers.get("x-hub-signature-256")
    if not signature:
        return answer(401, "missing X-Hub-Signature-256")
    try:
        if not signature.isascii():  # hmac.compare_digest raises TypeError on non-ASCII
            raise ValidationFailure("non-ASCII signature")
        sansio.validate_event(body, signature=signature, secret=secret)
    except ValidationFailure:
        logger.warning("webhook signature mismatch", extra=_header_extra(request))
        return answer(401, "bad signature")
    if not request.headers.get("x-github-event") or not request.headers.get("x-github-delivery"):
        return answer(400, "missing X-GitHub-Event or X-GitHub-Delivery")
    try:
        event = _event(request, body)
    except (BadRequest, ValueError, LookupError):
        # LookupError: an unknown charset in Content-Type; ValueError includes bad UTF-8.
        return answer(400, "body is not a JSON webhook payload")
    if not isinstance(event.data, dict):
        return answer(400, "body is not a JSON object")
    return event


def classify(event: sansio.Event, router: routing.Router) -> web.Response | int:
    """The installation whose handlers take `event`, or the answer when none does."""
    if event.event == "ping":
        logger.info("ping", extra={**event_log_extra(event), "zen": event.data.get("zen")})
        return answer(200, "pong")
    if not router.fetch(event):
        logger.debug("event not handled", extra=event_log_extra(event))
        return answer(200, "ignored")
    installation_id = (event.data.get("installation") or {}).get("id")
    if not isinstance(installation_id, int):
        return answer(400, "payload has no installation id")
    return installation_id


def _event(request: web.Request, body: bytes) -> sansio.Event:
    """The delivery as a gidgethub `Event` (the signature is already verified).

    GitHub Apps deliver `application/json`; that body is decoded here, because gidgethub's
    `Event.from_http` parses every Content-Type with `email.message` (a third of the CPU of
    answering a delivery). Any other Content-Type goes through `from_http`.
    """
    event_name = request.headers["x-github-event"]
    delivery_id = request.headers["x-github-delivery"]
    if request.headers.get("content-type", "").strip().lower() == "application/json":
        return sansio.Event(
            json.loads(body.decode("utf-8")), event=event_name, delivery_id=delivery_id
        )
    headers = {k.lower(): v for k, v in request.headers.items()}
    for signature in ("x-hub-signature", "x-hub-signature-256"):
        headers.pop(signature, None)  # verified by the caller
    return sansio.Event.from_http(headers, body)


def _header_extra(request: web.Request) -> dict[str, Any]:
    return {
        "delivery": request.headers.get("x-github-delivery"),
        "event": request.headers.get("x-github-event"),
    }


def answer(status: int, message: str) -> web.Response:
    return web.Response(
        body=_answer_body(status, message), status=status, content_type="application/json"
    )


@functools.cache
def _answer_body(status: int, message: str) -> bytes:
    """The JSON body of an answer (a handful of fixed messages: encoded once)."""
    return json.dumps({"status": status, "message": message}).encode()
