"""Benchmark the txaudit GitHub App against the test suite's fake GitHub.

The real server (`bot.app.server.make_app`, served on loopback in a child process with its
engine worker processes) talks to `tests/fakegithub` (served in this process, with an
injected latency per call). Load is generated from a third process, so that neither the
fake's CPU nor the benchmark's own bookkeeping shows up in the app's numbers.

Sections (all printed side by side, and as a Markdown table with --write):

1. GitHub calls per audit, by endpoint, for pull requests of 1/10/100/1000 changed Python
   files (generated scheduler/service modules, one in four with findings), next to the
   minimum the API allows.
2. Time from delivery to completed check run, in seconds and in round trips (time/latency),
   with the CPU seconds of the app process and of its engine workers.
3. Re-audit of an unchanged head (`/txaudit` comment, check run "Re-run"): engine
   invocations and calls.
4. Intake under load: 50 / 200 concurrent deliveries while audits run: p50 / p99 time to
   answer the webhook; every check run completed.
5. Memory: peak RSS of the app (and its workers) for the largest pull request and after
   many audits.

Usage:
    python benchmarks/bench_app.py                      # the full run (~5-10 min on 2 cores)
    python benchmarks/bench_app.py --quick              # sizes 1,10; load 50; 50 audits
    python benchmarks/bench_app.py --sizes 1,10 --latency 0.02 --skip load,memory
    python benchmarks/bench_app.py --write docs/PERFORMANCE.md --label after
    python benchmarks/bench_app.py --profile /tmp/prof  # pyinstrument reports of the app
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for extra in (REPO, REPO / "tests", REPO / "benchmarks"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import aiohttp  # noqa: E402
from fakegithub import FakeGitHub, Installation, PullRequest, Repo, payloads  # noqa: E402
from fakegithub.routes import (  # noqa: E402
    APP,
    BLOB,
    COMMENTS,
    CONTENTS,
    CREATE_RUN,
    LIST_FILES,
    PULL,
    REACTION,
    REVIEW,
    RUNS_FOR_REF,
    TOKEN,
    TREE,
    UPDATE_RUN,
)

# --- routes of the fake (the request log's templates) ------------------------------------


#: Endpoint rows of the calls table: (label, route).
ENDPOINTS: tuple[tuple[str, str], ...] = (
    ("list changed files (pages)", LIST_FILES),
    ("read file blobs", BLOB),
    ("head tree", TREE),
    ("config (contents)", CONTENTS),
    ("create check run", CREATE_RUN),
    ("update/complete check run", UPDATE_RUN),
    ("post review", REVIEW),
    ("dedupe listing (review comments)", COMMENTS),
    ("pull request (head re-read)", PULL),
    ("check runs of the commit (orphans)", RUNS_FOR_REF),
    ("installation token (once an hour)", TOKEN),
    ("GET /app (once per process)", APP),
    ("reaction (slash command)", REACTION),
)


def _route_label(route: str) -> str:
    return next((label for label, r in ENDPOINTS if r == route), route)


# --- the generated code -----------------------------------------------------------------

FINDING = '''

async def settle_{tag}_{i}(session: AsyncSession, job) -> None:
    """Mark the job settled (commits a session it does not own)."""
    job.status = "settled"
    await session.commit()
'''
CLEAN = '''

async def describe_{tag}_{i}(job) -> str:
    """A one-line description of the job for the logs."""
    return f"{{job.id}}: {{job.status}}"
'''


@dataclass
class Corpus:
    files: dict[str, str]  # the repository's Python modules (the base branch)
    config: str

    def changed(self, count: int, tag: str) -> dict[str, str]:
        """`count` modules with a function appended; one in four has a finding (TX002)."""
        paths = [p for p in sorted(self.files) if not p.endswith("__init__.py")]
        if count > len(paths):
            raise SystemExit(f"corpus has {len(paths)} modules, {count} asked for")
        out: dict[str, str] = {}
        for i, path in enumerate(paths[:count]):
            text = self.files[path]
            if "AsyncSession" not in text:
                text = "from sqlalchemy.ext.asyncio import AsyncSession\n" + text
            out[path] = text + (FINDING if i % 4 == 0 else CLEAN).format(tag=tag, i=i)
        return out


def make_corpus(modules: int, seed: int = 7) -> Corpus:
    """At least `modules` non-package modules from bench_engine's generator."""
    import bench_engine

    root = Path(tempfile.mkdtemp(prefix="txaudit-bench-app-"))
    try:
        lines = max(modules * 45, 500)
        while True:
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            corpus = bench_engine.generate(root, lines, seed)
            plain = [r for r in corpus.rels if not r.endswith("__init__.py")]
            if len(plain) >= modules:
                break
            lines = int(lines * 1.3)
        files = {
            rel: src.decode("utf-8") for rel, src in zip(corpus.rels, corpus.sources, strict=True)
        }
        config = (root / ".github" / "txaudit.yml").read_text(encoding="utf-8")
        return Corpus(files, config)
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --- the app under test, in a child process ------------------------------------------------


def _proc_tree(root: int) -> list[int]:
    """`root` and all its descendants (engine workers are children of the forkserver)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, ()))
    return found


def _status_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _app_stats(app: Any, intake: list[int]) -> dict[str, Any]:
    """CPU and memory of the app process, its engine workers and its intake processes."""
    from bot.app.server import ENGINE

    me = os.getpid()
    others = [pid for pid in _proc_tree(me) if pid != me and pid not in intake]
    return {
        "engine_runs": app[ENGINE].runs,
        "cpu_main": _cpu_seconds(me),
        "cpu_workers": sum(_cpu_seconds(pid) for pid in others),
        "rss_main_kb": _status_kb(me, "VmRSS"),
        "hwm_main_kb": _status_kb(me, "VmHWM"),
        "rss_workers_kb": sum(_status_kb(pid, "VmRSS") for pid in others),
        "hwm_workers_kb": sum(_status_kb(pid, "VmHWM") for pid in others),
        "workers": len(others),
        "cpu_intake": sum(_cpu_seconds(pid) for pid in intake),
        "rss_intake_kb": sum(_status_kb(pid, "VmRSS") for pid in intake),
    }


def _serve_app(conn: Any, settings: dict[str, Any], profile: str | None) -> None:
    """Child process: serve make_app() on 127.0.0.1, report the port, stop on request."""
    for extra in (str(REPO), str(REPO / "tests")):
        if extra not in sys.path:
            sys.path.insert(0, extra)
    from aiohttp import web

    from bot.app.intake_pool import IntakePool, listening_socket
    from bot.app.loop import run as run_event_loop
    from bot.app.server import (
        ENGINE,
        SETTINGS,
        configure_logging,
        intake_pool,
        make_app,
        on_uvloop,
        wait_idle,
    )
    from bot.app.settings import AppSettings

    # Log as `txaudit serve` does (INFO, key=value lines), to a file instead of stderr.
    log_file = open(settings.pop("log_path"), "a", encoding="utf-8")  # noqa: SIM115
    configure_logging(stream=log_file)

    profiler = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(async_mode="disabled", interval=0.001)

    async def main() -> None:
        app = make_app(AppSettings(**settings))

        pool: IntakePool | None = None

        def intake_pids() -> list[int]:
            return pool.pids if pool else []

        async def stats(request: web.Request) -> web.Response:
            return web.json_response(_app_stats(app, intake_pids()))

        async def idle(request: web.Request) -> web.Response:
            await wait_idle(app)
            return web.json_response(_app_stats(app, intake_pids()))

        async def prof(request: web.Request) -> web.Response:
            if profiler is not None:
                if request.query.get("action") == "start":
                    profiler.reset()
                    profiler.start()
                else:
                    profiler.stop()
                    name = request.query.get("name", "profile")
                    Path(profile or ".").mkdir(parents=True, exist_ok=True)
                    base = Path(profile or ".") / name
                    base.with_suffix(".txt").write_text(
                        profiler.output_text(unicode=False, color=False, show_all=False)
                    )
                    base.with_suffix(".html").write_text(profiler.output_html())
                    if profiler.last_session is not None:  # pyinstrument --load FILE --show-all
                        profiler.last_session.save(str(base.with_suffix(".pyisession")))
            return web.json_response({})

        app.router.add_get("/_bench/stats", stats)
        app.router.add_get("/_bench/idle", idle)
        app.router.add_get("/_bench/profile", prof)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        webhook_port = port
        if app[SETTINGS].intake_processes:  # as `txaudit serve` runs: intake processes answer
            listener = listening_socket(0, host="127.0.0.1")
            webhook_port = listener.getsockname()[1]
            pool = intake_pool(app, listener)
            await pool.start()
        await app[ENGINE].worker_stats()  # the workers are up: measure a running server
        conn.send((port, webhook_port))
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, conn.recv)  # "stop"
        if pool is not None:
            await pool.drain()
            await pool.close()
        await runner.cleanup()

    run_event_loop(main(), uvloop=on_uvloop(AppSettings(**settings)))  # as `txaudit serve`
    conn.send("stopped")


class AppProcess:
    """The app under test in a child process; `url`, `stats()`, `idle()`, `stop()`."""

    def __init__(self, fake: FakeGitHub, *, workers: int, intake: int, profile: str | None) -> None:
        settings = {
            "app_id": str(fake.app_id),
            "private_key": fake.private_key_pem,
            "webhook_secret": fake.webhook_secret,
            "api_url": fake.url,
            "workers": workers,
            "intake_processes": intake,
            "public_url": "https://txaudit.example.com",
        }
        fd, self.log_path = tempfile.mkstemp(prefix="txaudit-bench-", suffix=".log")
        os.close(fd)
        settings["log_path"] = self.log_path
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve_app, args=(child, settings, profile))
        self.process.start()
        control_port, webhook_port = self._conn.recv()
        #: `/webhook` (the intake processes, when there are any)
        self.url = f"http://127.0.0.1:{webhook_port}"
        #: `/_bench/...` (the app process)
        self.control_url = f"http://127.0.0.1:{control_port}"
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=900)
        )

    async def get(self, path: str, **params: str) -> dict[str, Any]:
        async with self.session.get(self.control_url + path, params=params) as response:
            response.raise_for_status()
            return await response.json()  # type: ignore[no-any-return]

    async def stats(self) -> dict[str, Any]:
        return await self.get("/_bench/stats")

    async def idle(self) -> dict[str, Any]:
        return await self.get("/_bench/idle")

    async def deliver(self, event: str, payload: dict[str, Any], secret: str) -> float:
        """POST one signed delivery; the seconds until the answer."""
        started = time.perf_counter()
        response = await payloads.deliver(
            self.session, event, payload, secret, str(uuid.uuid4()), url=self.url + "/webhook"
        )
        async with response:
            await response.read()
            if response.status not in (200, 202):
                raise RuntimeError(f"webhook answered {response.status}")
        return time.perf_counter() - started

    async def stop(self) -> None:
        await self.session.close()
        self._conn.send("stop")
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._conn.recv)
        self.process.join(30)
        Path(self.log_path).unlink(missing_ok=True)


# --- helpers on the fake -------------------------------------------------------------------


def add_installation(fake: FakeGitHub, account: str) -> int:
    iid = 2_000_000 + len(fake.installations)
    fake.installations[iid] = Installation(iid, fake.app_id, account)
    fake.organizations.add(account)
    return iid


def open_pr(repo: Repo, files: dict[str, str], branch: str) -> PullRequest:
    repo.commit(files, branch=branch, message=f"Change {len(files)} modules")
    pr = repo.open_pull(head=branch, user="alice")
    pr.files()  # compute the diff now, not while the app waits
    return pr


def our_run(fake: FakeGitHub, pr: PullRequest) -> Any:
    runs = [r for r in fake.runs_for(pr.head_sha, name="txaudit") if r.app_id == fake.app_id]
    return runs[-1] if runs else None


async def wait_completed(fake: FakeGitHub, pr: PullRequest, count: int = 1) -> None:
    while True:
        runs = fake.runs_for(pr.head_sha, name="txaudit")
        if sum(r.status == "completed" for r in runs) >= count:
            return
        await asyncio.sleep(0.002)


def completion_time(fake: FakeGitHub, run_id: int) -> float:
    """When the fake answered the request that completed `run_id` (its monotonic clock): the
    PATCH, or the POST of a run created completed (its audit finished before its turn)."""
    history = fake.check_runs[run_id].history
    if history and history[0].get("status") == "completed":
        for rec in fake.log.records:
            if rec.method == "POST" and rec.path.endswith("/check-runs") and rec.json == history[0]:
                return rec.started + rec.duration
    for rec in fake.log.records:
        if (
            rec.method == "PATCH"
            and rec.path.endswith(f"/check-runs/{run_id}")
            and isinstance(rec.json, dict)
            and rec.json.get("status") == "completed"
        ):
            return rec.started + rec.duration
    raise RuntimeError("no completing PATCH in the log")


# --- 1 + 2: one audit per size ------------------------------------------------------------


@dataclass
class SizeResult:
    files: int
    calls: Counter[str]
    not_modified: int
    minimum: dict[str, int]
    annotations: int
    comments: int
    seconds: float
    cpu_main: float
    cpu_workers: float
    engine_runs: int
    hwm_main_kb: int
    hwm_workers_kb: int
    reaudits: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    @property
    def total_minimum(self) -> int:
        return sum(self.minimum.values())


def minimum_calls(
    fake: FakeGitHub, pr: PullRequest, calls: Sequence[Any], *, cold: bool
) -> dict[str, int]:
    """The fewest calls the API allows for this audit (the issue's formula)."""
    run = our_run(fake, pr)
    annotations = len(run.annotations) if run is not None else 0
    reviews = fake.reviews_of(pr)
    blobs = {rec.path.rsplit("/", 1)[1] for rec in calls if rec.route == BLOB}
    return {
        LIST_FILES: math.ceil(len(pr.files()) / 100),
        BLOB: len(blobs),  # one read per distinct blob (changed files + TX007 callees)
        CONTENTS: 1,
        CREATE_RUN: 1,
        UPDATE_RUN: max(1, math.ceil(annotations / 50)),
        REVIEW: 1 if reviews else 0,
        COMMENTS: 1,
        TOKEN: 1 if cold else 0,
        APP: 1 if cold else 0,
    }


async def audit_size(
    fake: FakeGitHub, corpus: Corpus, size: int, args: argparse.Namespace
) -> SizeResult:
    account = f"size{size}"
    iid = add_installation(fake, account)
    repo = fake.create_repo(
        f"{account}/service", files={**corpus.files, ".github/txaudit.yml": corpus.config}
    )
    pr = open_pr(repo, corpus.changed(size, f"s{size}"), "feature")
    app = AppProcess(fake, workers=args.workers, intake=args.intake, profile=args.profile)
    try:
        before = await app.stats()
        if args.profile:
            await app.get("/_bench/profile", action="start")
        fake.log.clear()
        payload = payloads.pull_request_event(fake, pr, "opened", installation_id=iid)
        started = time.monotonic()
        await app.deliver("pull_request", payload, fake.webhook_secret)
        await wait_completed(fake, pr)
        after = await app.idle()
        if args.profile:
            await app.get("/_bench/profile", action="stop", name=f"audit-{size}")
        run = our_run(fake, pr)
        if run.conclusion not in ("success", "failure") or "could not finish" in run.output.get(
            "title", ""
        ):
            raise RuntimeError(f"audit of {size} files: {run.conclusion} {run.output}")
        seconds = completion_time(fake, run.id) - started
        records = list(fake.log.records)
        result = SizeResult(
            files=size,
            calls=Counter(rec.route for rec in records),
            not_modified=sum(rec.status == 304 for rec in records),
            minimum=minimum_calls(fake, pr, records, cold=True),
            annotations=len(run.annotations),
            comments=len(fake.review_comments_of(pr)),
            seconds=seconds,
            cpu_main=after["cpu_main"] - before["cpu_main"],
            cpu_workers=after["cpu_workers"] - before["cpu_workers"],
            engine_runs=after["engine_runs"] - before["engine_runs"],
            hwm_main_kb=after["hwm_main_kb"],
            hwm_workers_kb=after["hwm_workers_kb"],
        )
        # 3. Re-audits of the unchanged head.
        for label, event, make in (
            (
                "/txaudit",
                "issue_comment",
                lambda: payloads.issue_comment_event(
                    fake,
                    repo.add_comment(pr.number, "/txaudit", user="alice"),
                    installation_id=iid,
                ),
            ),
            (
                "re-run",
                "check_run",
                lambda: payloads.check_run_event(
                    fake, our_run(fake, pr), "rerequested", installation_id=iid
                ),
            ),
        ):
            done = sum(r.status == "completed" for r in fake.runs_for(pr.head_sha, name="txaudit"))
            before = await app.stats()
            fake.log.clear()
            started = time.monotonic()
            await app.deliver(event, make(), fake.webhook_secret)
            await wait_completed(fake, pr, done + 1)
            after = await app.idle()
            records = list(fake.log.records)
            run = our_run(fake, pr)
            result.reaudits[label] = {
                "calls": Counter(rec.route for rec in records),
                "not_modified": sum(rec.status == 304 for rec in records),
                "engine_runs": after["engine_runs"] - before["engine_runs"],
                "seconds": completion_time(fake, run.id) - started,
                "blob_reads": sum(rec.route == BLOB for rec in records),
            }
        return result
    finally:
        await app.stop()


# --- 4: intake under load -------------------------------------------------------------------


def _raw_request(host: str, port: int, headers: dict[str, str], body: bytes) -> bytes:
    """One HTTP/1.1 POST /webhook, serialised in advance."""
    lines = [
        "POST /webhook HTTP/1.1",
        f"Host: {host}:{port}",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{k}: {v}" for k, v in headers.items() if k.lower() != "content-length"),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _complete_response(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def _load_client(host: str, port: int, requests: list[bytes], conn: Any) -> None:
    """Child process: send every delivery at once, each on a new connection (as GitHub
    does); send back the answer times (seconds) and the status lines.

    Plain sockets and a selector, not aiohttp: with 200 requests in one client event loop,
    the client's own CPU (~0.2 ms per request) was counted in every answer time. Answers
    are read between sends too: sending 200 deliveries takes the client ~40 ms, and an
    answer left unread until the last send would count that time as the app's.
    """
    import selectors
    import socket

    selector = selectors.DefaultSelector()
    started: dict[int, float] = {}
    answered: dict[int, float] = {}
    received: dict[int, bytes] = {}

    def read_answers(timeout: float) -> int:
        events = selector.select(timeout=timeout)
        for key, _ in events:
            i, sock = key.data, key.fileobj
            chunk = sock.recv(65536)  # type: ignore[union-attr]
            received[i] += chunk
            if not chunk or _complete_response(received[i]):
                answered[i] = time.perf_counter()
                selector.unregister(sock)
                sock.close()  # type: ignore[union-attr]
        return len(events)

    conn.send("ready")  # started and imported; the burst starts on "go"
    conn.recv()
    cpu_started = time.process_time()
    for i, request in enumerate(requests):
        started[i] = time.perf_counter()  # the connect counts: GitHub connects per delivery
        sock = socket.create_connection((host, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(request)
        sock.setblocking(False)
        received[i] = b""
        selector.register(sock, selectors.EVENT_READ, i)
        read_answers(0)
    while len(answered) < len(requests):
        if not read_answers(60):
            raise RuntimeError("the app did not answer within 60 s")
    statuses = [received[i].split(b"\r\n", 1)[0].decode() for i in range(len(requests))]
    times = [answered[i] - started[i] for i in range(len(requests))]
    conn.send((times, statuses, time.process_time() - cpu_started))


@dataclass
class LoadResult:
    deliveries: int
    #: intake processes (0: the app process answers the webhooks itself)
    intake: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    completed: int
    expected: int
    seconds: float
    #: CPU seconds while the burst was answered: app process, intake processes, engine
    #: workers, the fake GitHub (the benchmark process), the load client
    burst_cpu: dict[str, float]
    burst_ms: float


async def intake_load(
    fake: FakeGitHub, corpus: Corpus, count: int, intake: int, round_: int, args: argparse.Namespace
) -> LoadResult:
    """`count` concurrent pull_request.opened deliveries (10-file PRs, 4 per installation)
    while a 100-file audit runs, answered by `intake` intake processes (or by the app)."""
    prs: list[tuple[int, PullRequest]] = []
    per_installation = 4
    for k in range(math.ceil(count / per_installation)):
        account = f"load{count}i{intake}r{round_}x{k}"
        iid = add_installation(fake, account)
        repo = fake.create_repo(
            f"{account}/service", files={**corpus.files, ".github/txaudit.yml": corpus.config}
        )
        for j in range(min(per_installation, count - k * per_installation)):
            files = corpus.changed(10 + j, f"l{count}i{intake}r{round_}k{k}j{j}")
            prs.append((iid, open_pr(repo, files, f"feature-{j}")))
    # a running audit of a larger pull request
    big_account = f"load{count}i{intake}r{round_}big"
    big_iid = add_installation(fake, big_account)
    big_repo = fake.create_repo(
        f"{big_account}/service", files={**corpus.files, ".github/txaudit.yml": corpus.config}
    )
    big_tag = f"big{count}i{intake}r{round_}"
    big = open_pr(big_repo, corpus.changed(min(100, args.max_modules), big_tag), "big")
    requests = []
    for iid, pr in prs:
        body = json.dumps(payloads.pull_request_event(fake, pr, "opened", installation_id=iid))
        data = body.encode()
        headers = payloads.webhook_headers(
            "pull_request", data, fake.webhook_secret, delivery_id=str(uuid.uuid4())
        )
        requests.append((headers, data))
    app = AppProcess(fake, workers=args.workers, intake=intake, profile=args.profile)
    host, port = "127.0.0.1", int(app.url.rsplit(":", 1)[1])
    raw = [_raw_request(host, port, headers, data) for headers, data in requests]
    try:
        started = time.monotonic()
        payload = payloads.pull_request_event(fake, big, "opened", installation_id=big_iid)
        await app.deliver("pull_request", payload, fake.webhook_secret)
        await asyncio.sleep(0.3)  # the big audit is reading and running the rules
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        client = ctx.Process(target=_load_client, args=(host, port, raw, child))
        client.start()
        child.close()  # so that a crashed client ends recv() with EOFError, not a hang
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, parent.recv)  # "ready"
        if args.profile:  # the window of the burst
            await app.get("/_bench/profile", action="start")
        before = await app.stats()
        fake_before = time.process_time()
        burst_started = time.monotonic()
        parent.send("go")
        times, statuses, client_cpu = await loop.run_in_executor(None, parent.recv)
        burst_ms = (time.monotonic() - burst_started) * 1000
        fake_cpu = time.process_time() - fake_before
        after = await app.stats()
        if args.profile:
            await app.get(
                "/_bench/profile", action="stop", name=f"intake-{count}-{intake}-{round_}"
            )
        client.join(30)
        refused = [line for line in statuses if not line.endswith(("200 OK", "202 Accepted"))]
        if refused:
            raise RuntimeError(f"webhook answered {refused[0]!r} ({len(refused)} times)")
        await app.idle()
        seconds = time.monotonic() - started
        completed = sum(
            1
            for _, pr in [*prs, (0, big)]
            if any(r.status == "completed" for r in fake.runs_for(pr.head_sha, name="txaudit"))
        )
        ms = sorted(t * 1000 for t in times)
        return LoadResult(
            deliveries=count,
            intake=intake,
            p50_ms=statistics.median(ms),
            p99_ms=ms[min(len(ms) - 1, math.ceil(0.99 * len(ms)) - 1)],
            max_ms=ms[-1],
            completed=completed,
            expected=len(prs) + 1,
            seconds=seconds,
            burst_cpu={
                "app": after["cpu_main"] - before["cpu_main"],
                "intake": after["cpu_intake"] - before["cpu_intake"],
                "workers": after["cpu_workers"] - before["cpu_workers"],
                "fake GitHub": fake_cpu,
                "client": client_cpu,
            },
            burst_ms=burst_ms,
        )
    finally:
        await app.stop()


# --- 5: memory after many audits ---------------------------------------------------------------


@dataclass
class MemoryResult:
    audits: int
    rss_main_mb: float
    hwm_main_mb: float
    rss_workers_mb: float
    rss_intake_mb: float
    after_first_mb: float
    seconds: float


async def memory_many(
    fake: FakeGitHub, corpus: Corpus, audits: int, args: argparse.Namespace
) -> MemoryResult:
    """`audits` audits of 10-file pull requests (new content each), 2 per installation (so
    that GitHub's pacing of mutations per installation does not set the pace)."""
    per_installation = 2
    jobs: list[tuple[int, PullRequest]] = []
    for k in range(math.ceil(audits / per_installation)):
        account = f"mem{k}"
        iid = add_installation(fake, account)
        repo = fake.create_repo(
            f"{account}/service", files={**corpus.files, ".github/txaudit.yml": corpus.config}
        )
        for j in range(min(per_installation, audits - k * per_installation)):
            jobs.append((iid, open_pr(repo, corpus.changed(10, f"m{k}j{j}"), f"f{j}")))
    app = AppProcess(fake, workers=args.workers, intake=args.intake, profile=None)
    try:
        started = time.monotonic()
        first_mb = 0.0
        batch = 50
        for offset in range(0, len(jobs), batch):
            chunk = jobs[offset : offset + batch]
            await asyncio.gather(
                *(
                    app.deliver(
                        "pull_request",
                        payloads.pull_request_event(fake, pr, "opened", installation_id=iid),
                        fake.webhook_secret,
                    )
                    for iid, pr in chunk
                )
            )
            stats = await app.idle()
            if offset == 0:
                first_mb = (stats["rss_main_kb"] + stats["rss_workers_kb"]) / 1024
        stats = await app.idle()
        return MemoryResult(
            audits=len(jobs),
            rss_main_mb=stats["rss_main_kb"] / 1024,
            hwm_main_mb=stats["hwm_main_kb"] / 1024,
            rss_workers_mb=stats["rss_workers_kb"] / 1024,
            rss_intake_mb=stats["rss_intake_kb"] / 1024,
            after_first_mb=first_mb,
            seconds=time.monotonic() - started,
        )
    finally:
        await app.stop()


# --- report -----------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    def run(*cmd: str) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            return "?"

    mem = run("free", "-h").splitlines()
    return {
        "nproc": run("nproc"),
        "memory": mem[1].split()[1] if len(mem) > 1 else "?",
        "python": platform.python_version(),
        "date": run("date", "-u", "+%Y-%m-%d %H:%M UTC"),
        "commit": run("git", "-C", str(REPO), "rev-parse", "--short", "HEAD"),
    }


def _cell(measured: int, minimum: int | None) -> str:
    if minimum is None:
        return f"{measured} / 0" if measured else "0"
    mark = "" if measured <= minimum else " ⚠"
    return f"{measured} / {minimum}{mark}"


def report(
    args: argparse.Namespace,
    sizes: list[SizeResult],
    loads: list[LoadResult],
    memory: MemoryResult | None,
    command: str,
) -> str:
    info = machine()
    lat = args.latency
    out = [
        f"### {args.label}" if args.label else "### Results",
        "",
        f"Machine: {info['nproc']} cores, {info['memory']} memory, Python {info['python']}; "
        f"{info['date']}; commit {info['commit']}; latency {lat * 1000:.0f} ms per call; "
        f"{args.workers} engine workers.",
        "",
        f"Command: `{command}`",
        "",
    ]
    if sizes:
        head = " | ".join(f"{s.files} file{'s' if s.files > 1 else ''}" for s in sizes)
        out += [
            "**1. GitHub calls per audit** (measured / minimum; ⚠ = above the minimum)",
            "",
            f"| endpoint | {head} |",
            "| --- |" + " ---: |" * len(sizes),
        ]
        routes = [r for _, r in ENDPOINTS]
        seen = set().union(*(s.calls for s in sizes))
        routes += sorted(seen - set(routes))
        for route in routes:
            if not any(s.calls.get(route) or s.minimum.get(route) for s in sizes):
                continue
            cells = [_cell(s.calls.get(route, 0), s.minimum.get(route)) for s in sizes]
            out.append(f"| {_route_label(route)} | " + " | ".join(cells) + " |")
        out.append(
            "| **total** | "
            + " | ".join(f"**{s.total} / {s.total_minimum}**" for s in sizes)
            + " |"
        )
        out.append(
            "| of which 304 (free) | " + " | ".join(str(s.not_modified) for s in sizes) + " |"
        )
        out.append(
            "| annotations / inline comments | "
            + " | ".join(f"{s.annotations} / {s.comments}" for s in sizes)
            + " |"
        )
        out += [
            "",
            "**2. Delivery to completed check run**",
            "",
            f"| | {head} |",
            "| --- |" + " ---: |" * len(sizes),
            "| seconds | " + " | ".join(f"{s.seconds:.2f}" for s in sizes) + " |",
            "| round trips (time / latency) | "
            + " | ".join(f"{s.seconds / lat:.1f}" for s in sizes)
            + " |",
            "| CPU s, app process (event loop) | "
            + " | ".join(f"{s.cpu_main:.2f}" for s in sizes)
            + " |",
            "| CPU s, engine workers | " + " | ".join(f"{s.cpu_workers:.2f}" for s in sizes) + " |",
            "| engine invocations | " + " | ".join(str(s.engine_runs) for s in sizes) + " |",
            "| peak RSS MB, app / workers | "
            + " | ".join(
                f"{s.hwm_main_kb / 1024:.0f} / {s.hwm_workers_kb / 1024:.0f}" for s in sizes
            )
            + " |",
            "",
            "**3. Re-audit of an unchanged head** (engine invocations; calls; blob reads)",
            "",
            f"| | {head} |",
            "| --- |" + " ---: |" * len(sizes),
        ]
        for label in ("/txaudit", "re-run"):
            cells = []
            for s in sizes:
                r = s.reaudits.get(label)
                if r is None:
                    cells.append("-")
                    continue
                cells.append(
                    f"{r['engine_runs']} parsed; {sum(r['calls'].values())} calls "
                    f"({r['not_modified']} × 304); {r['blob_reads']} blobs; "
                    f"{r['seconds']:.2f} s"
                )
            out.append(f"| {label} | " + " | ".join(cells) + " |")
        first = sizes[-1].reaudits.get("/txaudit")
        if first:
            listing = ", ".join(
                f"{_route_label(route)} {n}" for route, n in sorted(first["calls"].items())
            )
            out += ["", f"Calls of the `/txaudit` re-audit ({sizes[-1].files} files): {listing}."]
        out.append("")
    if loads:
        out += [
            "**4. Intake under load** (10-11-file PRs, 4 per installation, while a 100-file "
            "audit runs)",
            "",
            "| deliveries | answered by | p50 ms | p99 ms | p99 of each run | max ms "
            "| p99 vs the app process | check runs completed | all done after s |",
            "| ---: | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
        ]
        groups: dict[tuple[int, int], list[LoadResult]] = {}
        for load in loads:
            groups.setdefault((load.deliveries, load.intake), []).append(load)
        p99 = {key: statistics.median(r.p99_ms for r in runs) for key, runs in groups.items()}
        for (count, intake), runs in groups.items():
            by = f"{intake} intake processes" if intake else "the app process"
            base = p99.get((count, 0))
            ratio = f"{p99[count, intake] / base:.2f}x" if base and intake else ""
            out.append(
                f"| {count} | {by} | {statistics.median(r.p50_ms for r in runs):.1f} | "
                f"{p99[count, intake]:.1f} | {', '.join(f'{r.p99_ms:.0f}' for r in runs)} | "
                f"{max(r.max_ms for r in runs):.1f} | {ratio} | "
                f"{sum(r.completed for r in runs)} / {sum(r.expected for r in runs)} | "
                f"{statistics.median(r.seconds for r in runs):.1f} |"
            )
        out += [
            "",
            f"Medians of {args.load_rounds} runs each, interleaved. CPU seconds while a burst "
            "was answered (from the first send to the last answer; 2 cores; /proc counts "
            "in 10 ms ticks), medians:",
            "",
        ]
        for (count, intake), runs in groups.items():
            by = f"{intake} intake processes" if intake else "the app process"
            used = ", ".join(
                f"{name} {statistics.median(r.burst_cpu[name] for r in runs):.2f}"
                for name in runs[0].burst_cpu
            )
            burst = statistics.median(r.burst_ms for r in runs) / 1000
            out.append(f"- {count}, {by}: {used} (in {burst:.2f} s)")
        out.append("")
    if memory is not None or sizes:
        out += ["**5. Memory**", "", "| | MB |", "| --- | ---: |"]
        if sizes:
            big = sizes[-1]
            out.append(
                f"| peak RSS, {big.files}-file PR: app + workers | "
                f"{big.hwm_main_kb / 1024:.0f} + {big.hwm_workers_kb / 1024:.0f} |"
            )
        if memory is not None:
            out.append(
                f"| RSS after the first 50 audits: app + workers | {memory.after_first_mb:.0f} |"
            )
            out.append(
                f"| RSS after {memory.audits} audits: app + workers | "
                f"{memory.rss_main_mb:.0f} + {memory.rss_workers_mb:.0f} |"
            )
            out.append(
                f"| RSS of the {args.intake} intake processes after {memory.audits} audits | "
                f"{memory.rss_intake_mb:.0f} |"
            )
            out.append(
                f"| peak RSS of the app process over {memory.audits} audits | "
                f"{memory.hwm_main_mb:.0f} |"
            )
        out.append("")
    return "\n".join(out)


def write_doc(path: Path, section: str, label: str) -> None:
    """Insert or replace the `### <label>` section of the results in `path`."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Performance of the app\n"
    marker = f"### {label}"
    pattern = re.compile(rf"^{re.escape(marker)}\n.*?(?=^### |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section.rstrip() + "\n\n", text)
    else:
        text = text.rstrip() + "\n\n" + section.rstrip() + "\n"
    path.write_text(text, encoding="utf-8")


# --- main -------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, command: str) -> str:
    sizes = [int(s) for s in args.sizes.split(",") if s]
    args.max_modules = max([*sizes, 100])
    corpus = make_corpus(args.max_modules)
    print(f"corpus: {len(corpus.files)} modules", file=sys.stderr)
    fake = FakeGitHub(latency=args.latency)
    await fake.start()
    results: list[SizeResult] = []
    loads: list[LoadResult] = []
    memory: MemoryResult | None = None
    try:
        if "sizes" not in args.skip:
            for size in sizes:
                t0 = time.monotonic()
                results.append(await audit_size(fake, corpus, size, args))
                print(f"size {size}: {time.monotonic() - t0:.1f} s", file=sys.stderr)
        if "load" not in args.skip:
            for count in [int(c) for c in args.load.split(",") if c]:
                for round_ in range(args.load_rounds):  # interleaved: drift hits every setup
                    for intake in [int(n) for n in args.load_intake.split(",") if n]:
                        t0 = time.monotonic()
                        load = await intake_load(fake, corpus, count, intake, round_, args)
                        loads.append(load)
                        print(
                            f"load {count}, intake {intake}, round {round_ + 1}: "
                            f"p99 {load.p99_ms:.1f} ms, {time.monotonic() - t0:.1f} s",
                            file=sys.stderr,
                        )
        if "memory" not in args.skip and args.audits:
            t0 = time.monotonic()
            memory = await memory_many(fake, corpus, args.audits, args)
            print(f"memory: {time.monotonic() - t0:.1f} s", file=sys.stderr)
    finally:
        await fake.close()
    return report(args, results, loads, memory, command)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per GitHub call")
    parser.add_argument("--sizes", default="1,10,100,1000", help="changed files per PR")
    parser.add_argument("--load", default="50,200", help="concurrent deliveries")
    parser.add_argument("--audits", type=int, default=500, help="audits for the memory run")
    parser.add_argument("--workers", type=int, default=2, help="engine worker processes")
    parser.add_argument(
        "--intake", type=int, default=2, help="intake processes (0: the app process answers)"
    )
    parser.add_argument(
        "--load-intake", default="0,2", help="intake processes to compare in the load runs"
    )
    parser.add_argument("--load-rounds", type=int, default=3, help="runs of each load setup")
    parser.add_argument("--skip", default="", help="comma list of: sizes,load,memory")
    parser.add_argument("--quick", action="store_true", help="sizes 1,10; load 50; 50 audits")
    parser.add_argument("--profile", default=None, help="directory for pyinstrument reports")
    parser.add_argument("--label", default="", help="heading of this run's section")
    parser.add_argument("--write", default=None, help="Markdown file to put the table into")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.load, args.audits = "1,10", "50", 50
    random.seed(args.seed)
    command = "python benchmarks/bench_app.py " + " ".join(sys.argv[1:] if argv is None else argv)
    table = asyncio.run(run(args, command.strip()))
    print(table)
    if args.write:
        write_doc(Path(args.write), table, args.label or "Results")


if __name__ == "__main__":
    main()
