"""Failed webhook deliveries, asked for again: GitHub never retries a delivery by itself.

At start-up and then every `TXAUDIT_REDELIVER_INTERVAL` seconds, `Redeliverer.look_once`:

1. lists the app's recent deliveries (`GET /app/hook/deliveries`, app JWT, newest first,
   paginated by cursor), back to the newest one the previous look saw, at most
   `MAX_PAGES` pages of 100;
2. keeps the guids whose every attempt in that window failed (no 2xx answer) and that
   were not redelivered `MAX_ATTEMPTS_PER_GUID` times already;
3. asks GitHub for each again (`POST /app/hook/deliveries/{id}/attempts`), at most
   `MAX_REDELIVERIES` per look.

A guid whose redelivery also fails shows up again in the next look. The marker ("how far
the last look got") and a lock live in a `LookState`: in memory in the embedded mode, in
Redis in shared mode, where the lock lets one replica look at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any, Protocol

from gidgethub import HTTPException

from bot.app.github import GitHub

logger = logging.getLogger(__name__)

MAX_PAGES = 5
MAX_REDELIVERIES = 50
MAX_ATTEMPTS_PER_GUID = 3
#: Without a marker (first look), only deliveries this recent are considered.
LOCK_SECONDS = 120


class LookState(Protocol):
    """Where the looks keep their marker, and their lock."""

    def lock(self) -> contextlib.AbstractAsyncContextManager[bool]:
        """Held while one look runs; yields False when another replica holds it."""
        ...

    async def marker(self) -> int | None:
        """The newest delivery id that the previous look saw."""
        ...

    async def set_marker(self, delivery_id: int) -> None: ...


class MemoryLookState:
    """The embedded mode's `LookState`: one process, one look at a time."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._marker: int | None = None

    @contextlib.asynccontextmanager
    async def lock(self) -> AsyncIterator[bool]:
        if self._lock.locked():
            yield False
            return
        async with self._lock:
            yield True

    async def marker(self) -> int | None:
        return self._marker

    async def set_marker(self, delivery_id: int) -> None:
        self._marker = max(delivery_id, self._marker or 0)


class RedisLookState:
    """Shared mode's `LookState`: `SET NX PX` lock and the marker in Redis."""

    LOCK = "txaudit:redeliver:lock"
    MARKER = "txaudit:redeliver:marker"

    def __init__(self, redis: Any) -> None:
        self.redis = redis

    @contextlib.asynccontextmanager
    async def lock(self) -> AsyncIterator[bool]:
        token = uuid.uuid4().hex
        got = await self.redis.set(self.LOCK, token, nx=True, px=LOCK_SECONDS * 1000)
        try:
            yield bool(got)
        finally:
            if got and (await self.redis.get(self.LOCK)) == token.encode():
                await self.redis.delete(self.LOCK)

    async def marker(self) -> int | None:
        raw = await self.redis.get(self.MARKER)
        return int(raw) if raw is not None else None

    async def set_marker(self, delivery_id: int) -> None:
        current = await self.marker()
        if current is None or delivery_id > current:
            await self.redis.set(self.MARKER, str(delivery_id))


class Redeliverer:
    """Looks for failed deliveries and asks GitHub to send them again."""

    def __init__(self, hub: GitHub, state: LookState) -> None:
        self.hub = hub
        self.state = state

    async def look_once(self) -> list[int]:
        """One look; the ids of the deliveries asked for again."""
        async with self.state.lock() as mine:
            if not mine:
                return []
            return await self._look()

    async def _look(self) -> list[int]:
        marker = await self.state.marker()
        seen: list[dict[str, Any]] = []
        client = self.hub.app_client()
        jwt = self.hub.app_jwt()
        async for delivery in client.getiter("/app/hook/deliveries?per_page=100", jwt=jwt):
            if marker is not None and int(delivery["id"]) <= marker:
                break
            seen.append(delivery)
            if len(seen) >= MAX_PAGES * 100:
                break
        if not seen:
            return []
        succeeded = {d["guid"] for d in seen if 200 <= int(d.get("status_code") or 0) < 300}
        attempts: dict[str, int] = {}
        latest: dict[str, dict[str, Any]] = {}
        for delivery in seen:  # newest first
            guid = delivery["guid"]
            attempts[guid] = attempts.get(guid, 0) + 1
            latest.setdefault(guid, delivery)
        wanted = [
            latest[guid]
            for guid in latest
            if guid not in succeeded and attempts[guid] <= MAX_ATTEMPTS_PER_GUID
        ][:MAX_REDELIVERIES]
        asked: list[int] = []
        for delivery in wanted:
            try:
                await client.post(
                    f"/app/hook/deliveries/{int(delivery['id'])}/attempts", data=b"", jwt=jwt
                )
            except HTTPException as exc:
                logger.warning(
                    "could not ask for a redelivery",
                    extra={"delivery": delivery["guid"], "status": int(exc.status_code)},
                )
                continue
            asked.append(int(delivery["id"]))
        logger.info(
            "looked for failed deliveries",
            extra={"listed": len(seen), "redelivered": len(asked)},
        )
        # The next look starts after the newest delivery seen here; the redeliveries asked
        # for just now come after it, so a redelivery that fails again is seen next time.
        await self.state.set_marker(max(int(d["id"]) for d in seen))
        return asked

    async def run(self, interval: float) -> None:
        """Look at once, then every `interval` seconds, until cancelled."""
        while True:
            try:
                await self.look_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a failed look must not stop the next one
                logger.warning("could not look for failed deliveries", exc_info=True)
            await asyncio.sleep(interval)
