"""Audits of pull requests end to end: webhook in, check run and review out."""

from __future__ import annotations

from app_helpers import Harness, helper_source
from fakegithub import FakeGitHub


def make_pr(fake: FakeGitHub, files: dict, *, base_files: dict | None = None, user: str = "alice"):
    repo = fake.create_repo("acme/payments", files=base_files or {"README.md": "hello\n"})
    repo.push("feature", files)
    return repo, repo.open_pull(head="feature", user=user)


async def test_opened_pr_gets_check_run_and_review(app_client: Harness) -> None:
    fake = app_client.fake
    repo, pr = make_pr(fake, {"app/jobs.py": helper_source(2)})
    response = await app_client.deliver("pull_request", app_client.pr_event("opened", pr))
    assert response.status == 202
    [run] = fake.runs_for(pr.head_sha)
    assert run.name == "txaudit"
    assert run.status == "completed" and run.conclusion == "failure"
    assert run.external_id == f"acme/payments#{pr.number}@{pr.head_sha}"
    assert run.history[0]["status"] == "in_progress"
    assert len(run.annotations) == 2
    assert run.actions and run.actions[0]["identifier"] == "reaudit"
    [review] = fake.reviews_of(pr)
    assert review.state == "COMMENTED" and review.commit_id == pr.head_sha
    comments = fake.review_comments_of(pr)
    assert len(comments) == 2
    assert all("TX002" in c.body for c in comments)
