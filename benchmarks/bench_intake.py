"""CPU per webhook delivery of one intake process, on asyncio's loop and on uvloop, side by side.

One intake process (`bot.app.intake_pool`) answers N signed `pull_request.opened` deliveries sent
one after another, each on a new connection (as GitHub does), from a separate client process.
The intake process's CPU time comes from /proc, so neither the client nor the audit side counts.

    python benchmarks/bench_intake.py            # 3,000 deliveries per loop, 3 rounds
    python benchmarks/bench_intake.py --deliveries 500 --rounds 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from fakegithub import FakeGitHub, payloads  # noqa: E402

from bot.app.handlers import routed_actions  # noqa: E402
from bot.app.intake_pool import IntakeConfig, IntakePool, listening_socket  # noqa: E402
from bot.app.loop import LOOP_VARIABLE  # noqa: E402

SECRET = "bench-secret"


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _client(port: int, requests: list[bytes], conn: Any) -> None:
    """Child process: send each request on a new connection and read its whole answer."""
    started = time.perf_counter()
    for request in requests:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(request)
            while sock.recv(65536):
                pass  # the intake closes the connection after its answer (Connection: close)
    conn.send(time.perf_counter() - started)


def _requests(count: int) -> list[bytes]:
    fake = FakeGitHub()
    repo = fake.create_repo("acme/payments", files={"app/a.py": "x = 1\n"})
    repo.push("feature", {"app/b.py": "y = 2\n"})
    pr = repo.open_pull(head="feature")
    body = json.dumps(payloads.pull_request_event(fake, pr, "opened", installation_id=1)).encode()
    out = []
    for i in range(count):
        headers = payloads.webhook_headers("pull_request", body, SECRET, delivery_id=f"d-{i}")
        lines = [
            "POST /webhook HTTP/1.1",
            "Host: 127.0.0.1",
            f"Content-Length: {len(body)}",
            "Connection: close",
            *(f"{k}: {v}" for k, v in headers.items() if k.lower() != "content-length"),
        ]
        out.append(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    return out


async def measure(loop_name: str, requests: list[bytes]) -> tuple[float, float]:
    """(intake CPU ms per delivery, wall ms per delivery) with the intake on `loop_name`."""
    os.environ[LOOP_VARIABLE] = loop_name  # the intake process inherits it
    listener = listening_socket(0, host="127.0.0.1")
    taken: list[Any] = []
    pool = IntakePool(1, listener, IntakeConfig(SECRET, routed_actions()), take=taken.append)
    await pool.start()
    try:
        [pid] = pool.pids
        cpu_before = _cpu_seconds(pid)
        parent, child = multiprocessing.get_context("fork").Pipe()
        client = multiprocessing.get_context("fork").Process(
            target=_client, args=(listener.getsockname()[1], requests, child)
        )
        client.start()
        wall = await asyncio.get_running_loop().run_in_executor(None, parent.recv)
        client.join()
        while len(taken) < len(requests):  # the last frames are still on their way
            await asyncio.sleep(0.01)
        cpu = _cpu_seconds(pid) - cpu_before
    finally:
        await pool.close()
        listener.close()
    return 1000 * cpu / len(requests), 1000 * wall / len(requests)


async def main(args: argparse.Namespace) -> None:
    requests = _requests(args.deliveries)
    results: dict[str, list[tuple[float, float]]] = {"asyncio": [], "uvloop": []}
    for _ in range(args.rounds):  # interleaved, so that drift in the machine hits both
        for name in results:
            results[name].append(await measure(name, requests))
    cpu = {name: statistics.median(r[0] for r in runs) for name, runs in results.items()}
    wall = {name: statistics.median(r[1] for r in runs) for name, runs in results.items()}
    print(f"{args.deliveries} deliveries x {args.rounds} rounds, medians; {os.cpu_count()} CPUs")
    print()
    print("| intake process on | CPU ms per delivery | wall ms per delivery (sequential) |")
    print("| --- | ---: | ---: |")
    for name in results:
        print(f"| {name} | {cpu[name]:.3f} | {wall[name]:.3f} |")
    print(
        f"| uvloop / asyncio | {cpu['uvloop'] / cpu['asyncio']:.2f}x | "
        f"{wall['uvloop'] / wall['asyncio']:.2f}x |"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
