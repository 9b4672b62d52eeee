"""The engine's worker processes: each changed file is parsed for its TX007 summary and for
its audit, callee modules for their summaries only; the work is spread over the workers, and
a worker that dies is replaced alone."""

from __future__ import annotations

import os
from typing import Any

import pytest
from app_helpers import ADAPTER, SCHEDULER, Harness, helper_source
from fakegithub import FakeGitHub
from fakegithub.routes import BLOB

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
    return {key: sum(s[key] for s in stats) for key in ("parses", "summaries", "index_loads")}


def annotations(fake: FakeGitHub, pr: Any) -> list[tuple[Any, ...]]:
    [run] = [r for r in fake.runs_for(pr.head_sha) if r.status == "completed"][-1:]
    return sorted((a["path"], a["start_line"], a["title"], a["message"]) for a in run.annotations)


async def test_each_changed_file_is_summarised_and_audited_in_the_workers(
    make_app_client: Any, fake_github: FakeGitHub
) -> None:
    harness = await make_app_client(fake_github, workers=2)
    pr = open_pr(fake_github, CHANGED)
    before = await totals(harness)
    # libcst (for TX001's fixes) is imported when a worker starts, not in the first audit
    assert [s["libcst_loaded"] for s in await harness.app[ENGINE].worker_stats()] == [1, 1]
    await harness.deliver("pull_request", harness.pr_event("opened", pr))
    after = await totals(harness)
    count = len(CHANGED)
    assert fake_github.log.count(BLOB) == count  # no callee module outside the pull request
    assert harness.engine_runs == count
    # One summary and one audit per file, each with its own `ast.parse` (nothing is kept).
    assert after["summaries"] - before["summaries"] == count
    assert after["parses"] - before["parses"] == 2 * count
    per_worker = [s["parses"] for s in await harness.app[ENGINE].worker_stats()]
    assert len(per_worker) == 2 and min(per_worker) >= count // 2, per_worker  # both worked
    # The TX007 index went out pickled once and was unpickled once per worker, not per batch
    # (2 batches per worker); pickled per batch it cost seconds for 1,000 files.
    assert after["index_loads"] - before["index_loads"] == 2
    found = annotations(fake_github, pr)
    assert sum(title.startswith("TX002") for _, _, title, _ in found) == 13  # jobs, adapter
    assert sum(title.startswith("TX007") for _, _, title, _ in found) == 1

    # The same pull request, audited by a server with the engine in a thread (no routing).
    single = await make_app_client(fake_github, workers=0)
    await single.deliver("pull_request", single.pr_event("reopened", pr))
    assert annotations(fake_github, pr) == found
    await single.settle()


async def test_callee_modules_are_only_summarised(
    make_app_client: Any, fake_github: FakeGitHub
) -> None:
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
    # Each module read is summarised once; only the changed file is audited too.
    assert after["summaries"] - before["summaries"] == read
    assert after["parses"] - before["parses"] == read + 1
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
        await runner.summarize(items[0][0], poison)
    assert len(set(s["pid"] for s in await runner.worker_stats()) & set(now)) == 1


async def test_work_is_spread_by_bytes(runner: EngineRunner) -> None:
    """One big file and four small ones: the big one's worker gets none of the small ones."""
    big = helper_source(200).encode()
    small = [helper_source(1, start=1000 + i).encode() for i in range(4)]
    before = {s["pid"]: s["parses"] for s in await runner.worker_stats()}
    items = [(s, f"app/m_{i}.py", f"sha{i}") for i, s in enumerate([big, *small])]
    await runner.audit_many(items, Config(), config_key="k")
    stats = await runner.worker_stats()
    assert sorted(s["parses"] - before[s["pid"]] for s in stats) == [1, 4]
