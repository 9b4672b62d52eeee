"""Intake processes: several processes answer webhooks on one listening socket and hand the
verified deliveries to the audit process, over one socket pair each.

One event loop answered deliveries one at a time (~0.2 ms of CPU each) between the audits'
own work on that loop, so in a burst the last delivery waited for all the others and for the
audits. Intake processes answer in parallel and do nothing else. Each is a small
`python -m bot.app.intake_pool` process: it never sees the app's private key (only the webhook
secret, sent over its channel) and never imports the audit code.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from gidgethub import routing, sansio

from bot.app.intake import LISTEN_BACKLOG, MAX_BODY_BYTES, answer, classify, read_delivery
from bot.app.logs import configure_logging
from bot.app.loop import run as run_event_loop
from bot.app.pages import health, rule_doc, rules_index

logger = logging.getLogger(__name__)

#: Frames on a channel. To the intake process: its config (first), then "drain" (answer 503
#: from now on and confirm). From it: "ready", deliveries, and "drained" (nothing follows).
CONFIG = b"C"
DRAIN = b"Q"
READY = b"R"
DELIVERY = b"D"
DRAINED = b"Z"
#: kind, length of the event name, of the delivery id, of the body
_FRAME = struct.Struct("!cHHI")
#: Seconds to wait for an intake process to start, to confirm a drain, or to exit.
WAIT_SECONDS = 30.0
#: Seconds between attempts to replace an intake process that will not start.
RESTART_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)

#: Queues one verified delivery in the audit process (`WebhookIntake.take`).
Take = Callable[[sansio.Event], object]


@dataclass(frozen=True)
class IntakeConfig:
    """What an intake process needs: no key, no token, no audit code."""

    secret: str = field(repr=False)  # never in a log line or a traceback
    #: (event, action) pairs that some handler takes (`bot.app.handlers.routed_actions`).
    routes: frozenset[tuple[str, str | None]]
    log_level: int = logging.INFO

    def encode(self) -> bytes:
        routes = sorted([event, action or ""] for event, action in self.routes)
        body = {"secret": self.secret, "routes": routes, "log_level": self.log_level}
        return _frame(CONFIG, body=json.dumps(body).encode())

    @classmethod
    def decode(cls, body: bytes) -> IntakeConfig:
        data = json.loads(body)
        routes = frozenset((event, action or None) for event, action in data["routes"])
        return cls(secret=data["secret"], routes=routes, log_level=data["log_level"])


def _frame(kind: bytes, event: bytes = b"", delivery: bytes = b"", body: bytes = b"") -> bytes:
    return _FRAME.pack(kind, len(event), len(delivery), len(body)) + event + delivery + body


async def read_frame(reader: asyncio.StreamReader) -> tuple[bytes, bytes, bytes, bytes]:
    """(kind, event, delivery, body); raises IncompleteReadError when the channel ends."""
    kind, event_length, delivery_length, body_length = _FRAME.unpack(
        await reader.readexactly(_FRAME.size)
    )
    data = await reader.readexactly(event_length + delivery_length + body_length)
    split = event_length + delivery_length
    return kind, data[:event_length], data[event_length:split], data[split:]


def listening_socket(port: int, host: str = "", backlog: int = LISTEN_BACKLOG) -> socket.socket:
    """The server socket the intake processes share (all interfaces, IPv4 and IPv6)."""
    if not host and socket.has_dualstack_ipv6():
        return socket.create_server(
            ("", port), family=socket.AF_INET6, dualstack_ipv6=True, backlog=backlog
        )
    return socket.create_server((host, port), backlog=backlog)


@dataclass(eq=False)
class _Slot:
    process: asyncio.subprocess.Process
    channel: asyncio.StreamWriter
    #: Set when the process confirmed a drain, or its channel ended.
    drained: asyncio.Event = field(default_factory=asyncio.Event)
    reader: asyncio.Task[None] | None = None


class IntakePool:
    """`count` intake processes on `listener`; a process that exits is replaced."""

    def __init__(
        self, count: int, listener: socket.socket, config: IntakeConfig, take: Take
    ) -> None:
        self._count = count
        self._listener = listener
        self._config = config
        self._take = take
        self._slots: list[_Slot] = []
        self._closing = False
        self._draining = False
        self._retries: set[asyncio.Task[None]] = set()

    @property
    def pids(self) -> list[int]:
        return [slot.process.pid for slot in self._slots]

    async def start(self) -> None:
        """Start the processes; returns once they accept connections. One that does not
        start is retried in the background, as one that dies is; RuntimeError when none
        starts (`close()` stops the ones that did)."""
        started = await asyncio.gather(
            *(self._spawn() for _ in range(self._count)), return_exceptions=True
        )
        self._slots.extend(slot for slot in started if isinstance(slot, _Slot))
        failures = [failure for failure in started if isinstance(failure, BaseException)]
        if failures and not self._slots:
            raise failures[0]
        for failure in failures:
            logger.warning("an intake process did not start", extra={"reason": str(failure)})
            retry = asyncio.create_task(self._start_another(None), name="intake retry")
            self._retries.add(retry)
            retry.add_done_callback(self._retries.discard)

    async def drain(self) -> None:
        """Intake processes answer 503 from now on. Returns once every delivery they
        accepted before that has been handed to `take`."""
        self._draining = True
        for slot in self._slots:
            if not slot.channel.is_closing():
                slot.channel.write(_frame(DRAIN))
        waits = [asyncio.ensure_future(slot.drained.wait()) for slot in self._slots]
        if waits:
            _, pending = await asyncio.wait(waits, timeout=WAIT_SECONDS)
            for wait in pending:
                wait.cancel()

    async def close(self) -> None:
        """Stop the intake processes (a process exits when its channel closes)."""
        self._closing = True
        for retry in list(self._retries):
            retry.cancel()
        for slot in self._slots:
            slot.channel.close()
        for slot in self._slots:
            await _stop(slot.process)
            if slot.reader is not None:
                slot.reader.cancel()
        self._slots.clear()

    async def _spawn(self) -> _Slot:
        ours, theirs = socket.socketpair()
        fds = (self._listener.fileno(), theirs.fileno())
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot.app.intake_pool",
                *map(str, fds),
                pass_fds=fds,
                env=_child_environment(),
            )
        finally:
            theirs.close()
        reader, writer = await asyncio.open_connection(sock=ours)
        writer.write(self._config.encode())
        try:
            async with asyncio.timeout(WAIT_SECONDS):
                kind, *_ = await read_frame(reader)
            if kind != READY:
                raise ConnectionError(f"unexpected frame {kind!r}")
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError) as exc:
            writer.close()
            await _stop(process)
            raise RuntimeError(f"an intake process did not start ({exc!r})") from None
        slot = _Slot(process=process, channel=writer)
        slot.reader = asyncio.create_task(self._read(slot, reader), name="intake channel")
        return slot

    async def _read(self, slot: _Slot, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                kind, event, delivery, body = await read_frame(reader)
                if kind == DRAINED:
                    return
                if kind == DELIVERY:
                    self._hand_on(event.decode(), delivery.decode(), body)
        except (asyncio.IncompleteReadError, ConnectionError):
            if not (self._closing or self._draining):
                await self._replace(slot)
        finally:
            slot.drained.set()

    async def _replace(self, slot: _Slot) -> None:
        """A new process for one that exited (connections wait in the listen backlog)."""
        slot.channel.close()
        await _stop(slot.process)
        logger.warning(
            "intake process exited; starting another",
            extra={"exitcode": slot.process.returncode},
        )
        await self._start_another(slot)

    async def _start_another(self, replaced: _Slot | None) -> None:
        """Start a process in `replaced`'s place (or a missing one), retrying with
        `RESTART_DELAYS`; after that the other intake processes go on answering."""
        for delay in (*RESTART_DELAYS, None):
            try:
                slot = await self._spawn()
                break
            except RuntimeError:
                logger.exception("could not start an intake process")
                if delay is None or self._closing:
                    return
                await asyncio.sleep(delay)
        if self._closing:  # close() began while the process started
            slot.channel.close()
            await _stop(slot.process)
        elif replaced in self._slots:
            self._slots[self._slots.index(replaced)] = slot
        else:
            self._slots.append(slot)

    def _hand_on(self, event_name: str, delivery_id: str, body: bytes) -> None:
        try:
            event = sansio.Event(json.loads(body), event=event_name, delivery_id=delivery_id)
            self._take(event)
        except Exception:  # a bug here must not end the channel
            logger.exception("could not queue a delivery", extra={"delivery": delivery_id})


async def _stop(process: asyncio.subprocess.Process) -> None:
    """Wait for `process` to exit (it does once its channel closes), else kill it."""
    try:
        async with asyncio.timeout(WAIT_SECONDS):
            await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()


def _child_environment() -> dict[str, str]:
    """This environment without the app's key, secret and id (`GITHUB_*`), and with `bot`
    importable even where it is not installed."""
    package_root = str(Path(__file__).resolve().parent.parent)
    paths = [package_root, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    kept = {name: value for name, value in os.environ.items() if not name.startswith("GITHUB_")}
    return {**kept, "PYTHONPATH": os.pathsep.join(paths)}


# --- the intake process ------------------------------------------------------------------------


class _ForwardingIntake:
    """`POST /webhook` and `GET /healthz` of an intake process."""

    def __init__(self, config: IntakeConfig, channel: asyncio.StreamWriter) -> None:
        self._secret = config.secret
        self._channel = channel
        self._router = router_for(config.routes)
        self.draining = False

    async def handle(self, request: web.Request) -> web.Response:
        if self.draining or self._channel.is_closing():
            return answer(503, "shutting down; redeliver later")
        delivery = await read_delivery(request, self._secret)
        if isinstance(delivery, web.Response):
            return delivery
        taken = classify(delivery, self._router)
        if isinstance(taken, web.Response):
            return taken
        body = await request.read()  # aiohttp keeps the bytes it read
        if request.headers.get("content-type", "").strip().lower() != "application/json":
            body = json.dumps(delivery.data).encode()  # a form-encoded payload, decoded
        event, delivery_id = delivery.event.encode(), delivery.delivery_id.encode()
        self._channel.write(_frame(DELIVERY, event, delivery_id, body))
        return answer(202, "accepted")

    async def healthz(self, request: web.Request) -> web.Response:
        return health(self.draining or self._channel.is_closing())

    def drain(self) -> None:
        if not self.draining:
            self.draining = True
            if not self._channel.is_closing():
                self._channel.write(_frame(DRAINED))


def router_for(routes: frozenset[tuple[str, str | None]]) -> routing.Router:
    """A router that takes the events `routes` names (its callbacks are never called)."""
    router = routing.Router()
    for event, action in routes:
        if action is None:
            router.add(_not_called, event)
        else:
            router.add(_not_called, event, action=action)
    return router


async def _not_called(event: sansio.Event, *args: Any, **kwargs: Any) -> None:
    """Intake only asks the router whether some handler takes an event."""


async def _serve_intake(listener: socket.socket, channel: socket.socket) -> None:
    commands, writer = await asyncio.open_connection(sock=channel)
    kind, _, _, body = await read_frame(commands)
    if kind != CONFIG:
        raise SystemExit(f"txaudit intake: expected the config first, got {kind!r}")
    config = IntakeConfig.decode(body)
    configure_logging(config.log_level)
    # Deliveries are written without waiting; the audit process reads them as they come.
    writer.transport.set_write_buffer_limits(high=64 * 1024 * 1024)
    intake = _ForwardingIntake(config, writer)
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_post("/webhook", intake.handle)
    app.router.add_get("/healthz", intake.healthz)
    app.router.add_get("/rules", rules_index)
    app.router.add_get("/rules/{rule_id}", rule_doc)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    # SockSite listens again with its own backlog (aiohttp's default: 128), so it is given ours.
    await web.SockSite(runner, listener, backlog=LISTEN_BACKLOG).start()
    writer.write(_frame(READY))
    try:
        while True:
            kind, *_ = await read_frame(commands)
            if kind == DRAIN:
                intake.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass  # the audit process closed the channel, or is gone: stop taking deliveries
    finally:
        intake.draining = True
        await runner.cleanup()


def main(argv: list[str]) -> None:
    """`python -m bot.app.intake_pool LISTENER_FD CHANNEL_FD`, as `IntakePool` starts it."""
    # Ctrl-C or a SIGTERM to the whole process group: the audit process decides when intake
    # stops (it drains first, so that deliveries are refused with 503 until the end).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    listener = socket.socket(fileno=int(argv[0]))
    channel = socket.socket(fileno=int(argv[1]))
    run_event_loop(_serve_intake(listener, channel))


if __name__ == "__main__":
    main(sys.argv[1:])
