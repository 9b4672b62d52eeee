"""GitHub calls per audit, pinned to the minimum the API allows (benchmarks/bench_app.py
measures the same at scale; docs/PERFORMANCE.md has the numbers).

Minimum for an audit of a pull request at a new head: ceil(files/100) listing pages, one
blob read per file not cached, the config, the check run's create and max(1,
ceil(annotations/50)) updates, one review when there are new comments, the dedupe listing,
plus a token and `GET /app` once per process. On top of that, on purpose: the head tree
(modes and sizes; TX007's module paths), one re-read of the pull request's head before
completing (results for an old head never land), and the look for orphaned runs.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import pytest
from app_helpers import Harness, helper_source
from fakegithub import FakeGitHub, PullRequest
from fakegithub.routes import (
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

import bot.app.engine_pool

CONFIG = ".github/txaudit.yml"


def clean_source(index: int) -> str:
    return f'"""Module {index}."""\n\n\ndef describe_{index}(job) -> str:\n    return str(job)\n'


def make_pr(fake: FakeGitHub, count: int, *, with_findings: int) -> PullRequest:
    """A pull request changing `count` Python files, the first `with_findings` with one
    finding each (a config exists, so it is read in one call)."""
    repo = fake.create_repo("acme/service", files={"README.md": "hi\n", CONFIG: "fail_on: error\n"})
    files = {
        f"app/mod_{i:04}.py": helper_source(1, start=i) if i < with_findings else clean_source(i)
        for i in range(count)
    }
    repo.commit(files, branch="feature")
    pr = repo.open_pull(head="feature")
    pr.files()
    return pr


def calls(fake: FakeGitHub) -> Counter[str]:
    return fake.log.by_route()


def minimum(fake: FakeGitHub, pr: PullRequest, *, cold: bool = True) -> dict[str, int]:
    [run] = [r for r in fake.runs_for(pr.head_sha) if r.status == "completed"][-1:]
    return {
        LIST_FILES: math.ceil(len(pr.files()) / 100),
        BLOB: len(pr.files()),
        CONTENTS: 1,
        CREATE_RUN: 1,
        UPDATE_RUN: max(1, math.ceil(len(run.annotations) / 50)),
        REVIEW: 1 if fake.reviews_of(pr) else 0,
        COMMENTS: 1,
        TOKEN: int(cold),
        APP: int(cold),
    }


#: The calls made on purpose on top of the minimum (see the module docstring).
EXTRA = {TREE: 1, PULL: 1, RUNS_FOR_REF: 1}


async def opened(harness: Harness, pr: PullRequest) -> None:
    harness.fake.log.clear()
    await harness.deliver("pull_request", harness.pr_event("opened", pr))


async def test_ten_file_pr_makes_the_minimum_calls(app_client: Harness) -> None:
    fake = app_client.fake
    pr = make_pr(fake, 10, with_findings=3)
    await opened(app_client, pr)
    [run] = fake.runs_for(pr.head_sha)
    assert run.conclusion == "failure" and len(run.annotations) == 3
    assert len(fake.review_comments_of(pr)) == 3
    assert calls(fake) == Counter({**minimum(fake, pr), **EXTRA}), fake.log.summary()


async def test_pages_of_a_large_pr_are_fetched_at_once(app_client: Harness) -> None:
    fake = app_client.fake
    pr = make_pr(fake, 230, with_findings=120)
    fake.faults.add(route=LIST_FILES, delay=0.3, times=None)
    await opened(app_client, pr)
    [run] = fake.runs_for(pr.head_sha)
    assert len(run.annotations) == 120
    expected = {**minimum(fake, pr), **EXTRA}
    assert expected[LIST_FILES] == 3 and expected[UPDATE_RUN] == 3
    assert calls(fake) == Counter(expected), fake.log.summary()
    pages = sorted(r.query.get("page", "1") for r in fake.log.calls(LIST_FILES))
    assert pages == ["1", "2", "3"]
    # all pages asked for before the first answer came back
    listing = fake.log.calls(LIST_FILES)
    assert max(r.started for r in listing) < min(r.started + r.duration for r in listing)


async def test_reads_start_together_with_the_check_run(app_client: Harness) -> None:
    """Config, listing, tree and the dedupe listing do not wait for the check run."""
    fake = app_client.fake
    pr = make_pr(fake, 3, with_findings=1)
    fake.faults.add(route=CREATE_RUN, delay=0.3)
    await opened(app_client, pr)
    create = fake.log.calls(CREATE_RUN)[0]
    for route in (CONTENTS, LIST_FILES, TREE, COMMENTS):
        [read] = fake.log.calls(route)
        assert read.started < create.started + create.duration, route


async def reaudit(harness: Harness, pr: PullRequest, how: str) -> dict[str, Any]:
    fake = harness.fake
    runs_before = harness.engine_runs
    fake.log.clear()
    if how == "comment":
        await harness.deliver("issue_comment", harness.comment_event(pr, "/txaudit"))
    else:
        run = fake.runs_for(pr.head_sha)[-1]
        await harness.deliver("check_run", harness.check_run_event("rerequested", run))
    return {"parsed": harness.engine_runs - runs_before, "calls": calls(fake)}


@pytest.mark.parametrize("how", ["comment", "rerun"])
async def test_reaudit_of_an_unchanged_head_parses_and_reads_nothing(
    app_client: Harness, how: str
) -> None:
    fake = app_client.fake
    pr = make_pr(fake, 10, with_findings=3)
    await opened(app_client, pr)
    assert app_client.engine_runs == 10
    result = await reaudit(app_client, pr, how)
    assert result["parsed"] == 0
    done = [r for r in fake.runs_for(pr.head_sha) if r.status == "completed"]
    assert len(done) == 2 and done[-1].conclusion == "failure"
    expected = {
        PULL: 2,  # the current head for the request, the re-read before completing
        CREATE_RUN: 1,
        UPDATE_RUN: 1,
        CONTENTS: 1,  # conditional: 304
        LIST_FILES: 1,  # conditional: 304
        COMMENTS: 1,
        RUNS_FOR_REF: 1,
    }
    if how == "comment":
        expected[REACTION] = 1
    assert result["calls"] == Counter(expected), fake.log.summary()
    assert fake.log.not_modified >= 2
    assert len(fake.reviews_of(pr)) == 1  # nothing new to say: no second review


async def test_engine_runs_in_batches(app_client: Harness, monkeypatch: Any) -> None:
    """One worker call per batch (2 per worker), not per file: the TX007 index is pickled
    once per batch."""
    batches: list[int] = []
    real = bot.app.engine_pool._engine_audit_many

    def counting(items: Any, *args: Any) -> Any:
        batches.append(len(items))
        return real(items, *args)

    monkeypatch.setattr(bot.app.engine_pool, "_engine_audit_many", counting)
    pr = make_pr(app_client.fake, 10, with_findings=2)
    await opened(app_client, pr)
    assert sorted(batches) == [5, 5]
