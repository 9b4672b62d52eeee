"""The check-run summary lists suppressions that expire soon and those that expired."""

from __future__ import annotations

from datetime import date, timedelta

from app_helpers import Harness

PATH = "app/services/jobs.py"


def _source(until: date, reason: str, name: str) -> str:
    return (
        f"async def {name}(session):\n"
        "    await session.commit()"
        f"  # txaudit: ignore[TX002] until={until.isoformat()} -- {reason}\n"
    )


async def test_expiring_and_expired_suppressions_are_listed_with_reasons(
    app_client: Harness,
) -> None:
    fake = app_client.fake
    today = date.today()
    source = (
        _source(today + timedelta(days=10), "until the CLI migrates", "soon")
        + "\n\n"
        + _source(today - timedelta(days=1), "until the batch job is gone", "late")
        + "\n\n"
        + _source(today + timedelta(days=400), "much later", "later")
    )
    repo = fake.create_repo("acme/payments", files={"README.md": "hello\n"})
    repo.push("feature", {PATH: source})
    pr = repo.open_pull(head="feature", user="alice")
    await app_client.deliver("pull_request", app_client.pr_event("opened", pr))
    [run] = fake.runs_for(pr.head_sha)
    summary = run.output["summary"]
    soon = summary.split("### Suppressions that expire within 30 days", 1)[1].split("###")[0]
    late = summary.split("### Expired suppressions", 1)[1].split("###")[0]
    assert "until the CLI migrates" in soon and "much later" not in soon
    assert "until the batch job is gone" in late and "until the CLI migrates" not in late
    # the expired one suppresses nothing: its finding and the TXA03 notice are reported
    assert run.conclusion == "failure"
    rules = sorted(a["title"].split()[0] for a in run.annotations)
    assert rules.count("TX002") == 1 and rules.count("TXA03") == 1
