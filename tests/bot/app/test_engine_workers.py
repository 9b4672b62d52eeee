"""The engine's worker processes: each changed file is parsed once (its TX007 summary and its
audit run in the same worker, which keeps the tree in between), callee modules keep no tree,
and a worker that dies is replaced alone."""

from __future__ import annotations

import gc
import os
from typing import Any

import pytest
from app_helpers import ADAPTER, SCHEDULER, Harness, helper_source
from fakegithub import FakeGitHub
from fakegithub.routes import BLOB

import bot.app.engine_pool
from bot.app.engine_pool import AuditFailure, EngineRunner
from bot.app.server import ENGINE
from rules.engine.config import Config


def clean_source(index: int) -> str:
    return f'"""Module {index}."""\n\n\ndef describe_{index}(job) -> str:\n    return str(job)\n'


#: Changed files only: TX007 follows scheduler -> adapter inside the pull request.
CHANGED = {
    "app/__init__.py": "",
    "app/db.py": "def get_background_session(): ...\n",
    "app/adapter.py": ADAPTER,
    "app/scheduler.py": SCHEDULER,
    **{f"app/jobs_{i}.py": helper_source(2, start=10 * i) for i in range(6)},
    **{f"app/clean_{i}.py": clean_source(i) for i in range(6)},
}


def open_pr(fake: FakeGitHub, files: dict[str, str], base: dict[str, str] | None = None) -> Any:
    repo = fake.create_repo("acme/payments", files=base or {"README.md": "hello\n"})
    repo.push("feature", files)
    return repo.open_pull(head="feature")


async def totals(harness: Harness) -> dict[str, int]:
    stats = await harness.app[ENGINE].worker_stats()
    return {key: sum(s[key] for s in stats) for key in ("parses", "summaries", "trees", "frozen")}


def annotations(fake: FakeGitHub, pr: Any) -> list[tuple[Any, ...]]:
    [run] = [r for r in fake.runs_for(pr.head_sha) if r.status == "completed"][-1:]
    return sorted((a["path"], a["start_line"], a["title"], a["message"]) for a in run.annotations)


async def test_each_changed_file_is_parsed_once_in_the_workers(
    make_app_client: Any, fake_github: FakeGitHub
) -> None:
    harness = await make_app_client(fake_github, workers=2)
    pr = open_pr(fake_github, CHANGED)
    before = await totals(harness)
    await harness.deliver("pull_request", harness.pr_event("opened", pr))
    after = await totals(harness)
    count = len(CHANGED)
    assert fake_github.log.count(BLOB) == count  # no callee module outside the pull request
    assert harness.engine_runs == count
    # One summary and one audit per file, and one parse: the audit used the summary's tree.
    assert after["summaries"] - before["summaries"] == count
    assert after["parses"] - before["parses"] == count
    assert after["trees"] == 0  # every kept tree was taken by its audit
    assert after["frozen"] == 0  # and the worker thawed what it froze with them
    per_worker = [s["parses"] for s in await harness.app[ENGINE].worker_stats()]
    assert len(per_worker) == 2 and min(per_worker) >= count // 4, per_worker  # both worked
    found = annotations(fake_github, pr)
    assert sum(title.startswith("TX002") for _, _, title, _ in found) == 13  # jobs, adapter
    assert sum(title.startswith("TX007") for _, _, title, _ in found) == 1

    # The same pull request, audited by a server with the engine in a thread (no routing).
    single = await make_app_client(fake_github, workers=0)
    await single.deliver("pull_request", single.pr_event("reopened", pr))
    assert annotations(fake_github, pr) == found
    await single.settle()


async def test_callee_modules_keep_no_tree(make_app_client: Any, fake_github: FakeGitHub) -> None:
    harness = await make_app_client(fake_github, workers=2)
    base = {
        "app/__init__.py": "",
        "app/db.py": "def get_background_session(): ...\n",
        "app/adapter.py": ADAPTER,
    }
    pr = open_pr(fake_github, {"app/scheduler.py": SCHEDULER}, base)
    before = await totals(harness)
    await harness.deliver("pull_request", harness.pr_event("opened", pr))
    after = await totals(harness)
    read = fake_github.log.count(BLOB)
    assert read == 2  # the changed file, and app/adapter.py that it calls into
    # Each module read is parsed once: callees for their summaries only, never audited...
    assert after["parses"] - before["parses"] == read
    assert after["summaries"] - before["summaries"] == read
    # ...so their trees are not kept (the changed file's was taken by its audit).
    assert after["trees"] == 0
    [tx007] = [a for a in annotations(fake_github, pr) if a[2].startswith("TX007")]
    assert tx007[0] == "app/scheduler.py" and "adapter" in tx007[3]


class _KillsTheWorker:
    """Unpickled in a worker process, ends it (as a crash in libcst's native parser would)."""

    def __reduce__(self) -> tuple[Any, tuple[int]]:
        return os._exit, (3,)


@pytest.fixture
async def runner() -> Any:
    engine = EngineRunner(2)
    engine.start()
    yield engine
    engine.close()


async def test_a_dead_worker_is_replaced_alone(runner: EngineRunner) -> None:
    pids = [s["pid"] for s in await runner.worker_stats()]
    items = [(clean_source(i).encode(), f"app/m_{i}.py", f"sha{i}") for i in range(4)]
    poison: Any = _KillsTheWorker()
    with pytest.raises(AuditFailure) as failure:
        await runner.audit_many(items[:1], Config(), config_key="k", project=poison)
    assert str(failure.value) == "the rule engine's worker process died while auditing app/m_0.py"
    now = [s["pid"] for s in await runner.worker_stats()]
    assert len(set(now) & set(pids)) == 1 and len(set(now)) == 2  # one replaced, one kept
    results = await runner.audit_many(items, Config(), config_key="k")
    assert [r.path for r in results] == [path for _, path, _ in items]
    assert all(r.error is None for r in results)
    with pytest.raises(AuditFailure, match="died while reading the changed files"):
        await runner.summarize(items[0][0], poison, keep_tree=True)
    assert len(set(s["pid"] for s in await runner.worker_stats()) & set(now)) == 1


async def test_summaries_are_routed_by_pending_bytes(runner: EngineRunner) -> None:
    """A changed file's summary goes to the worker with the least work pending or kept;
    its audit goes where its tree is."""
    from rules.engine.callgraph import Vocab

    vocab = Vocab.from_config(Config())
    big = helper_source(200).encode()
    small = [helper_source(1, start=1000 + i).encode() for i in range(4)]
    await runner.summarize(big, vocab, keep_tree=True)
    for source in small:
        await runner.summarize(source, vocab, keep_tree=True)
    stats = await runner.worker_stats()
    assert sorted(s["trees"] for s in stats) == [1, 4]  # the small ones avoided the big one
    assert all(s["frozen"] > 0 for s in stats)  # kept trees are out of the collector's sight
    items = [(s, f"app/m_{i}.py", f"sha{i}") for i, s in enumerate([big, *small])]
    await runner.audit_many(items, Config(), config_key="k")
    stats = await runner.worker_stats()
    assert [s["trees"] for s in stats] == [0, 0]
    assert [s["frozen"] for s in stats] == [0, 0]
    assert sorted(s["parses"] for s in stats) == [1, 4]  # summaries' parses only


def test_a_worker_thaws_what_it_froze(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kept trees are frozen (`gc.freeze`) in a worker until an audit batch leaves the
    worker without trees, or `THAW_INTERVAL` passed: a tree that no audit takes does not
    keep cyclic garbage frozen for long."""
    from rules.engine import callgraph

    vocab = callgraph.Vocab.from_config(Config())
    sources = [helper_source(1, start=2000 + i).encode() for i in range(3)]
    monkeypatch.setattr(bot.app.engine_pool, "_IN_WORKER", True)  # as `_init_worker` sets it
    monkeypatch.setattr(bot.app.engine_pool, "_frozen_since", None)
    callgraph.clear_cache()
    try:
        for source in sources[:2]:
            assert bot.app.engine_pool._summarize(source, vocab, True)[1]
        assert gc.get_freeze_count() > 0
        bot.app.engine_pool._engine_audit_many([(sources[0], "a.py")], Config(), None)
        assert callgraph.kept_trees()[0] == 1 and gc.get_freeze_count() > 0  # b's tree
        monkeypatch.setattr(bot.app.engine_pool, "THAW_INTERVAL", 0.0)
        bot.app.engine_pool._engine_audit_many([(sources[2], "c.py")], Config(), None)
        assert gc.get_freeze_count() == 0  # b's tree is still kept, but frozen long enough
        monkeypatch.setattr(bot.app.engine_pool, "THAW_INTERVAL", 60.0)
        bot.app.engine_pool._summarize(sources[0], vocab, True)  # cached: no tree, nothing frozen
        assert gc.get_freeze_count() == 0
        bot.app.engine_pool._engine_audit_many([(sources[1], "b.py")], Config(), None)
        assert callgraph.kept_trees() == (0, 0) and gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()
        callgraph.clear_cache()
