"""The pace of GitHub calls, per installation, shared by every process in shared mode.

GitHub's secondary limits and advice (GITHUB-2.md §1): writes at least about a second apart,
at most 80 content-generating requests a minute and 500 an hour, at most 900 points a minute
on one REST endpoint (a read costs 1, a write 5), and a `retry-after` means "nothing until
then". Each limit is a bucket (`Rate`, the generic cell rate algorithm: a burst, then one unit
per interval). A call reserves its slot in every bucket it is charged to, atomically, then
sleeps until the slot; the buckets live in memory (`LocalBuckets`, the embedded server) or in
Redis (`RedisBuckets`, shared mode), so that all processes of an installation share one pace.

Writes of one process wait in a priority queue per installation (`Priority`): check-run
creations first, so that a burst of pull requests shows every check run before it finishes
the first ones; then check-run updates; then reviews and comments.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import heapq
import itertools
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Protocol

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


class Priority(IntEnum):
    """The order in which one installation's waiting writes go out (lowest first)."""

    CREATE = 0  # a check run appears: the pull request shows that it is being audited
    UPDATE = 1  # a check run completes: a required check stops waiting
    CONTENT = 2  # reviews, comments, replies: they follow their check run


@dataclass(frozen=True)
class Rate:
    """At most `burst` units at once, then one unit per `interval` seconds (GCRA)."""

    name: str
    interval: float
    burst: int


#: "Pause between mutative requests ... at least one second" after a short burst.
WRITES = Rate("writes", 1.0, 5)
#: "No more than 80 content-generating requests per minute and ... 500 per hour".
CONTENT_PER_MINUTE = Rate("content-minute", 60 / 80, 80)
CONTENT_PER_HOUR = Rate("content-hour", 3600 / 500, 500)
#: "No more than 900 points per minute ... for REST API endpoints" (per endpoint).
ENDPOINT_POINTS = Rate("points", 60 / 900, 900)
READ_POINTS, WRITE_POINTS = 1, 5


@dataclass(frozen=True)
class Charge:
    """`cost` units of the bucket `key` (under one installation) that follows `rate`."""

    key: str
    rate: Rate
    cost: int = 1


# Endpoints that "trigger notifications" (GitHub's OpenAPI note for content creation).
_CONTENT = re.compile(
    r"/(issues/\{id\}/comments|pulls/\{id\}/reviews|pulls/\{id\}/comments(/\{id\}/replies)?"
    r"|commits/\{id\}/comments|issues|pulls)$"
)
_ID_SEGMENT = re.compile(r"^(\d+|[0-9a-f]{40}|[0-9a-f]{64})$")
_GRAPHQL_CONTENT = re.compile(r"\b(add\w*(Comment|Reply|Review)\w*|submitPullRequestReview)\b")


def endpoint(url: str) -> str:
    """The endpoint a URL names: host, query, owner/repo and ids left out."""
    path = url.split("?", 1)[0]
    if "://" in path:
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    parts = path.strip("/").split("/")
    if parts[:2] == ["api", "v3"]:  # GitHub Enterprise Server
        parts = parts[2:]
    if len(parts) >= 3 and parts[0] == "repos":
        parts[1:3] = ["{owner}", "{repo}"]
    return "/" + "/".join("{id}" if _ID_SEGMENT.match(part) else part for part in parts)


def graphql_operation(body: bytes) -> str:
    """The GraphQL document of a request body ('' when it is not one)."""
    try:
        document = json.loads(body or b"{}").get("query", "")
    except (ValueError, AttributeError):
        return ""
    return document if isinstance(document, str) else ""


def classify(
    method: str, url: str, body: bytes = b"", *, writes: Rate = WRITES
) -> tuple[bool, Priority, list[Charge]]:
    """(is a write, its priority, the buckets it is charged to) for one GitHub call."""
    name = endpoint(url)
    content = False
    if name.endswith("/graphql"):
        document = graphql_operation(body).lstrip()
        write = document.startswith("mutation")
        content = write and bool(_GRAPHQL_CONTENT.search(document))
    else:
        write = method not in ("GET", "HEAD", "OPTIONS")
        content = write and method == "POST" and bool(_CONTENT.search(name))
    charges = [Charge(f"points:{name}", ENDPOINT_POINTS, WRITE_POINTS if write else READ_POINTS)]
    if not write:
        return False, Priority.CONTENT, charges
    charges.append(Charge("writes", writes))
    if content:
        charges += [
            Charge("content-minute", CONTENT_PER_MINUTE),
            Charge("content-hour", CONTENT_PER_HOUR),
        ]
        return True, Priority.CONTENT, charges
    if name.endswith("/check-runs") and method == "POST":
        return True, Priority.CREATE, charges
    return True, Priority.UPDATE, charges


class Buckets(Protocol):
    """Where the buckets live."""

    async def reserve(
        self, scope: str, charges: Sequence[Charge], priority: Priority | None = None
    ) -> float | None:
        """Reserve the earliest slot that every charge (and any pause) allows; the seconds
        until it. With the `priority` of this process's most urgent waiting write: None
        (nothing reserved) while another process waits with a more urgent one."""

    async def idle(self, scope: str) -> None:
        """This process has no more writes waiting for `scope`."""

    async def pause(self, scope: str, seconds: float) -> None:
        """Nothing for `scope` before `seconds` from now (a `retry-after`)."""


def _slot(
    now: float, pause_until: float, tats: Sequence[float], charges: Sequence[Charge]
) -> float:
    """The GCRA: the earliest time at or after `now` that every bucket allows."""
    start = max(now, pause_until)
    for tat, charge in zip(tats, charges, strict=True):
        rate = charge.rate
        allowed = tat + (charge.cost - 1) * rate.interval - (rate.burst - 1) * rate.interval
        start = max(start, allowed)
    return start


class LocalBuckets:
    """The buckets of one process (the embedded server)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._tats: dict[str, float] = {}
        self._pauses: dict[str, float] = {}

    async def reserve(
        self, scope: str, charges: Sequence[Charge], priority: Priority | None = None
    ) -> float | None:
        now = self.clock()
        keys = [f"{scope}:{c.key}" for c in charges]
        tats = [self._tats.get(key, 0.0) for key in keys]
        start = _slot(now, self._pauses.get(scope, 0.0), tats, charges)
        for key, tat, charge in zip(keys, tats, charges, strict=True):
            self._tats[key] = max(tat, start) + charge.cost * charge.rate.interval
        return start - now

    async def idle(self, scope: str) -> None:
        return None  # one process: its own queue already orders its writes

    async def pause(self, scope: str, seconds: float) -> None:
        until = self.clock() + seconds
        self._pauses[scope] = max(self._pauses.get(scope, 0.0), until)


#: A process that has not asked for its waiting write this long (seconds) is not waited for.
WAITING_STALE_SECONDS = 10

# KEYS[1]: the pause key; KEYS[2]: the hash of each process's most urgent waiting write
# ("priority:seen at"); KEYS[3..]: bucket keys. ARGV: this process, its priority (-1: a read),
# then interval, burst, cost per bucket. The clock is the Redis server's, so that every
# process reads the same time. Returns the seconds until the slot, or "yield".
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local me, priority = ARGV[1], tonumber(ARGV[2])
if priority >= 0 then
  redis.call('HSET', KEYS[2], me, priority .. ':' .. now)
  redis.call('PEXPIRE', KEYS[2], 60000)
  local all = redis.call('HGETALL', KEYS[2])
  for i = 1, #all, 2 do
    if all[i] ~= me then
      local sep = string.find(all[i + 1], ':')
      local other = tonumber(string.sub(all[i + 1], 1, sep - 1))
      local seen = tonumber(string.sub(all[i + 1], sep + 1))
      if other < priority and now - seen < STALE then
        return 'yield'
      end
    end
  end
end
local start = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
local tats = {}
for i = 3, #KEYS do
  local j = 2 + 3 * (i - 3)
  local interval, burst = tonumber(ARGV[j + 1]), tonumber(ARGV[j + 2])
  local cost = tonumber(ARGV[j + 3])
  tats[i] = tonumber(redis.call('GET', KEYS[i]) or '0')
  start = math.max(start, tats[i] + (cost - 1) * interval - (burst - 1) * interval)
end
for i = 3, #KEYS do
  local j = 2 + 3 * (i - 3)
  local interval, cost = tonumber(ARGV[j + 1]), tonumber(ARGV[j + 3])
  local tat = math.max(tats[i], start) + cost * interval
  local ttl = math.ceil((tat - now) * 1000) + 1000
  redis.call('SET', KEYS[i], string.format('%.6f', tat), 'PX', ttl)
end
return string.format('%.6f', start - now)
""".replace("STALE", str(WAITING_STALE_SECONDS))

_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local until_ = now + tonumber(ARGV[1])
if until_ > tonumber(redis.call('GET', KEYS[1]) or '0') then
  local ttl = math.ceil(tonumber(ARGV[1]) * 1000) + 1000
  redis.call('SET', KEYS[1], string.format('%.6f', until_), 'PX', ttl)
end
return 1
"""

REDIS_PREFIX = "txaudit:pace:"


class RedisBuckets:
    """The buckets in Redis, shared by every web and worker process of the deployment.

    When Redis cannot be reached, this process paces on its own (`LocalBuckets`) until it can:
    an audit never fails because the pace could not be shared.
    """

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self._reserve = redis.register_script(_RESERVE)
        self._pause = redis.register_script(_PAUSE)
        self.fallback = LocalBuckets()
        self.me = uuid.uuid4().hex

    async def reserve(
        self, scope: str, charges: Sequence[Charge], priority: Priority | None = None
    ) -> float | None:
        prefix = f"{REDIS_PREFIX}{scope}:"
        keys = [prefix + "pause", prefix + "waiting"] + [prefix + c.key for c in charges]
        args: list[float | str] = [self.me, -1 if priority is None else int(priority)]
        for charge in charges:
            args += [charge.rate.interval, charge.rate.burst, charge.cost]
        try:
            answer = await self._reserve(keys=keys, args=args)
        except Exception as exc:  # noqa: BLE001 - Redis down: pace locally, never fail the call
            logger.warning("pacing without Redis", extra={"error": exc.__class__.__name__})
            return await self.fallback.reserve(scope, charges)
        return None if answer in (b"yield", "yield") else float(answer)

    async def idle(self, scope: str) -> None:
        try:
            await self.redis.hdel(f"{REDIS_PREFIX}{scope}:waiting", self.me)
        except Exception:  # noqa: BLE001 - the entry goes stale by itself
            pass

    async def pause(self, scope: str, seconds: float) -> None:
        await self.fallback.pause(scope, seconds)
        try:
            await self._pause(keys=[f"{REDIS_PREFIX}{scope}:pause"], args=[seconds])
        except Exception as exc:  # noqa: BLE001
            logger.warning("could not share a retry-after", extra={"error": exc.__class__.__name__})


@dataclass(order=True)
class _Waiter:
    priority: int
    seq: int
    future: asyncio.Future[None] = field(compare=False)
    charges: Sequence[Charge] = field(compare=False)


_granted: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar(
    "txaudit_granted_write", default=None
)


class Pacer:
    """Reads reserve their slot directly; writes queue by `Priority`, per installation."""

    def __init__(self, buckets: Buckets, *, sleep: Sleep, writes: Rate = WRITES) -> None:
        self.buckets = buckets
        self.sleep = sleep
        self.writes = writes
        #: Off when writes are not spaced (GitHub Enterprise Server without secondary limits).
        self.enabled = writes.interval > 0
        self._queues: dict[str, list[_Waiter]] = {}
        self._dispatchers: dict[str, asyncio.Task[None]] = {}
        self._seq = itertools.count()
        #: (scope, priority) of every write turn granted, in order (for tests and benchmarks).
        self.granted: list[tuple[str, Priority]] = []

    async def before(self, scope: str, method: str, url: str, body: bytes = b"") -> None:
        """Wait until a call may go out."""
        if not self.enabled:
            return
        write, priority, charges = classify(method, url, body, writes=self.writes)
        if write:
            granted = _granted.get()
            if granted is not None and not granted[0]:
                granted[0] = True  # the turn `turn()` waited for; a retry waits again
                return
            await self._wait_turn(scope, priority, charges)
            return
        delay = await self.buckets.reserve(scope, charges)
        if delay:
            await self.sleep(delay)

    @contextlib.asynccontextmanager
    async def turn(self, scope: str, method: str, url: str) -> AsyncIterator[None]:
        """Wait for the turn of a write first, decide what to write after: the first write
        made inside goes out at once (a check run is created completed when its audit
        finished while the creation waited)."""
        if self.enabled:
            _, priority, charges = classify(method, url, writes=self.writes)
            await self._wait_turn(scope, priority, charges)
        token = _granted.set([not self.enabled])
        try:
            yield
        finally:
            _granted.reset(token)

    async def pause(self, scope: str, seconds: float) -> None:
        """A `retry-after` (or a rate-limit reset) that every process of `scope` honours."""
        if self.enabled and seconds > 0:
            await self.buckets.pause(scope, seconds)

    async def _wait_turn(self, scope: str, priority: Priority, charges: Sequence[Charge]) -> None:
        loop = asyncio.get_running_loop()
        waiter = _Waiter(int(priority), next(self._seq), loop.create_future(), charges)
        heapq.heappush(self._queues.setdefault(scope, []), waiter)
        task = self._dispatchers.get(scope)
        if task is None or task.done():
            self._dispatchers[scope] = asyncio.ensure_future(self._dispatch(scope))
        try:
            await waiter.future
        except asyncio.CancelledError:
            waiter.future.cancel()  # the dispatcher skips it
            raise

    async def _dispatch(self, scope: str) -> None:
        """Grant one write at a time, to the most urgent waiter when its slot comes."""
        queue = self._queues[scope]
        while queue:
            head = queue[0]
            if head.future.done():
                heapq.heappop(queue)
                continue
            delay = await self.buckets.reserve(scope, head.charges, Priority(head.priority))
            if delay is None:  # another process waits with a more urgent write: after it
                await self.sleep(max(self.writes.interval / 2, 0.01))
                continue
            if delay > 0:
                await self.sleep(delay)
            waiter = None
            while queue:
                waiter = heapq.heappop(queue)
                if not waiter.future.done():
                    break
                waiter = None
            if waiter is None:
                continue
            extra = [c for c in waiter.charges if c not in head.charges]
            if extra:  # a more urgent write came in meanwhile and is charged elsewhere too
                delay = await self.buckets.reserve(scope, extra)
                if delay:
                    await self.sleep(delay)
            self.granted.append((scope, Priority(waiter.priority)))
            waiter.future.set_result(None)
        await self.buckets.idle(scope)
