"""check_run / check_suite events: re-run buttons and the Re-audit action."""

from __future__ import annotations

from app_helpers import Harness, helper_source
from fakegithub import FakeGitHub

PATH = "app/jobs.py"


async def audited_pr(app_client: Harness, *, fork: bool = False):
    fake: FakeGitHub = app_client.fake
    repo = fake.create_repo("acme/payments", files={"README.md": "hi\n"})
    if fork:
        source = fake.fork(repo, "mallory")
        source.push("feature", {PATH: helper_source(1)})
        pr = repo.open_pull(head="feature", head_repo=source, user="mallory")
    else:
        repo.push("feature", {PATH: helper_source(1)})
        pr = repo.open_pull(head="feature")
    await app_client.deliver("pull_request", app_client.pr_event("opened", pr))
    [run] = fake.runs_for(pr.head_sha)
    return repo, pr, run


async def test_check_run_rerequested_reaudits(app_client: Harness) -> None:
    _, pr, run = await audited_pr(app_client)
    payload = app_client.check_run_event("rerequested", run)
    assert (await app_client.deliver("check_run", payload)).status == 202
    runs = app_client.fake.runs_for(pr.head_sha)
    assert len(runs) == 2 and runs[1].status == "completed"


async def test_requested_action_reaudit(app_client: Harness) -> None:
    _, pr, run = await audited_pr(app_client)
    payload = app_client.check_run_event("requested_action", run, identifier="reaudit")
    await app_client.deliver("check_run", payload)
    assert len(app_client.fake.runs_for(pr.head_sha)) == 2
    other = app_client.check_run_event("requested_action", run, identifier="something-else")
    await app_client.deliver("check_run", other)
    assert len(app_client.fake.runs_for(pr.head_sha)) == 2


async def test_check_runs_of_other_apps_are_ignored(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr, run = await audited_pr(app_client)
    other_app = fake.add_app("linter")
    payload = app_client.check_run_event("rerequested", run)
    payload["check_run"]["app"] = {"id": other_app.id, "slug": "linter"}
    fake.log.clear()
    await app_client.deliver("check_run", payload)
    assert len(fake.runs_for(pr.head_sha)) == 1
    assert not [r for r in fake.log if r.auth == "token"]


async def test_check_suite_rerequested(app_client: Harness) -> None:
    _, pr, run = await audited_pr(app_client)
    payload = app_client.check_suite_event("rerequested", run)
    assert payload["check_suite"]["pull_requests"]
    await app_client.deliver("check_suite", payload)
    assert len(app_client.fake.runs_for(pr.head_sha)) == 2


async def test_fork_check_suite_found_via_external_id(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr, run = await audited_pr(app_client, fork=True)
    payload = app_client.check_suite_event("rerequested", run)
    assert payload["check_suite"]["pull_requests"] == []
    await app_client.deliver("check_suite", payload)
    assert len(fake.runs_for(pr.head_sha)) == 2
    lookups = [
        r
        for r in fake.log.calls("GET /repos/{o}/{r}/commits/{ref}/check-runs")
        if "status" not in r.query  # the audit's own look for orphaned runs asks for status
    ]
    assert len(lookups) == 1


async def test_fork_check_run_found_via_external_id(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr, run = await audited_pr(app_client, fork=True)
    payload = app_client.check_run_event("rerequested", run)
    assert payload["check_run"]["pull_requests"] == []
    await app_client.deliver("check_run", payload)
    assert len(fake.runs_for(pr.head_sha)) == 2


async def test_rerun_of_an_old_head_audits_the_current_head(app_client: Harness) -> None:
    fake = app_client.fake
    repo, pr, run = await audited_pr(app_client)
    old_sha = pr.head_sha
    repo.push("feature", {"app/more.py": "X = 1\n"})
    await app_client.deliver("check_run", app_client.check_run_event("rerequested", run))
    assert len(fake.runs_for(old_sha)) == 1
    assert len(fake.runs_for(pr.head_sha)) == 1


async def test_closed_pr_is_not_reaudited(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr, run = await audited_pr(app_client)
    pr.close()
    await app_client.deliver("check_run", app_client.check_run_event("rerequested", run))
    assert len(fake.runs_for(pr.head_sha)) == 1
