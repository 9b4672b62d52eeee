"""Audits of pull requests end to end: webhook in, check run and review out."""

from __future__ import annotations

import asyncio
import os

import pytest
from app_helpers import ADAPTER, SCHEDULER, Harness, helper_source
from fakegithub import FakeGitHub, Symlink

import bot.app.auditor
import bot.app.engine_pool
from bot.app.server import ENGINE

PATH = "app/jobs.py"


def make_pr(
    fake: FakeGitHub,
    files: dict,
    *,
    base_files: dict | None = None,
    user: str = "alice",
    name: str = "acme/payments",
):
    repo = fake.create_repo(name, files=base_files or {"README.md": "hello\n"})
    repo.push("feature", files)
    return repo, repo.open_pull(head="feature", user=user)


async def opened(app_client: Harness, pr, **kwargs):
    return await app_client.deliver("pull_request", app_client.pr_event("opened", pr), **kwargs)


async def test_opened_pr_gets_check_run_and_review(app_client: Harness) -> None:
    fake = app_client.fake
    repo, pr = make_pr(fake, {PATH: helper_source(2)})
    response = await opened(app_client, pr)
    assert response.status == 202
    [run] = fake.runs_for(pr.head_sha)
    assert run.name == "txaudit"
    assert run.status == "completed" and run.conclusion == "failure"
    assert run.external_id == f"acme/payments#{pr.number}@{pr.head_sha}"
    assert run.history[0]["status"] == "in_progress"
    assert run.output["title"] == "2 errors in 1 file"
    assert len(run.annotations) == 2
    assert run.actions and run.actions[0]["identifier"] == "reaudit"
    [review] = fake.reviews_of(pr)
    assert review.state == "COMMENTED" and review.commit_id == pr.head_sha
    comments = fake.review_comments_of(pr)
    assert len(comments) == 2
    assert all("TX002" in c.body and c.path == PATH for c in comments)
    # Without a guide configured, rules link to this server's /rules page.
    assert "https://txaudit.example.com/rules/TX002" in run.output["summary"]
    # The check run is created before anything else is read.
    routes = [r.route for r in fake.log if r.auth == "token"]
    assert routes[0] == "POST /repos/{o}/{r}/check-runs"


@pytest.mark.parametrize("action", ["reopened", "synchronize", "ready_for_review"])
async def test_other_actions_audit_the_head(app_client: Harness, action: str) -> None:
    _, pr = make_pr(app_client.fake, {PATH: helper_source(1)})
    response = await app_client.deliver("pull_request", app_client.pr_event(action, pr))
    assert response.status == 202
    [run] = app_client.fake.runs_for(pr.head_sha)
    assert run.conclusion == "failure"


async def test_edited_audits_only_when_the_base_changed(app_client: Harness) -> None:
    fake = app_client.fake
    repo, pr = make_pr(fake, {PATH: helper_source(1)})
    title_only = app_client.pr_event("edited", pr, changes={"title": {"from": "Old"}})
    await app_client.deliver("pull_request", title_only)
    assert fake.runs_for(pr.head_sha) == []
    repo.commit({".github/txaudit.yml": "fail_on: never\n"}, branch="release")
    changes = pr.change_base("release")
    await app_client.deliver("pull_request", app_client.pr_event("edited", pr, changes=changes))
    [run] = fake.runs_for(pr.head_sha)
    assert run.conclusion == "success"  # the new base's configuration applies


async def test_no_python_files(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake, {"docs/guide.md": "# Guide\n", "tests/test_x.py": helper_source(1)})
    await opened(app_client, pr)
    [run] = fake.runs_for(pr.head_sha)
    assert run.conclusion == "success"
    assert run.output["title"] == "No Python files changed"
    assert fake.reviews_of(pr) == []


async def test_clean_code_succeeds_without_review(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake, {PATH: "def add(a, b):\n    return a + b\n"})
    await opened(app_client, pr)
    [run] = fake.runs_for(pr.head_sha)
    assert run.conclusion == "success"
    assert fake.reviews_of(pr) == []
    assert fake.log.count("POST /repos/{o}/{r}/pulls/{n}/reviews") == 0


# --- configuration from the base commit ------------------------------------------------


async def test_invalid_config_on_base_fails_naming_the_key(app_client: Harness) -> None:
    fake = app_client.fake
    base = {".github/txaudit.yml": "rules:\n  TX999: error\n"}
    _, pr = make_pr(fake, {PATH: helper_source(1)}, base_files=base)
    await opened(app_client, pr)
    [run] = fake.runs_for(pr.head_sha)
    assert run.conclusion == "failure"
    assert "TX999" in run.output["title"]
    assert "rules.TX999" in run.output["summary"]
    assert fake.reviews_of(pr) == []


async def test_config_comes_from_base_not_head(app_client: Harness) -> None:
    fake = app_client.fake
    base = {".github/txaudit.yml": "rules:\n  TX002: warning\n"}
    weakened = {".github/txaudit.yml": "rules:\n  TX002: off\n", PATH: helper_source(1)}
    _, pr = make_pr(fake, weakened, base_files=base)
    await opened(app_client, pr)
    [run] = fake.runs_for(pr.head_sha)
    # The head turns TX002 off; the base makes it a warning, and the base wins.
    assert run.conclusion == "success"
    assert run.output["title"] == "1 warning in 1 file"
    assert len(fake.review_comments_of(pr)) == 1
    reads = fake.log.calls("GET /repos/{o}/{r}/contents/{path}")
    assert reads and all(r.query.get("ref") == pr.base_sha for r in reads)


async def test_pyproject_config_on_base(app_client: Harness) -> None:
    fake = app_client.fake
    base = {"pyproject.toml": '[project]\nname = "x"\n\n[tool.txaudit]\nfail_on = "never"\n'}
    _, pr = make_pr(fake, {PATH: helper_source(1)}, base_files=base)
    await opened(app_client, pr)
    [run] = fake.runs_for(pr.head_sha)
    assert run.conclusion == "success"
    assert "pyproject.toml" in run.output["summary"]


async def test_on_error_neutral_from_config(app_client: Harness, monkeypatch) -> None:
    fake = app_client.fake
    base = {".github/txaudit.yml": "on_error: neutral\n"}
    _, pr = make_pr(fake, {PATH: helper_source(1)}, base_files=base)
    monkeypatch.setattr(bot.app.auditor, "build_outcome", _explode)
    await opened(app_client, pr)
    [run] = fake.runs_for(pr.head_sha)
    assert run.conclusion == "neutral"


# --- files -------------------------------------------------------------------------------


async def test_all_pages_of_files_are_audited(app_client: Harness) -> None:
    fake = app_client.fake
    files = {f"app/mod_{i:03}.py": f"VALUE = {i}\n" for i in range(150)}
    files["app/zzz_last.py"] = helper_source(1)
    _, pr = make_pr(fake, files)
    await opened(app_client, pr)
    [run] = fake.runs_for(pr.head_sha)
    assert run.conclusion == "failure"
    assert "Audited 151 Python files" in run.output["summary"]
    pages = fake.log.calls("GET /repos/{o}/{r}/pulls/{n}/files")
    assert len(pages) == 2 and all(p.query.get("per_page") == "100" for p in pages)
    assert [c.path for c in fake.review_comments_of(pr)] == ["app/zzz_last.py"]


async def test_more_than_50_annotations_are_batched(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake, {PATH: helper_source(60), "app/other.py": helper_source(1)})
    await opened(app_client, pr)
    [run] = fake.runs_for(pr.head_sha)
    assert run.conclusion == "failure"
    assert len(run.annotations) == 61
    patches = fake.log.calls("PATCH /repos/{o}/{r}/check-runs/{id}")
    assert len(patches) == 2
    assert all(len((p.json.get("output") or {}).get("annotations", [])) <= 50 for p in patches)
    assert patches[-1].json["status"] == "completed"  # the last batch completes the run
    # 60 findings of one rule in one file: one grouped comment, plus one for the other file.
    assert len(fake.review_comments_of(pr)) == 2


async def test_skipped_files_large_symlink_and_missing_patch(app_client: Harness) -> None:
    fake = app_client.fake
    big = "# padding\n" * 110_000 + helper_source(1)
    files = {
        "app/big.py": big,
        "app/link.py": Symlink("jobs.py"),
        PATH: helper_source(1),
    }
    repo, pr = make_pr(fake, files)
    pr.omit_patch = {PATH}
    await opened(app_client, pr)
    [run] = fake.runs_for(pr.head_sha)
    summary = run.output["summary"]
    assert "app/big.py" in summary and "larger than 1 MB" in summary
    assert "app/link.py" in summary and "symbolic link" in summary
    assert "GitHub sent no diff" in summary
    assert run.conclusion == "failure"  # the patch-less file is audited whole
    assert len(run.annotations) == 1
    assert fake.review_comments_of(pr) == []  # nothing can anchor without a patch
    blob_reads = fake.log.calls("GET /repos/{o}/{r}/git/blobs/{sha}")
    assert len(blob_reads) == 1  # the big file and the link were never downloaded


async def test_reaudit_of_same_head_reads_and_parses_nothing_new(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake, {PATH: helper_source(2)})
    await opened(app_client, pr)
    runs_after_first = app_client.engine_runs
    blobs_after_first = fake.log.count("GET /repos/{o}/{r}/git/blobs/{sha}")
    await app_client.deliver("pull_request", app_client.pr_event("reopened", pr))
    assert app_client.engine_runs == runs_after_first
    assert fake.log.count("GET /repos/{o}/{r}/git/blobs/{sha}") == blobs_after_first
    assert fake.log.not_modified > 0  # conditional GETs answered 304
    assert len(fake.runs_for(pr.head_sha)) == 2


# --- review: dedupe and 422 ----------------------------------------------------------------

NESTED = """\
from app.db import get_background_session


async def process_pending():
    async with get_background_session() as fetch_session:
        async with fetch_session.begin():
            rows = await fetch_session.execute(select(Job))
            for row in rows:
                row.status = "done"
"""


async def test_autofix_becomes_a_suggestion_anchored_in_the_diff(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake, {"app/scheduler.py": NESTED})
    await opened(app_client, pr)
    [comment] = fake.review_comments_of(pr)
    assert "TX001" in comment.body and "```suggestion" in comment.body
    assert comment.start_line is not None and comment.start_line < comment.line


async def test_second_audit_of_same_head_posts_nothing_new(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake, {PATH: helper_source(2)})
    await opened(app_client, pr)
    await app_client.deliver("pull_request", app_client.pr_event("reopened", pr))
    assert len(fake.reviews_of(pr)) == 1
    assert len(fake.review_comments_of(pr)) == 2
    runs = fake.runs_for(pr.head_sha)
    assert [r.conclusion for r in runs] == ["failure", "failure"]
    assert len(runs[1].annotations) == 2  # the check run still lists them


async def test_moved_code_posts_nothing_new(app_client: Harness) -> None:
    fake = app_client.fake
    repo, pr = make_pr(fake, {PATH: helper_source(2)})
    await opened(app_client, pr)
    repo.push("feature", {PATH: '"""Jobs."""\n\nimport logging\n\n' + helper_source(2)})
    await app_client.deliver("pull_request", app_client.pr_event("synchronize", pr))
    assert len(fake.review_comments_of(pr)) == 2
    assert len(fake.reviews_of(pr)) == 1
    # A genuinely new finding is still commented.
    repo.push("feature", {PATH: helper_source(3)})
    await app_client.deliver("pull_request", app_client.pr_event("synchronize", pr))
    assert len(fake.review_comments_of(pr)) == 3


async def test_review_422_resends_without_the_bad_comment(app_client: Harness, monkeypatch) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake, {PATH: helper_source(1), "app/other.py": helper_source(1)})
    real_build = bot.app.auditor.build_outcome

    def build_then_drop_a_patch(*args, **kwargs):
        # Between the audit's listing and the review, GitHub stops sending other.py's diff:
        # its comment no longer anchors and the review is rejected with 422.
        pr.omit_patch = {"app/other.py"}
        return real_build(*args, **kwargs)

    monkeypatch.setattr(bot.app.auditor, "build_outcome", build_then_drop_a_patch)
    await opened(app_client, pr)
    assert fake.log.count("POST /repos/{o}/{r}/pulls/{n}/reviews", status=422) == 1
    [review] = fake.reviews_of(pr)
    assert [c.path for c in fake.review_comments_of(pr)] == [PATH]
    assert "could not be placed" in review.body
    [run] = fake.runs_for(pr.head_sha)
    assert len(run.annotations) == 2 and run.conclusion == "failure"


async def test_review_422_falls_back_to_the_body(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake, {PATH: helper_source(1)})
    fake.faults.add(
        route="POST /repos/{o}/{r}/pulls/{n}/reviews",
        status=422,
        json={
            "message": "Unprocessable Entity",
            "errors": ["Pull request review thread line must be part of the diff"],
        },
    )
    await opened(app_client, pr)
    [review] = fake.reviews_of(pr)
    assert fake.review_comments_of(pr) == []
    assert "could not be placed" in review.body
    [run] = fake.runs_for(pr.head_sha)
    assert run.conclusion == "failure" and len(run.annotations) == 1


# --- newer pushes, closing, failures -----------------------------------------------------


async def test_newer_push_cancels_older_audit(app_client: Harness) -> None:
    fake = app_client.fake
    repo, pr = make_pr(fake, {PATH: helper_source(1)})
    first_sha = pr.head_sha
    fake.faults.add(route="GET /repos/{o}/{r}/pulls/{n}/files", delay=0.5)
    await app_client.deliver("pull_request", app_client.pr_event("opened", pr), settle=False)
    await _until(lambda: fake.runs_for(first_sha))
    repo.push("feature", {PATH: helper_source(2)})
    await app_client.deliver("pull_request", app_client.pr_event("synchronize", pr))
    [old] = fake.runs_for(first_sha)
    assert old.conclusion == "cancelled"
    assert pr.head_sha in old.output["title"]
    [new] = fake.runs_for(pr.head_sha)
    assert new.conclusion == "failure"
    assert {c.commit_id for c in fake.review_comments_of(pr)} == {pr.head_sha}


async def test_head_moved_during_audit_without_webhook(app_client: Harness) -> None:
    fake = app_client.fake
    repo, pr = make_pr(fake, {PATH: helper_source(1)})
    first_sha = pr.head_sha
    real_build = bot.app.auditor.build_outcome

    def push_meanwhile(*args, **kwargs):
        repo.push("feature", {"app/more.py": "X = 1\n"})
        return real_build(*args, **kwargs)

    bot.app.auditor.build_outcome = push_meanwhile
    try:
        await opened(app_client, pr)
    finally:
        bot.app.auditor.build_outcome = real_build
    [run] = fake.runs_for(first_sha)
    assert run.conclusion == "cancelled" and pr.head_sha in run.output["summary"]
    assert fake.reviews_of(pr) == []


async def test_closed_pr_cancels_running_audit(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake, {PATH: helper_source(1)})
    fake.faults.add(route="GET /repos/{o}/{r}/pulls/{n}/files", delay=0.5)
    await app_client.deliver("pull_request", app_client.pr_event("opened", pr), settle=False)
    await _until(lambda: fake.runs_for(pr.head_sha))
    pr.close()
    await app_client.deliver("pull_request", app_client.pr_event("closed", pr))
    [run] = fake.runs_for(pr.head_sha)
    assert run.conclusion == "cancelled" and run.output["title"] == "Pull request closed"
    assert fake.reviews_of(pr) == []


async def test_github_5xx_is_retried(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake, {PATH: helper_source(1)})
    fake.faults.add(route="GET /repos/{o}/{r}/pulls/{n}/files", status=502, times=2)
    fake.faults.add(route="POST /repos/{o}/{r}/pulls/{n}/reviews", status=503, times=1)
    await opened(app_client, pr)
    [run] = fake.runs_for(pr.head_sha)
    assert run.conclusion == "failure" and len(run.annotations) == 1
    assert len(fake.reviews_of(pr)) == 1
    assert len(app_client.sleeps) == 3


async def test_secondary_rate_limit_waits_retry_after(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake, {PATH: helper_source(1)})
    fake.faults.secondary_rate_limit(route="POST /repos/{o}/{r}/check-runs", retry_after=7)
    await opened(app_client, pr)
    [run] = fake.runs_for(pr.head_sha)
    assert run.conclusion == "failure"
    assert 7 in app_client.sleeps


async def test_github_failing_for_good_completes_the_run_with_a_reason(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake, {PATH: helper_source(1)})
    fake.faults.add(route="GET /repos/{o}/{r}/pulls/{n}/files", status=502, times=None)
    await opened(app_client, pr)
    [run] = fake.runs_for(pr.head_sha)
    assert run.status == "completed" and run.conclusion == "failure"
    summary = run.output["summary"]
    assert "listing the changed files" in summary and "502" in summary


async def test_exception_inside_the_audit_still_completes_the_run(
    app_client: Harness, monkeypatch
) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake, {PATH: helper_source(1)})
    monkeypatch.setattr(bot.app.auditor, "build_outcome", _explode)
    await opened(app_client, pr)
    [run] = fake.runs_for(pr.head_sha)
    assert run.status == "completed"
    assert run.conclusion == "failure"  # a crafted PR cannot turn the check green by crashing it
    assert "internal error (RuntimeError)" in run.output["summary"]


async def test_engine_crash_fails_the_check(app_client: Harness, monkeypatch) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake, {PATH: helper_source(1)})

    def crash(*args, **kwargs):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(bot.app.engine_pool, "_engine_audit", crash)
    await opened(app_client, pr)
    [run] = fake.runs_for(pr.head_sha)
    assert run.conclusion == "failure" and "running the rules" in run.output["summary"]


async def test_audit_timeout_completes_the_run(make_app_client, fake_github, monkeypatch) -> None:
    # The timeout leaves room for the token and the check run on a busy machine (it was
    # flaky at 0.2 s); the stalled listing is far beyond it.
    harness = await make_app_client(fake_github, audit_timeout=1.5)
    _, pr = make_pr(fake_github, {PATH: helper_source(1)})
    fake_github.faults.add(route="GET /repos/{o}/{r}/pulls/{n}/files", delay=10.0)
    await opened(harness, pr)
    [run] = fake_github.runs_for(pr.head_sha)
    assert run.conclusion == "failure" and "longer than" in run.output["summary"]


async def test_revoked_token_is_replaced_once(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake, {PATH: helper_source(1)})
    await opened(app_client, pr)
    assert fake.log.count("POST /app/installations/{id}/access_tokens") == 1
    for token in list(fake.tokens):
        fake.revoke_token(token)
    await app_client.deliver("pull_request", app_client.pr_event("reopened", pr))
    assert fake.log.count("POST /app/installations/{id}/access_tokens") == 2
    assert [r.conclusion for r in fake.runs_for(pr.head_sha)] == ["failure", "failure"]


async def test_token_is_cached_across_audits(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake, {PATH: helper_source(1)})
    await opened(app_client, pr)
    await app_client.deliver("pull_request", app_client.pr_event("reopened", pr))
    assert fake.log.count("POST /app/installations/{id}/access_tokens") == 1


# --- forks and GHES ------------------------------------------------------------------------


async def test_fork_pr_with_deleted_head_repo(app_client: Harness) -> None:
    fake = app_client.fake
    upstream = fake.create_repo("acme/payments", files={"README.md": "hi\n"})
    fork = fake.fork(upstream, "mallory")
    fork.push("feature", {PATH: helper_source(1)})
    pr = upstream.open_pull(head="feature", head_repo=fork, user="mallory")
    fake.delete_repo(fork)
    payload = app_client.pr_event("opened", pr)
    assert payload["pull_request"]["head"]["repo"] is None
    await app_client.deliver("pull_request", payload)
    [run] = fake.runs_for(pr.head_sha)
    assert run.conclusion == "failure" and run.repo == "acme/payments"
    assert len(fake.review_comments_of(pr)) == 1


async def test_ghes_base_path(make_fake_github, make_app_client) -> None:
    fake = await make_fake_github(base_path="/api/v3")
    harness = await make_app_client(fake)
    _, pr = make_pr(fake, {PATH: helper_source(1)})
    await opened(harness, pr)
    [run] = fake.runs_for(pr.head_sha)
    assert run.conclusion == "failure"
    assert len(fake.review_comments_of(pr)) == 1


async def test_engine_in_worker_processes(make_app_client, fake_github) -> None:
    harness = await make_app_client(fake_github, workers=1)
    # Started with the server, not by the first audit (which would wait ~0.3 s for them).
    assert harness.app[ENGINE].started
    _, pr = make_pr(fake_github, {PATH: "def add(a, b):\n    return a + b\n"})
    await opened(harness, pr)
    [run] = fake_github.runs_for(pr.head_sha)
    assert run.status == "completed"
    assert run.conclusion == "success", run.output["summary"]
    # The workers run below the event loop's priority, so that audits' CPU never delays
    # the answer to a webhook on a busy host.
    worker_niceness = await asyncio.get_running_loop().run_in_executor(
        harness.app[ENGINE]._pool(), os.nice, 0
    )
    assert worker_niceness == os.nice(0) + bot.app.engine_pool.WORKER_NICENESS


def _explode(*args, **kwargs):
    raise RuntimeError("boom")


async def _until(condition, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


# --- TX007: modules the changed code calls into -------------------------------------------


async def test_tx007_fetches_callee_modules_at_head(app_client: Harness) -> None:
    fake = app_client.fake
    base = {
        "app/__init__.py": "",
        "app/db.py": "def get_background_session(): ...\n",
        "app/adapter.py": ADAPTER,
        "app/unrelated.py": "X = 1\n",
    }
    _, pr = make_pr(fake, {"app/scheduler.py": SCHEDULER}, base_files=base)
    await opened(app_client, pr)
    [run] = fake.runs_for(pr.head_sha)
    assert run.status == "completed"
    head = fake.repo("acme/payments").objects[pr.head_sha].entries
    fetched = {
        r.path.rsplit("/", 1)[1] for r in fake.log.calls("GET /repos/{o}/{r}/git/blobs/{sha}")
    }
    assert head["app/adapter.py"].sha in fetched
    assert head["app/unrelated.py"].sha not in fetched
    tx007 = [a for a in run.annotations if a["title"].startswith("TX007")]
    assert len(tx007) == 1 and tx007[0]["path"] == "app/scheduler.py", run.annotations
    assert "adapter" in tx007[0]["message"]


async def test_tx007_off_fetches_nothing_more(app_client: Harness) -> None:
    fake = app_client.fake
    base = {
        ".github/txaudit.yml": "rules:\n  TX007: off\n",
        "app/__init__.py": "",
        "app/adapter.py": ADAPTER,
    }
    _, pr = make_pr(fake, {"app/scheduler.py": SCHEDULER}, base_files=base)
    await opened(app_client, pr)
    assert fake.log.count("GET /repos/{o}/{r}/git/blobs/{sha}") == 1


async def test_tx007_off_for_the_changed_paths_fetches_nothing_more(app_client: Harness) -> None:
    """TX007 is on by default but off, by an override, where the pull request changes code."""
    fake = app_client.fake
    config = "overrides:\n  - paths: ['app/scheduler.py']\n    rules:\n      TX007: off\n"
    base = {".github/txaudit.yml": config, "app/__init__.py": "", "app/adapter.py": ADAPTER}
    _, pr = make_pr(fake, {"app/scheduler.py": SCHEDULER}, base_files=base)
    await opened(app_client, pr)
    [run] = fake.runs_for(pr.head_sha)
    assert run.status == "completed"
    assert fake.log.count("GET /repos/{o}/{r}/git/blobs/{sha}") == 1
    assert not [a for a in run.annotations if a["title"].startswith("TX007")]


async def test_orphaned_in_progress_run_of_the_same_head_is_completed(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake, {PATH: helper_source(1)})
    # A server killed mid-audit left this run in progress.
    fake.faults.add(route="PATCH /repos/{o}/{r}/check-runs/{id}", status=500, times=None)
    await opened(app_client, pr)
    [orphan] = fake.runs_for(pr.head_sha)
    assert orphan.status == "in_progress"
    fake.faults.clear()
    await app_client.deliver("pull_request", app_client.pr_event("reopened", pr))
    orphan_now, new = fake.runs_for(pr.head_sha)
    assert orphan_now.status == "completed" and orphan_now.conclusion == "cancelled"
    assert new.conclusion == "failure"
