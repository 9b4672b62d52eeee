"""The mutation bucket and the TX007 summary hand-over, without a server."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import bot.app.engine_pool
import bot.app.github
from bot.app.github import RetryPolicy, _Limiter
from rules.engine import callgraph
from rules.engine.config import Config

SOURCE = b"""
from app.repo import save


async def handler(session) -> None:
    await save(session)
"""


async def test_mutations_go_out_in_a_burst_then_one_per_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [100.0]
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(bot.app.github.time, "monotonic", lambda: clock[0])
    hub = SimpleNamespace(retry=RetryPolicy(mutation_interval=1.0, mutation_burst=3), sleep=sleep)
    limiter = _Limiter(hub)  # type: ignore[arg-type]
    for _ in range(3):
        await limiter.space_mutation()
    assert sleeps == []  # create, complete, review: no waiting
    await limiter.space_mutation()
    await limiter.space_mutation()
    assert sleeps == [pytest.approx(1.0), pytest.approx(1.0)]
    clock[0] += 10  # idle: the bucket refills up to the burst
    sleeps.clear()
    for _ in range(4):
        await limiter.space_mutation()
    assert sleeps == [pytest.approx(1.0)]


def test_a_summary_from_a_worker_is_not_computed_again() -> None:
    """`_prime_summary` hands a worker's summary to `rules.engine.callgraph.remember_summary`; the
    index then uses it instead of parsing the module again on the event loop."""
    vocab = callgraph.Vocab.from_config(Config())
    callgraph.clear_cache()
    summary = bot.app.engine_pool._summarize(SOURCE, vocab)[0]
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
