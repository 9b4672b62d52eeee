"""GitHub misbehaving: 5xx, dropped connections, timeouts, rate limits, bad tokens, vanished
pull requests, refused reviews, newer pushes. Whatever happens, the audit ends and its check
run is completed, saying what went wrong."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from app_helpers import Harness, helper_source
from fakegithub import FakeGitHub

import bot.app.engine_pool
from bot.app.github import RetryPolicy
from bot.app.server import BACKGROUND, QUEUE
from rules.engine.model import FileResult

PATH = "app/jobs.py"
FILES = "GET /repos/{o}/{r}/pulls/{n}/files"
PULL = "GET /repos/{o}/{r}/pulls/{n}"
BLOB = "GET /repos/{o}/{r}/git/blobs/{sha}"
CREATE_RUN = "POST /repos/{o}/{r}/check-runs"
UPDATE_RUN = "PATCH /repos/{o}/{r}/check-runs/{id}"
REVIEW = "POST /repos/{o}/{r}/pulls/{n}/reviews"
COMMENTS = "GET /repos/{o}/{r}/pulls/{n}/comments"
TOKENS = "POST /app/installations/{id}/access_tokens"


def make_pr(fake: FakeGitHub, files: dict[str, Any] | None = None, base: dict | None = None) -> Any:
    repo = fake.create_repo("acme/payments", files=base or {"README.md": "hi\n"})
    repo.push("feature", files or {PATH: helper_source(1)})
    return repo, repo.open_pull(head="feature", user="alice")


async def audit(harness: Harness, pr: Any, action: str = "opened") -> Any:
    assert (await harness.deliver("pull_request", harness.pr_event(action, pr))).status == 202
    assert len(harness.app[BACKGROUND]) == 0 and not harness.app[QUEUE]._tasks  # type: ignore[attr-defined]
    runs = harness.fake.runs_for(pr.head_sha)
    assert runs and all(run.status == "completed" for run in runs)
    return runs[-1]


def assert_could_not_finish(run: Any, *words: str, conclusion: str = "failure") -> None:
    assert run.conclusion == conclusion
    assert run.output["title"] == "Audit could not finish"
    summary = run.output["summary"]
    for word in words:
        assert word in summary, summary
    assert "re-run with `/txaudit`" in summary
    assert run.actions and run.actions[0]["label"] == "Re-audit"


async def until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


# --- 5xx, dropped connections, timeouts -------------------------------------------------------


async def test_5xx_is_retried_with_exponential_backoff_and_jitter(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake)
    fake.faults.add(route=FILES, status=502, times=3)
    fake.faults.add(route=REVIEW, status=503, times=1)
    run = await audit(app_client, pr)
    assert run.conclusion == "failure" and len(run.annotations) == 1
    assert len(fake.reviews_of(pr)) == 1
    # Retries 1..3 of the listing, then retry 1 of the review: ceiling 1, 2, 4, 1 s, jittered.
    ceilings = [1.0, 2.0, 4.0, 1.0]
    assert len(app_client.sleeps) == 4
    for slept, ceiling in zip(app_client.sleeps, ceilings, strict=True):
        assert ceiling / 2 <= slept <= ceiling
    assert len(set(app_client.sleeps)) == 4  # jitter: never the same delays twice


async def test_5xx_forever_is_retried_a_bounded_number_of_times(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake)
    fake.faults.add(route=FILES, status=500, times=None)
    run = await audit(app_client, pr)
    assert fake.log.count(FILES) == RetryPolicy().attempts == 5
    assert_could_not_finish(
        run, "listing the changed files", "GitHub kept answering 500 (server error)"
    )


async def test_dropped_connections_are_retried(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake)
    create = fake.faults.add(route=CREATE_RUN, drop=True, times=1)  # a POST: not auto-retried
    blobs = fake.faults.add(route=BLOB, drop=True, times=3)
    run = await audit(app_client, pr)
    assert create.fired == 1 and blobs.fired == 3
    assert run.conclusion == "failure" and len(run.annotations) == 1
    assert len(fake.runs_for(pr.head_sha)) == 1


async def test_dropped_connections_forever_end_the_audit_in_words(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake)
    fake.faults.add(route=FILES, drop=True, times=None)
    run = await audit(app_client, pr)
    # aiohttp retries a GET once on a dropped keep-alive connection, inside each attempt.
    assert 5 <= fake.log.count(FILES) <= 10
    assert_could_not_finish(run, "listing the changed files", "could not reach GitHub")


async def test_timeouts_are_retried(make_app_client: Any, fake_github: FakeGitHub) -> None:
    fake = fake_github
    timeout = aiohttp.ClientTimeout(total=2, sock_read=0.2)
    harness = await make_app_client(fake, http_timeout=timeout)
    _, pr = make_pr(fake)
    fake.faults.add(route=COMMENTS, delay=1.0, times=2)
    run = await audit(harness, pr)
    assert run.conclusion == "failure" and len(run.annotations) == 1
    assert len(harness.sleeps) == 2


async def test_timeouts_forever_end_the_audit_in_words(
    make_app_client: Any, fake_github: FakeGitHub
) -> None:
    fake = fake_github
    harness = await make_app_client(fake, http_timeout=aiohttp.ClientTimeout(sock_read=0.1))
    _, pr = make_pr(fake)
    fake.faults.add(route=FILES, delay=0.5, times=None)
    run = await audit(harness, pr)
    assert len(harness.sleeps) == 4  # 5 attempts
    assert_could_not_finish(run, "listing the changed files", "could not reach GitHub")


# --- rate limits ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [403, 429])
async def test_secondary_rate_limit_waits_retry_after(app_client: Harness, status: int) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake)
    if status == 403:
        fake.faults.secondary_rate_limit(route=REVIEW, retry_after=7)
    else:
        fake.faults.too_many_requests(route=REVIEW, retry_after=7)
    run = await audit(app_client, pr)
    assert app_client.sleeps == [7.0]
    assert run.conclusion == "failure" and len(fake.reviews_of(pr)) == 1
    assert fake.log.count(REVIEW, status=status) == 1


async def test_secondary_rate_limit_without_retry_after_waits_a_minute(
    app_client: Harness,
) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake)
    fake.faults.add(
        route=CREATE_RUN,
        status=403,
        json={"message": "You have exceeded a secondary rate limit."},
    )
    run = await audit(app_client, pr)
    assert app_client.sleeps and app_client.sleeps[0] >= 60
    assert run.conclusion == "failure"


async def test_secondary_rate_limit_too_long_ends_the_audit_in_words(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake)
    fake.faults.secondary_rate_limit(route=FILES, retry_after=3600, times=None)
    run = await audit(app_client, pr)
    assert fake.log.count(FILES) == 1  # not retried: an hour is beyond max_rate_limit_wait
    assert_could_not_finish(run, "rate limit", "re-run later")
    assert "permissions" not in run.output["summary"]


async def test_primary_rate_limit_waits_until_reset(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake)
    fake.faults.primary_rate_limit(reset_at=int(time.time()) + 40, route=BLOB)
    run = await audit(app_client, pr)
    assert run.conclusion == "failure" and len(run.annotations) == 1
    assert len(app_client.sleeps) == 1 and 35 <= app_client.sleeps[0] <= 42


async def test_primary_rate_limit_far_away_ends_the_audit_in_words(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake)
    fake.faults.primary_rate_limit(reset_at=int(time.time()) + 3000, route=FILES, times=None)
    run = await audit(app_client, pr)
    assert fake.log.count(FILES) == 1
    assert_could_not_finish(run, "rate limit for this installation is exhausted")


# --- tokens --------------------------------------------------------------------------------------


async def test_expired_token_is_minted_again_once(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake)
    await audit(app_client, pr)
    assert fake.log.count(TOKENS) == 1
    fake.expire_all_tokens()
    pr.push({PATH: helper_source(2)})
    run = await audit(app_client, pr, "synchronize")
    assert fake.log.count(TOKENS) == 2
    assert run.conclusion == "failure" and len(run.annotations) == 2


async def test_token_revoked_mid_audit_is_minted_again_once(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake)
    fake.faults.add(route=FILES, status=401, json={"message": "Bad credentials"})
    run = await audit(app_client, pr)
    assert fake.log.count(TOKENS) == 2
    assert run.conclusion == "failure" and len(run.annotations) == 1


async def test_token_refused_for_good_is_minted_once_more_only(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake)
    fake.faults.add(route=FILES, status=401, json={"message": "Bad credentials"}, times=None)
    run = await audit(app_client, pr)
    assert fake.log.count(TOKENS) == 2 and fake.log.count(FILES) == 2
    assert_could_not_finish(run, "GitHub refused access (401)")


# --- the pull request changes under the audit ------------------------------------------------


async def test_pull_request_deleted_mid_audit(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake)
    fake.faults.add(route=PULL, status=404, times=None)
    run = await audit(app_client, pr)
    assert_could_not_finish(run, "checking the pull request's head", "404")
    assert fake.reviews_of(pr) == []


async def test_files_listing_404_ends_the_audit_in_words(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake)
    fake.faults.add(route=FILES, status=404, times=None)
    run = await audit(app_client, pr)
    assert_could_not_finish(run, "listing the changed files", "GitHub answered 404")


async def test_pull_request_closed_mid_audit(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake)
    fake.faults.add(route=FILES, delay=0.5)
    await app_client.deliver("pull_request", app_client.pr_event("opened", pr), settle=False)
    await until(lambda: fake.runs_for(pr.head_sha))
    pr.close()
    await app_client.deliver("pull_request", app_client.pr_event("closed", pr))
    [run] = fake.runs_for(pr.head_sha)
    assert run.conclusion == "cancelled" and run.output["title"] == "Pull request closed"
    assert fake.reviews_of(pr) == []


async def test_review_refused_with_422_is_resent_without_the_comments(
    app_client: Harness,
) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake)
    refused = {
        "message": "Unprocessable Entity",
        "errors": ["Pull request review thread line must be part of the diff"],
    }
    fake.faults.add(route=REVIEW, status=422, json=refused, times=1)
    run = await audit(app_client, pr)
    assert fake.log.count(REVIEW) == 2
    [review] = fake.reviews_of(pr)
    assert "could not be placed" in review.body and fake.review_comments_of(pr) == []
    assert run.conclusion == "failure" and len(run.annotations) == 1  # findings stay


async def test_review_refused_for_good_still_ends_the_audit(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake)
    fake.faults.add(route=REVIEW, status=422, json={"message": "nope", "errors": ["x"]}, times=None)
    run = await audit(app_client, pr)
    assert fake.log.count(REVIEW) == 2  # the review, then the review without comments
    assert fake.reviews_of(pr) == []
    assert run.conclusion == "failure" and len(run.annotations) == 1


async def test_check_run_update_refused_completes_the_run_with_the_reason(
    app_client: Harness,
) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake)
    fake.faults.add(route=UPDATE_RUN, status=422, json={"message": "Invalid request."})
    run = await audit(app_client, pr)
    assert_could_not_finish(run, "completing the check run", "GitHub answered 422")


async def test_check_run_update_failing_for_good_is_finished_by_the_next_audit(
    app_client: Harness,
) -> None:
    """If GitHub refuses every update, the run stays in_progress until the next audit of the
    head (a re-run) completes it as an orphan."""
    fake = app_client.fake
    _, pr = make_pr(fake)
    fault = fake.faults.add(route=UPDATE_RUN, status=500, times=None)
    assert (await app_client.deliver("pull_request", app_client.pr_event("opened", pr))).status
    [stuck] = fake.runs_for(pr.head_sha)
    assert stuck.status == "in_progress"
    fake.faults.faults.remove(fault)
    comment = app_client.comment_event(pr, "/txaudit")
    await app_client.deliver("issue_comment", comment)
    old, new = fake.runs_for(pr.head_sha)
    assert old.status == "completed" and old.conclusion == "cancelled"
    assert new.conclusion == "failure"


# --- newer pushes ----------------------------------------------------------------------------


async def test_newer_push_cancels_the_older_audit_and_nothing_old_comes_after(
    app_client: Harness,
) -> None:
    fake = app_client.fake
    repo, pr = make_pr(fake)
    old_sha = pr.head_sha
    fake.faults.add(route=FILES, delay=0.5)
    await app_client.deliver("pull_request", app_client.pr_event("opened", pr), settle=False)
    await until(lambda: fake.runs_for(old_sha))
    pr.push({PATH: helper_source(2)})
    await app_client.deliver("pull_request", app_client.pr_event("synchronize", pr))
    [old] = fake.runs_for(old_sha)
    [new] = fake.runs_for(pr.head_sha)
    assert old.conclusion == "cancelled"
    assert old.output["title"] == f"Superseded by {pr.head_sha}"
    assert f"superseded by {pr.head_sha}" in old.output["summary"]
    assert new.conclusion == "failure"
    assert {r.commit_id for r in fake.reviews_of(pr)} == {pr.head_sha}
    # In the request log, the old run's last write comes before the new run is completed.
    writes = fake.log.writes()
    last_old = max(i for i, w in enumerate(writes) if w.path.endswith(f"/{old.id}"))
    first_new_done = min(
        i
        for i, w in enumerate(writes)
        if w.path.endswith(f"/{new.id}") and (w.json or {}).get("status") == "completed"
    )
    assert last_old < first_new_done


# --- whatever happens, the check run is completed and cannot be turned green ---------------------


async def test_failed_audit_fails_by_default_and_neutral_on_request(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = make_pr(fake)
    fake.faults.add(route=FILES, status=500, times=None)
    assert_could_not_finish(await audit(app_client, pr), "500")

    fake.faults.clear()
    repo = fake.create_repo("acme/neutral", files={".github/txaudit.yml": "on_error: neutral\n"})
    repo.push("feature", {PATH: helper_source(1)})
    other = repo.open_pull(head="feature", user="alice")
    fake.faults.add(route=FILES, status=500, times=None)
    assert_could_not_finish(await audit(app_client, other), "500", conclusion="neutral")


async def test_a_pull_request_cannot_make_its_own_failed_audit_pass(app_client: Harness) -> None:
    """The pull request adds a config asking for `on_error: neutral` and `fail_on: never`:
    the config is read from the base, so a failing audit still fails."""
    fake = app_client.fake
    config = "on_error: neutral\nfail_on: never\n"
    _, pr = make_pr(fake, {PATH: helper_source(1), ".github/txaudit.yml": config})
    fake.faults.add(route=FILES, status=502, times=None)
    assert_could_not_finish(await audit(app_client, pr), "502")


async def test_engine_failing_on_a_crafted_file_does_not_pass_the_check(
    app_client: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that makes the engine fail may hide findings: the check fails (or is neutral
    with `on_error: neutral`), and the summary names the file."""
    fake = app_client.fake
    real = bot.app.engine_pool._engine_audit

    def engine(source: bytes, path: str, *args: Any) -> FileResult:
        if path == "app/crafted.py":
            return FileResult(path=path, error="txaudit internal error: RecursionError: boom")
        return real(source, path, *args)

    monkeypatch.setattr(bot.app.engine_pool, "_engine_audit", engine)
    _, pr = make_pr(fake, {"app/clean.py": "X = 1\n", "app/crafted.py": "X = 2\n"})
    run = await audit(app_client, pr)
    assert run.conclusion == "failure"
    assert run.output["title"] == "No findings in 2 files; 1 file could not be audited"
    assert "`app/crafted.py`: txaudit internal error" in run.output["summary"]
