"""Fixed findings resolve their review threads (GraphQL against the fake's schema-checked
endpoint); findings that come back reopen them; people's resolutions are left alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from app_helpers import Harness, helper_source
from fakegithub import FakeGitHub

from bot.app.threads import FORBIDDEN_NOTE, graphql_url

PATH = "app/services/jobs.py"
GRAPHQL = "POST /graphql"


def _pr(fake: FakeGitHub) -> Any:
    repo = fake.create_repo("acme/payments", files={"README.md": "hello\n"})
    repo.push("feature", {PATH: helper_source(2)})
    return repo, repo.open_pull(head="feature", user="alice")


async def _push(harness: Harness, repo: Any, pr: Any, files: dict[str, str | None]) -> None:
    repo.push("feature", files)
    await harness.deliver("pull_request", harness.pr_event("synchronize", pr))


def _summary(fake: FakeGitHub, pr: Any) -> str:
    return str(fake.runs_for(pr.head_sha)[-1].output["summary"])


@pytest.fixture
def writable(fake_github: FakeGitHub) -> FakeGitHub:
    fake_github.apps[fake_github.app_id].permissions["contents"] = "write"
    return fake_github


async def test_a_fix_replies_once_and_resolves_the_thread(
    app_client: Harness, writable: FakeGitHub
) -> None:
    fake = writable
    repo, pr = _pr(fake)
    await app_client.deliver("pull_request", app_client.pr_event("opened", pr))
    tops = fake.review_comments_of(pr)
    assert len(tops) == 2
    # mark_done_1 is fixed: it no longer commits the borrowed session
    await _push(app_client, repo, pr, {PATH: helper_source(1)})
    fixed = [c for c in tops if fake.resolved_threads.get(c.id)]
    assert len(fixed) == 1
    [top] = fixed
    [reply] = fake.thread_replies(top)
    assert reply.body.startswith(f"Fixed in `{pr.head_sha[:7]}`.")
    assert reply.user == fake.apps[fake.app_id].bot_login
    [other] = [c for c in tops if c is not top]
    assert other.id not in fake.resolved_threads and not fake.thread_replies(other)
    assert "1 finding fixed since the last audit." in _summary(fake, pr)
    assert FORBIDDEN_NOTE not in _summary(fake, pr)
    assert len(fake.review_comments_of(pr)) == 3  # no new comment, one reply
    # The same head again (`/txaudit`, a redelivery): no second reply.
    await app_client.deliver("pull_request", app_client.pr_event("reopened", pr))
    assert len(fake.thread_replies(top)) == 1


async def test_a_suppressed_finding_is_answered_with_its_reason(
    app_client: Harness, writable: FakeGitHub
) -> None:
    fake = writable
    repo, pr = _pr(fake)
    await app_client.deliver("pull_request", app_client.pr_event("opened", pr))
    lines = helper_source(2).splitlines()
    last = max(i for i, line in enumerate(lines) if "session.commit()" in line)
    lines[last] += "  # txaudit: ignore[TX002] -- the CLI owns this session"
    await _push(app_client, repo, pr, {PATH: "\n".join(lines) + "\n"})
    [top] = [c for c in fake.review_comments_of(pr) if c.id in fake.resolved_threads]
    [reply] = fake.thread_replies(top)
    assert reply.body.startswith(f"Suppressed in `{pr.head_sha[:7]}`: the CLI owns this session")


async def test_a_finding_that_comes_back_reopens_its_thread(
    app_client: Harness, writable: FakeGitHub
) -> None:
    fake = writable
    repo, pr = _pr(fake)
    await app_client.deliver("pull_request", app_client.pr_event("opened", pr))
    await _push(app_client, repo, pr, {PATH: helper_source(1)})
    [top] = [c for c in fake.review_comments_of(pr) if c.id in fake.resolved_threads]
    await _push(app_client, repo, pr, {PATH: helper_source(2)})
    assert top.id not in fake.resolved_threads
    replies = fake.thread_replies(top)
    assert [r.body.splitlines()[0] for r in replies] == [
        replies[0].body.splitlines()[0],
        f"This finding is back in `{pr.head_sha[:7]}`.",
    ]
    tops = [c for c in fake.review_comments_of(pr) if c.in_reply_to_id is None]
    assert len(tops) == 2  # no new comment for the returning finding


async def test_a_thread_a_person_resolved_is_left_alone(
    app_client: Harness, writable: FakeGitHub
) -> None:
    fake = writable
    repo, pr = _pr(fake)
    await app_client.deliver("pull_request", app_client.pr_event("opened", pr))
    tops = fake.review_comments_of(pr)
    for top in tops:
        fake.resolved_threads[top.id] = "alice"
    await _push(app_client, repo, pr, {PATH: helper_source(1)})
    assert all(fake.resolved_threads[t.id] == "alice" for t in tops)
    assert not any(fake.thread_replies(t) for t in tops)


async def test_a_file_reverted_out_of_the_pull_request_resolves_its_threads(
    app_client: Harness, writable: FakeGitHub
) -> None:
    fake = writable
    repo, pr = _pr(fake)
    await app_client.deliver("pull_request", app_client.pr_event("opened", pr))
    await _push(app_client, repo, pr, {PATH: None, "app/other.py": "x = 1\n"})
    tops = fake.review_comments_of(pr)
    tops = [c for c in tops if c.in_reply_to_id is None]
    assert len(tops) == 2 and all(t.id in fake.resolved_threads for t in tops)
    assert all("gone from this pull request" in fake.thread_replies(t)[0].body for t in tops)
    assert "2 findings fixed since the last audit." in _summary(fake, pr)


async def test_without_contents_write_the_thread_gets_the_reply_and_the_summary_says_why(
    app_client: Harness,
) -> None:
    fake = app_client.fake
    assert fake.apps[fake.app_id].permissions["contents"] == "read"  # as app.yaml asks
    repo, pr = _pr(fake)
    await app_client.deliver("pull_request", app_client.pr_event("opened", pr))
    await _push(app_client, repo, pr, {PATH: helper_source(1)})
    tops = [c for c in fake.review_comments_of(pr) if c.in_reply_to_id is None]
    assert not fake.resolved_threads
    assert sum(len(fake.thread_replies(t)) for t in tops) == 1
    summary = _summary(fake, pr)
    assert summary.count(FORBIDDEN_NOTE) == 1
    assert "1 finding fixed since the last audit." in summary
    run = fake.runs_for(pr.head_sha)[-1]
    assert run.status == "completed" and run.conclusion == "failure"


async def test_a_graphql_502_is_retried_and_an_error_result_is_a_note(
    app_client: Harness, writable: FakeGitHub
) -> None:
    fake = writable
    repo, pr = _pr(fake)
    await app_client.deliver("pull_request", app_client.pr_event("opened", pr))
    fake.faults.add(method="POST", path="/graphql", status=502, times=1)
    await _push(app_client, repo, pr, {PATH: helper_source(1)})
    assert len(fake.resolved_threads) == 1  # retried, then resolved
    assert [r.status for r in fake.log if r.route == GRAPHQL][:2] == [502, 200]
    # An error result (200 with `errors`): the audit completes and says so.
    fake.faults.add(
        method="POST",
        path="/graphql",
        status=200,
        json={"data": None, "errors": [{"type": "INTERNAL", "message": "Something went wrong"}]},
        times=1,
    )
    await _push(app_client, repo, pr, {PATH: helper_source(1) + "\n\nX = 1\n"})
    run = fake.runs_for(pr.head_sha)[-1]
    assert run.status == "completed"
    assert "Review threads were not updated" in run.output["summary"]
    assert "Something went wrong" in run.output["summary"]


async def test_enterprise_server_graphql_is_beside_api_v3(
    make_app_client: Callable[..., Any], make_fake_github: Callable[..., Any]
) -> None:
    assert graphql_url("https://ghe.example.com/api/v3") == "https://ghe.example.com/api/graphql"
    assert graphql_url("https://api.github.com") == "https://api.github.com/graphql"
    fake = await make_fake_github(base_path="/api/v3")
    fake.apps[fake.app_id].permissions["contents"] = "write"
    harness = await make_app_client(fake)
    repo, pr = _pr(fake)
    await harness.deliver("pull_request", harness.pr_event("opened", pr))
    await _push(harness, repo, pr, {PATH: helper_source(1)})
    assert len(fake.resolved_threads) == 1
    assert "POST /api/graphql" in {r.route for r in fake.log}
    await harness.settle()


async def test_the_fake_rejects_a_misspelled_field_as_github_does(
    app_client: Harness,
) -> None:
    fake = app_client.fake
    gh = app_client.github.installation(fake.installation_id)
    from gidgethub import QueryError

    with pytest.raises(QueryError, match="Cannot query field 'isResolvedd'"):
        await gh.graphql(
            'query { repository(owner: "acme", name: "x") { pullRequest(number: 1) '
            "{ reviewThreads(first: 1) { nodes { isResolvedd } } } } }",
            endpoint=graphql_url(app_client.github.settings.api_url),
        )
