"""The embedded server and shared mode side by side, against the fake GitHub at 50 ms latency.

Real processes, as deployed: `python -m bot` (embedded: one process, the in-memory queue) and,
in shared mode, `python -m bot` as the web process plus `txaudit worker` processes on a real
`redis-server` (started here on a free loopback port). The fake GitHub runs in this process.

1. **Burst**: 50 pull requests opened at once on one installation, GitHub's pacing on (writes
   1 s apart after a burst of 5): when each pull request shows its check run, and when its
   audit is complete (check run completed and review posted). Targets: 60 s and 120 s.
2. **Throughput**: 120 pull requests on 12 installations, audits per minute with 1 and 2
   workers (pacing per installation, as in production).
3. **Webhook latency**: 400 deliveries one after another; p50 and p99 of the answer.

    python benchmarks/bench_queue.py                 # all three
    python benchmarks/bench_queue.py --only burst --prs 50
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from app_helpers import free_port, helper_source  # noqa: E402
from fakegithub import FakeGitHub, PullRequest, payloads  # noqa: E402
from fakegithub.state import Installation  # noqa: E402
from redis_server import RedisServer  # noqa: E402

PATH = "app/services/jobs.py"
CREATE = "POST /repos/{o}/{r}/check-runs"


class Deployment:
    """The app's processes against `fake`: embedded, or a web process plus workers."""

    def __init__(
        self, fake: FakeGitHub, *, workers: int, redis: RedisServer | None, **env: str
    ) -> None:
        self.extra_env = env
        self.fake = fake
        self.workers = workers
        self.redis = redis
        self.processes: list[asyncio.subprocess.Process] = []
        self.url = ""

    def _env(self, **extra: str) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(REPO),
            "GITHUB_APP_ID": str(self.fake.app_id),
            "GITHUB_PRIVATE_KEY": self.fake.private_key_pem,
            "GITHUB_WEBHOOK_SECRET": self.fake.webhook_secret,
            "GITHUB_API_URL": self.fake.url,
            "TXAUDIT_REDELIVER_INTERVAL": "0",
            "TXAUDIT_LOG_LEVEL": "WARNING",
            **self.extra_env,
            **extra,
        }
        if self.redis is not None:
            env["REDIS_URL"] = self.redis.url
        return env

    async def start(self) -> None:
        port = free_port()
        web = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            env=self._env(PORT=str(port)),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        self.processes.append(web)
        if self.redis is not None:
            for _ in range(self.workers):
                worker = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bot.app.worker",
                    env=self._env(),
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
                self.processes.append(worker)
        self.url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            for _ in range(600):
                try:
                    async with session.get(self.url + "/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        await asyncio.sleep(1.0 if self.redis is not None else 0.1)  # workers connect

    async def stop(self) -> None:
        for process in self.processes:
            if process.returncode is None:
                process.terminate()
        for process in self.processes:
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        self.processes.clear()


def _installation(fake: FakeGitHub, n: int) -> int:
    if n == 0:
        return fake.installation_id
    iid = 3_000_000 + n
    fake.installations[iid] = Installation(iid, fake.app_id, f"team{n}")
    fake.organizations.add(f"team{n}")
    return iid


def _prs(
    fake: FakeGitHub, count: int, installations: int, tag: str
) -> list[tuple[PullRequest, int]]:
    ids = [_installation(fake, n) for n in range(installations)]
    out = []
    for n in range(count):
        iid = ids[n % installations]
        owner = fake.installations[iid].account if n % installations else "acme"
        repo = fake.create_repo(f"{owner}/{tag}{n}", files={"README.md": "hello\n"})
        repo.push("feature", {PATH: helper_source(2)})
        pr = repo.open_pull(head="feature", user="alice")
        pr.files()
        out.append((pr, iid))
    return out


async def _open_all(
    fake: FakeGitHub, url: str, prs: Sequence[tuple[PullRequest, int]]
) -> tuple[float, list[float]]:
    """Deliver every `opened` at once; (monotonic start, each answer's seconds)."""
    async with aiohttp.ClientSession() as session:

        async def one(pr: PullRequest, iid: int) -> float:
            event = payloads.pull_request_event(fake, pr, "opened", installation_id=iid)
            began = time.monotonic()
            status = await payloads.send(fake, session, "pull_request", event, url=url + "/webhook")
            assert status == 202, status
            return time.monotonic() - began

        started = time.monotonic()
        answers = await asyncio.gather(*(one(pr, iid) for pr, iid in prs))
    return started, list(answers)


def _done(fake: FakeGitHub, pr: PullRequest) -> bool:
    runs = fake.runs_for(pr.head_sha, name="txaudit")
    return bool(runs) and all(r.status == "completed" for r in runs) and bool(fake.reviews_of(pr))


async def _watch(
    fake: FakeGitHub, prs: Sequence[PullRequest], timeout: float
) -> tuple[dict[int, float], dict[int, float]]:
    """When each pull request first shows a check run, and when its audit is complete."""
    shown: dict[int, float] = {}
    complete: dict[int, float] = {}
    deadline = time.monotonic() + timeout
    while len(complete) < len(prs) and time.monotonic() < deadline:
        now = time.monotonic()
        for index, pr in enumerate(prs):
            if index not in shown and fake.runs_for(pr.head_sha, name="txaudit"):
                shown[index] = now
            if index not in complete and _done(fake, pr):
                complete[index] = now
        await asyncio.sleep(0.02)
    return shown, complete


def _check_correct(fake: FakeGitHub, prs: Sequence[PullRequest]) -> str:
    wrong = 0
    for pr in prs:
        runs = fake.runs_for(pr.head_sha, name="txaudit")
        ok = len(runs) == 1 and runs[0].conclusion == "failure" and len(runs[0].annotations) == 2
        ok = ok and len(fake.reviews_of(pr)) == 1 and len(fake.review_comments_of(pr)) == 2
        wrong += not ok
    return "all correct" if not wrong else f"{wrong} WRONG"


async def burst(args: argparse.Namespace, redis: RedisServer) -> None:
    print(f"\n## 1. Burst: {args.prs} pull requests at once, one installation, GitHub's pacing")
    print(
        "| mode | answered (max) | all check runs shown | all audits complete "
        "| created completed | check runs |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    modes = (("embedded", 0, False), ("shared, 2 workers", 2, True))
    for label, workers, shared in modes:
        if args.mode and args.mode != ("shared" if shared else "embedded"):
            continue
        fake = FakeGitHub(latency=args.latency)
        await fake.start()
        if shared:
            redis.flush()
        deployment = Deployment(fake, workers=workers, redis=redis if shared else None)
        await deployment.start()
        try:
            pairs = _prs(fake, args.prs, 1, "burst")
            prs = [pr for pr, _ in pairs]
            watcher = asyncio.ensure_future(_watch(fake, prs, timeout=300))
            started, answers = await _open_all(fake, deployment.url, pairs)
            shown, complete = await watcher
            runs = [run for pr in prs for run in fake.runs_for(pr.head_sha, name="txaudit")]
            at_once = sum(run.history[0].get("status") == "completed" for run in runs)
            last_shown = max(shown.values()) - started if len(shown) == len(prs) else float("inf")
            last_done = (
                max(complete.values()) - started if len(complete) == len(prs) else float("inf")
            )
            print(
                f"| {label} | {max(answers) * 1000:.0f} ms | {last_shown:.1f} s "
                f"| {last_done:.1f} s "
                f"| {at_once} of {len(runs)} | {_check_correct(fake, prs)} |"
            )
        finally:
            await deployment.stop()
            await fake.close()


async def throughput(args: argparse.Namespace, redis: RedisServer) -> None:
    count, installations = args.throughput_prs, 12
    print(f"\n## 2. Throughput: {count} pull requests on {installations} installations")
    print("| mode | GitHub pacing | seconds | audits per minute |")
    print("| --- | --- | --- | --- |")
    for label, workers, shared, interval in (
        ("embedded", 0, False, "1"),
        ("shared, 1 worker", 1, True, "1"),
        ("shared, 2 workers", 2, True, "1"),
        ("embedded", 0, False, "0"),
        ("shared, 1 worker", 1, True, "0"),
        ("shared, 2 workers", 2, True, "0"),
    ):
        fake = FakeGitHub(latency=args.latency)
        await fake.start()
        if shared:
            redis.flush()
        deployment = Deployment(
            fake,
            workers=workers,
            redis=redis if shared else None,
            TXAUDIT_WRITE_INTERVAL=interval,
        )
        await deployment.start()
        try:
            pairs = _prs(fake, count, installations, "tp")
            prs = [pr for pr, _ in pairs]
            watcher = asyncio.ensure_future(_watch(fake, prs, timeout=600))
            started, _ = await _open_all(fake, deployment.url, pairs)
            _, complete = await watcher
            seconds = max(complete.values()) - started
            print(
                f"| {label} | {'on' if interval == '1' else 'off'} | {seconds:.1f} s "
                f"| {len(complete) / seconds * 60:.0f} "
                f"({_check_correct(fake, prs)}) |"
            )
        finally:
            await deployment.stop()
            await fake.close()


async def webhook_latency(args: argparse.Namespace, redis: RedisServer) -> None:
    count = args.deliveries
    print(f"\n## 3. Webhook answers: {count} deliveries one after another")
    print("| mode | p50 | p99 | max |")
    print("| --- | --- | --- | --- |")
    for label, shared in (("embedded", False), ("shared (web stores in Redis)", True)):
        fake = FakeGitHub(latency=args.latency)
        await fake.start()
        if shared:
            redis.flush()
        deployment = Deployment(fake, workers=1, redis=redis if shared else None)
        await deployment.start()
        try:
            [(pr, iid)] = _prs(fake, 1, 1, "hook")
            times = []
            async with aiohttp.ClientSession() as session:
                event = payloads.pull_request_event(fake, pr, "opened", installation_id=iid)
                for _ in range(count):
                    began = time.perf_counter()
                    await payloads.send(
                        fake, session, "pull_request", event, url=deployment.url + "/webhook"
                    )
                    times.append(time.perf_counter() - began)
            times.sort()
            p50, p99 = statistics.median(times), times[int(len(times) * 0.99) - 1]
            print(
                f"| {label} | {p50 * 1000:.1f} ms | {p99 * 1000:.1f} ms "
                f"| {times[-1] * 1000:.1f} ms |"
            )
        finally:
            await deployment.stop()
            await fake.close()


async def main(args: argparse.Namespace) -> None:
    redis = RedisServer(Path(tempfile.mkdtemp(prefix="bench-redis-")))
    redis.start()
    print(
        f"bench_queue: {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, fake latency "
        f"{args.latency * 1000:.0f} ms, redis-server on :{redis.port}"
    )
    try:
        if args.only in (None, "burst"):
            await burst(args, redis)
        if args.only in (None, "throughput"):
            await throughput(args, redis)
        if args.only in (None, "webhook"):
            await webhook_latency(args, redis)
    finally:
        redis.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["burst", "throughput", "webhook"])
    parser.add_argument("--prs", type=int, default=50)
    parser.add_argument("--mode", choices=["embedded", "shared"], help="burst: only this mode")
    parser.add_argument("--throughput-prs", type=int, default=120)
    parser.add_argument("--deliveries", type=int, default=400)
    parser.add_argument("--latency", type=float, default=0.05)
    asyncio.run(main(parser.parse_args()))
