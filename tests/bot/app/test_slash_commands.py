"""Slash commands in pull request comments, end to end."""

from __future__ import annotations

from app_helpers import Harness, helper_source
from fakegithub import FakeGitHub

PATH = "app/jobs.py"


def new_pr(fake: FakeGitHub, *, author: str = "alice"):
    repo = fake.create_repo("acme/payments", files={"README.md": "hi\n"})
    repo.push("feature", {PATH: helper_source(1)})
    return repo, repo.open_pull(head="feature", user=author)


def replies(fake: FakeGitHub, pr) -> list[str]:
    bot = f"{fake.app.slug}[bot]"
    return [c.body for c in fake.issue_comments_of(pr) if c.user == bot]


def eyes(fake: FakeGitHub, comment_id: int) -> list[str]:
    return [r.content for r in fake.reactions_on(comment_id)]


async def command(app_client: Harness, pr, body: str, *, user: str = "alice", **kwargs):
    payload = app_client.comment_event(pr, body, user=user, **kwargs)
    response = await app_client.deliver("issue_comment", payload)
    return response, payload["comment"]["id"]


async def test_run_by_author(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = new_pr(fake)
    response, comment_id = await command(app_client, pr, "/txaudit")
    assert response.status == 202
    [run] = fake.runs_for(pr.head_sha)
    assert run.conclusion == "failure"
    assert eyes(fake, comment_id) == ["eyes"]
    assert replies(fake, pr) == []


async def test_run_by_writer_and_maintainer(app_client: Harness) -> None:
    fake = app_client.fake
    repo, pr = new_pr(fake)
    repo.set_permission("bob", "write")
    repo.set_permission("carol", "maintain")
    await command(app_client, pr, "Rebased.\n/txaudit run", user="bob")
    await command(app_client, pr, "/txaudit full", user="carol")
    runs = fake.runs_for(pr.head_sha)
    assert len(runs) == 2


async def test_full_uses_filter_file(app_client: Harness) -> None:
    fake = app_client.fake
    repo = fake.create_repo("acme/payments", files={PATH: helper_source(3)})
    repo.push("feature", {PATH: helper_source(3) + "\n\nX = 1\n"})
    pr = repo.open_pull(head="feature")
    await app_client.deliver("pull_request", app_client.pr_event("opened", pr))
    [normal] = fake.runs_for(pr.head_sha)
    assert normal.conclusion == "success" and normal.annotations == []
    await command(app_client, pr, "/txaudit full")
    full = fake.runs_for(pr.head_sha)[-1]
    assert len(full.annotations) == 3 and full.conclusion == "failure"


async def test_explain_and_unknown_rule(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = new_pr(fake)
    _, comment_id = await command(app_client, pr, "/txaudit explain tx004")
    [reply] = replies(fake, pr)
    assert reply.startswith("### TX004")
    assert eyes(fake, comment_id) == ["eyes"]
    await command(app_client, pr, "/txaudit explain TX999")
    unknown = replies(fake, pr)[-1]
    assert "TX999" in unknown and "`TX001`" in unknown and "`ORM003`" in unknown
    assert fake.runs_for(pr.head_sha) == []


async def test_help_and_unknown_command(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = new_pr(fake)
    await command(app_client, pr, "/txaudit help")
    await command(app_client, pr, "/txaudit dance")
    help_text, unknown = replies(fake, pr)
    assert "/txaudit full" in help_text and "/txaudit explain" in help_text
    assert "`dance`" in unknown and "/txaudit help" in unknown


async def test_denied_for_readers_with_one_reply(app_client: Harness) -> None:
    fake = app_client.fake
    repo, pr = new_pr(fake)
    repo.set_permission("dave", "triage")
    _, comment_id = await command(app_client, pr, "/txaudit\n/txaudit full", user="dave")
    [reply] = replies(fake, pr)
    assert "@dave" in reply and "write access" in reply and "`read`" in reply
    assert eyes(fake, comment_id) == []
    assert fake.runs_for(pr.head_sha) == []


async def test_denied_for_strangers(app_client: Harness) -> None:
    fake = app_client.fake
    repo, pr = new_pr(fake)
    repo.default_permission = "none"
    await command(app_client, pr, "/txaudit", user="eve")
    [reply] = replies(fake, pr)
    assert "@eve" in reply
    assert fake.runs_for(pr.head_sha) == []


async def test_bots_edits_plain_issues_and_quotes_are_ignored(app_client: Harness) -> None:
    fake = app_client.fake
    repo, pr = new_pr(fake)
    await command(app_client, pr, "/txaudit", user="dependabot[bot]")
    await command(
        app_client, pr, f"/txaudit help from {fake.app.slug}", user=f"{fake.app.slug}[bot]"
    )
    await command(app_client, pr, "/txaudit", action="edited")
    await command(app_client, pr, "> /txaudit\nI would not run that.")
    await command(app_client, pr, "```\n/txaudit\n```")
    issue = repo.open_issue("Bug")
    await command(app_client, issue, "/txaudit")
    assert fake.runs_for(pr.head_sha) == []
    assert len(fake.issue_comments_of(pr)) == 5  # the five above, no reply
    assert len(fake.issue_comments_of(issue)) == 1
    assert fake.reactions == {}
