"""The mutation bucket and the TX007 summary hand-over, without a server."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest

import bot.app.engine_pool
import bot.app.github
from bot.app.pacing import LocalBuckets, Pacer, Priority, Rate, classify
from rules.engine import callgraph
from rules.engine.config import Config

SOURCE = b"""
from app.repo import save


async def handler(session) -> None:
    await save(session)
"""


def _pacer(clock: list[float], sleeps: list[float], *, burst: int = 3) -> Pacer:
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds

    return Pacer(LocalBuckets(lambda: clock[0]), sleep=sleep, writes=Rate("writes", 1.0, burst))


CHECK_RUNS = "https://api.github.com/repos/acme/payments/check-runs"


async def test_mutations_go_out_in_a_burst_then_one_per_interval() -> None:
    clock, sleeps = [100.0], []
    pacer = _pacer(clock, sleeps)
    for _ in range(3):
        await pacer.before("i1", "PATCH", CHECK_RUNS + "/1")
    assert sleeps == []  # create, complete, review: no waiting
    await pacer.before("i1", "PATCH", CHECK_RUNS + "/1")
    await pacer.before("i1", "PATCH", CHECK_RUNS + "/1")
    assert sleeps == [pytest.approx(1.0), pytest.approx(1.0)]
    clock[0] += 10  # idle: the bucket refills up to the burst
    sleeps.clear()
    for _ in range(4):
        await pacer.before("i1", "PATCH", CHECK_RUNS + "/1")
    assert sleeps == [pytest.approx(1.0)]
    await pacer.before("i2", "PATCH", CHECK_RUNS + "/1")  # another installation: its own pace
    assert sleeps == [pytest.approx(1.0)]


async def test_waiting_writes_go_out_creations_first() -> None:
    """A burst of audits: every check run is created before the first one completes."""
    clock, sleeps = [0.0], []
    pacer = _pacer(clock, sleeps, burst=1)
    reviews = "https://api.github.com/repos/acme/payments/pulls/{}/reviews"
    order: list[str] = []

    async def write(method: str, url: str, label: str) -> None:
        await pacer.before("i1", method, url)
        order.append(label)

    calls = []
    for n in range(4):
        calls.append(write("POST", reviews.format(n), f"review {n}"))
        calls.append(write("PATCH", f"{CHECK_RUNS}/{n}", f"complete {n}"))
        calls.append(write("POST", CHECK_RUNS, f"create {n}"))
    await asyncio.gather(*calls)
    kinds = [label.split()[0] for label in order]
    first = kinds[0]  # whatever came first went out at once (the burst)
    assert kinds[1:5].count("create") == 4 - (first == "create")
    assert kinds[-4:] == ["review"] * 4
    assert [p for _, p in pacer.granted].count(Priority.CREATE) == 4


def test_calls_are_charged_to_the_buckets_github_counts() -> None:
    write, priority, charges = classify(
        "POST", "https://ghe.example/api/v3/repos/a/b/pulls/7/reviews"
    )
    assert write and priority is Priority.CONTENT
    assert {c.key for c in charges} == {
        "points:/repos/{owner}/{repo}/pulls/{id}/reviews",
        "writes",
        "content-minute",
        "content-hour",
    }
    read, _, charges = classify("GET", "https://api.github.com/repos/a/b/git/blobs/" + "f" * 40)
    assert not read and [(c.key, c.cost) for c in charges] == [
        ("points:/repos/{owner}/{repo}/git/blobs/{id}", 1)
    ]
    query = b'{"query": "query { viewer { login } }"}'
    assert classify("POST", "https://api.github.com/graphql", query)[0] is False
    reply = json.dumps(
        {"query": "mutation { addPullRequestReviewThreadReply(input: {}) { clientMutationId } }"}
    ).encode()
    write, priority, _ = classify("POST", "https://api.github.com/graphql", reply)
    assert write and priority is Priority.CONTENT


async def test_content_is_limited_per_hour_even_when_writes_are_spaced() -> None:
    clock, sleeps = [0.0], []
    pacer = _pacer(clock, sleeps, burst=1000)
    reviews = "https://api.github.com/repos/acme/payments/pulls/1/reviews"
    for _ in range(80):  # GitHub's 80 per minute, at once
        await pacer.before("i1", "POST", reviews)
    assert sum(sleeps) == 0
    await pacer.before("i1", "POST", reviews)
    assert sum(sleeps) == pytest.approx(60 / 80)  # the 81st waits for the minute's bucket
    clock[0] += 3600
    sleeps.clear()
    for _ in range(600):
        await pacer.before("i1", "POST", reviews)
    # 500 at once, then one per 7.2 s (the hour's bucket) and the minute's within it
    assert sum(sleeps) == pytest.approx(100 * 3600 / 500, rel=0.02)


async def test_a_retry_after_holds_every_call_of_the_installation() -> None:
    clock, sleeps = [0.0], []
    pacer = _pacer(clock, sleeps)
    await pacer.pause("i1", 30)
    await pacer.before("i1", "GET", "https://api.github.com/repos/a/b/pulls/1")
    assert sleeps == [pytest.approx(30)]
    await pacer.before("i2", "GET", "https://api.github.com/repos/a/b/pulls/1")
    assert sleeps == [pytest.approx(30)]  # other installations are not held


def test_a_summary_from_a_worker_is_not_computed_again() -> None:
    """`_prime_summary` hands a worker's summary to `rules.engine.callgraph.remember_summary`; the
    index then uses it instead of parsing the module again on the event loop."""
    vocab = callgraph.Vocab.from_config(Config())
    callgraph.clear_cache()
    summary = bot.app.engine_pool._summarize(SOURCE, vocab)
    assert summary is not None
    callgraph.clear_cache()
    bot.app.engine_pool._prime_summary(SOURCE, vocab, summary)
    index = callgraph.ProjectIndex({"app/handler.py", "app/repo.py"}, config=Config())
    index.add_source("app/handler.py", SOURCE)
    assert callgraph.STATS["computed"] == 0
    assert index.has("app/handler.py") and index.summary("app/handler.py") == summary


def test_caches_are_bounded_by_size_not_count() -> None:
    etags = bot.app.github._ConditionalCache(max_bytes=100_000)
    page = [{"filename": f"f{i}.py", "patch": "+x\n" * 1000} for i in range(10)]  # ~30 KB
    for n in range(20):
        etags[f"/repos/o/r/pulls/{n}/files"] = ("etag", None, page, None)
    assert etags.currsize <= 100_000 and len(etags) == 3
    etags["/repos/o/r/pulls/99/files"] = ("etag", None, page * 10, None)  # too big: not kept
    assert "/repos/o/r/pulls/99/files" not in etags

    engine = bot.app.engine_pool.EngineRunner(0)
    finding = SimpleNamespace(message="m" * 1_000_000, snippet="", fix=None)
    big = SimpleNamespace(error=None, findings=(finding,) * 40, suppressions=())
    engine._remember(("sha", "a.py", "cfg"), big)  # type: ignore[arg-type]
    assert engine._results.get(("sha", "a.py", "cfg")) is None  # over the whole bound
