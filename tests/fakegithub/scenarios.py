"""Webhook scenarios: one per event/action the app handles, built from a small fake state.

``cd tests && python -m fakegithub.scenarios`` (re)writes ``tests/samples/<scenario>/payload.json``
(+ ``event.txt`` with the ``X-GitHub-Event`` value). The samples were checked by hand against
octokit/webhooks ``payload-examples/api.github.com`` and are trimmed to the fields GitHub sends
that an app reads (the dozens of ``*_url`` templates and avatars are left out).
``tests/fakegithub_tests/test_payloads.py`` asserts that the builders keep these shapes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .payloads import (
    check_run_event,
    check_suite_event,
    issue_comment_event,
    ping_event,
    pull_request_event,
)
from .server import FakeGitHub

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "samples"

Builder = Callable[[FakeGitHub], dict[str, Any]]


def seed(fake: FakeGitHub) -> dict[str, Any]:
    """A repository with a same-repo PR, a fork PR, a plain issue and comments; returns handles."""
    repo = fake.create_repo(
        "acme/payments",
        files={
            "payments/models.py": "class Payment:\n    amount = 0\n",
            "payments/service.py": "def pay(session, p):\n    session.add(p)\n",
        },
    )
    repo.commit(
        {"payments/service.py": "def pay(session, p):\n    session.add(p)\n    session.commit()\n"},
        branch="feature/commit-in-service",
        message="Commit in the service",
        author="alice",
    )
    pr = repo.open_pull(head="feature/commit-in-service", title="Commit in the service")
    fork = fake.fork(repo, "mallory")
    fork.commit(
        {"payments/models.py": "class Payment:\n    amount = 1\n"},
        branch="patch-1",
        author="mallory",
    )
    fork_pr = repo.open_pull(head="patch-1", head_repo=fork, user="mallory", title="Fork change")
    issue = repo.open_issue("Docs are unclear", user="bob")
    return {"repo": repo, "pr": pr, "fork": fork, "fork_pr": fork_pr, "issue": issue}


def _synchronize(fake: FakeGitHub) -> dict[str, Any]:
    pr = seed(fake)["pr"]
    pr.push({"payments/util.py": "X = 1\n"}, message="Add util", author="alice")
    return pull_request_event(fake, pr, "synchronize")


def _edited_base(fake: FakeGitHub) -> dict[str, Any]:
    s = seed(fake)
    s["repo"].commit({"CHANGELOG.md": "v2\n"}, branch="release-2", message="Release branch")
    changes = s["pr"].change_base("release-2")
    return pull_request_event(fake, s["pr"], "edited", changes=changes)


def _closed(fake: FakeGitHub) -> dict[str, Any]:
    pr = seed(fake)["pr"]
    pr.close()
    return pull_request_event(fake, pr, "closed")


def _ready(fake: FakeGitHub) -> dict[str, Any]:
    pr = seed(fake)["pr"]
    pr.convert_to_draft()
    pr.ready_for_review()
    return pull_request_event(fake, pr, "ready_for_review")


def _own_run(fake: FakeGitHub, action: str, identifier: str | None = None) -> dict[str, Any]:
    s = seed(fake)
    run = fake.create_check_run(
        s["repo"],
        s["pr"].head_sha,
        "txaudit",
        conclusion="failure",
        external_id="acme/payments#1",
        actions=[
            {"label": "Re-audit", "description": "Run txaudit again", "identifier": "reaudit"}
        ],
        output={"title": "1 error in 1 file", "summary": "TX001: commit inside a service"},
    )
    return check_run_event(fake, run, action, identifier=identifier, sender="alice")


def _other_app_run(fake: FakeGitHub) -> dict[str, Any]:
    s = seed(fake)
    ci = fake.add_app("octo-ci")
    run = fake.create_check_run(s["repo"], s["pr"].head_sha, "build", app=ci, status="queued")
    return check_run_event(fake, run, "created", sender="octo-ci[bot]")


def _suite(fake: FakeGitHub, action: str, *, fork: bool = False) -> dict[str, Any]:
    s = seed(fake)
    if fork:
        return check_suite_event(fake, s["repo"], s["fork_pr"].head_sha, action, sender="mallory")
    return check_suite_event(fake, s["repo"], s["pr"].head_sha, action, sender="alice")


def _comment(fake: FakeGitHub, action: str, *, on_issue: bool = False) -> dict[str, Any]:
    s = seed(fake)
    target = s["issue"] if on_issue else s["pr"]
    comment = s["repo"].add_comment(target.number, "/txaudit run", user="alice")
    return issue_comment_event(fake, comment, action)


#: scenario directory name -> (X-GitHub-Event, builder)
SCENARIOS: dict[str, tuple[str, Builder]] = {
    "pull_request_opened": (
        "pull_request",
        lambda f: pull_request_event(f, seed(f)["pr"], "opened"),
    ),
    "pull_request_opened_fork": (
        "pull_request",
        lambda f: pull_request_event(f, seed(f)["fork_pr"], "opened"),
    ),
    "pull_request_reopened": (
        "pull_request",
        lambda f: pull_request_event(f, seed(f)["pr"], "reopened"),
    ),
    "pull_request_synchronize": ("pull_request", _synchronize),
    "pull_request_ready_for_review": ("pull_request", _ready),
    "pull_request_edited_base": ("pull_request", _edited_base),
    "pull_request_closed": ("pull_request", _closed),
    "check_run_rerequested": ("check_run", lambda f: _own_run(f, "rerequested")),
    "check_run_requested_action": (
        "check_run",
        lambda f: _own_run(f, "requested_action", "reaudit"),
    ),
    "check_run_created_other_app": ("check_run", _other_app_run),
    "check_suite_requested": ("check_suite", lambda f: _suite(f, "requested")),
    "check_suite_rerequested": ("check_suite", lambda f: _suite(f, "rerequested")),
    "check_suite_requested_fork": ("check_suite", lambda f: _suite(f, "requested", fork=True)),
    "issue_comment_created_pr": ("issue_comment", lambda f: _comment(f, "created")),
    "issue_comment_edited_pr": ("issue_comment", lambda f: _comment(f, "edited")),
    "issue_comment_created_issue": (
        "issue_comment",
        lambda f: _comment(f, "created", on_issue=True),
    ),
    "ping": ("ping", lambda f: ping_event(f)),
}


def build(scenario: str, fake: FakeGitHub | None = None) -> tuple[str, dict[str, Any]]:
    """(event, payload) of ``scenario`` built on ``fake`` (default: a github.com-style fake)."""
    event, builder = SCENARIOS[scenario]
    if fake is None:
        fake = FakeGitHub()
        fake.bind("https://api.github.com")
    return event, builder(fake)


def load_sample(scenario: str) -> tuple[str, dict[str, Any]]:
    """(event, payload) stored in ``tests/samples/<scenario>/``."""
    folder = SAMPLES_DIR / scenario
    event = (folder / "event.txt").read_text().strip()
    return event, json.loads((folder / "payload.json").read_text())


def write_samples() -> None:
    """Regenerate every sample (review the diff before committing)."""
    for scenario in SCENARIOS:
        event, payload = build(scenario)
        folder = SAMPLES_DIR / scenario
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "payload.json").write_text(json.dumps(payload, indent=2) + "\n")
        (folder / "event.txt").write_text(event + "\n")


if __name__ == "__main__":
    write_samples()
