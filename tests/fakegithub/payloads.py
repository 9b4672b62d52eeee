"""Webhook payloads built from the fake's state, plus signing and delivery helpers.

Shapes follow octokit/webhooks ``payload-examples/api.github.com`` (trimmed); the recorded-style
samples in ``tests/samples/<scenario>/payload.json`` pin them (see ``test_payloads.py``).

Typical use in an app test::

    pr = repo.open_pull(head="feature")
    resp = await deliver(client, "pull_request", pull_request_event(fake, pr, "opened"),
                         fake.webhook_secret)
    assert resp.status == 202
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Any

from . import render
from .server import FakeGitHub
from .state import App, CheckRun, IssueComment, PullRequest, Repo, stable_id

PULL_REQUEST_ACTIONS = (
    "opened",
    "reopened",
    "synchronize",
    "ready_for_review",
    "converted_to_draft",
    "edited",
    "closed",
)


def _common(
    fake: FakeGitHub, repo: Repo, sender: str, installation_id: int | None
) -> dict[str, Any]:
    """``repository``, ``organization`` (org-owned repos), ``sender`` and ``installation``."""
    inst_id = installation_id if installation_id is not None else fake.installation_id
    data: dict[str, Any] = {"repository": render.repository(fake, repo)}
    if repo.owner in fake.organizations:
        data["organization"] = {
            "login": repo.owner,
            "id": stable_id(repo.owner),
            "node_id": f"O_{stable_id(repo.owner)}",
            "url": f"{fake.url}/orgs/{repo.owner}",
            "description": "",
        }
    data["sender"] = render.user(fake, sender)
    data["installation"] = {
        "id": inst_id,
        "node_id": f"MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u{inst_id}",
    }
    return data


def pull_request_event(
    fake: FakeGitHub,
    pr: PullRequest,
    action: str,
    *,
    sender: str | None = None,
    before: str | None = None,
    after: str | None = None,
    changes: dict[str, Any] | None = None,
    installation_id: int | None = None,
) -> dict[str, Any]:
    """A ``pull_request`` payload for ``action`` from the PR's current state.

    ``synchronize`` carries ``before`` (default: the previous head in ``pr.head_history``) and
    ``after`` (default: current head). ``edited`` carries ``changes`` (e.g. the dict returned by
    :meth:`PullRequest.change_base`: ``{"base": {"ref": {"from": ...}, "sha": {"from": ...}}}``).
    """
    data: dict[str, Any] = {"action": action, "number": pr.number}
    if action == "synchronize":
        history = pr.head_history
        data["before"] = before or (history[-2] if len(history) > 1 else history[-1])
        data["after"] = after or pr.head_sha
    if action == "edited":
        data["changes"] = changes or {}
    data["pull_request"] = render.pull_request(fake, pr)
    data.update(_common(fake, pr.repo, sender or pr.user, installation_id))
    return data


def _suite(
    fake: FakeGitHub, repo: Repo, app: App, head_sha: str, suite_id: int, before: str | None
) -> dict[str, Any]:
    commit = repo.objects[head_sha]
    pulls = [
        render.pull_request_ref(fake, pr)
        for pr in repo.pulls()
        if pr.state == "open" and pr.head_sha == head_sha and pr.head_repo is repo
    ]
    head_branch = None
    if pulls:
        head_branch = pulls[0]["head"]["ref"]
    else:
        head_branch = next((b for b, sha in repo.branches.items() if sha == head_sha), None)
    runs = fake.runs_for(head_sha, repo=repo)
    mine = [r for r in runs if r.app_id == app.id]
    statuses = {r.status for r in mine}
    status = "queued" if not mine else ("completed" if statuses == {"completed"} else "in_progress")
    conclusions = {r.conclusion for r in mine}
    conclusion = None
    if status == "completed":
        conclusion = "failure" if "failure" in conclusions else (mine[-1].conclusion)
    now = fake.now_iso()
    author = {"name": commit.author, "email": f"{commit.author}@users.noreply.github.com"}
    return {
        "id": suite_id,
        "node_id": f"CS_{suite_id}",
        "head_branch": head_branch,
        "head_sha": head_sha,
        "status": status,
        "conclusion": conclusion,
        "url": f"{fake.url}/repos/{repo.full_name}/check-suites/{suite_id}",
        "before": before or (commit.parents[0] if commit.parents else "0" * 40),
        "after": head_sha,
        "pull_requests": pulls,
        "app": render.app(fake, app),
        "created_at": now,
        "updated_at": now,
        "latest_check_runs_count": len(mine),
        "check_runs_url": f"{fake.url}/repos/{repo.full_name}/check-suites/{suite_id}/check-runs",
        "head_commit": {
            "id": head_sha,
            "tree_id": commit.tree_sha,
            "message": commit.message,
            "timestamp": commit.timestamp,
            "author": author,
            "committer": author,
        },
    }


def check_suite_event(
    fake: FakeGitHub,
    repo: Repo,
    head_sha: str,
    action: str = "requested",
    *,
    app: App | None = None,
    sender: str | None = None,
    before: str | None = None,
    installation_id: int | None = None,
) -> dict[str, Any]:
    """A ``check_suite`` payload (requested / rerequested / completed) for ``head_sha``.

    As on GitHub, ``pull_requests`` only lists open PRs whose head branch is in ``repo``: it is
    empty (and ``head_branch`` null) for a commit that only a fork PR contains.
    """
    app = app or fake.app
    suite_id = fake.check_suites.setdefault((repo.full_name, app.id, head_sha), fake.next_id())
    data: dict[str, Any] = {
        "action": action,
        "check_suite": _suite(fake, repo, app, head_sha, suite_id, before),
    }
    data.update(_common(fake, repo, sender or repo.owner, installation_id))
    return data


def check_run_event(
    fake: FakeGitHub,
    run: CheckRun,
    action: str,
    *,
    identifier: str | None = None,
    sender: str | None = None,
    installation_id: int | None = None,
) -> dict[str, Any]:
    """A ``check_run`` payload: rerequested, requested_action (``identifier``), created, completed.

    The run may belong to another app (``fake.add_app`` + :meth:`FakeGitHub.create_check_run`),
    as ``created``/``completed`` are delivered for every app's runs.
    """
    repo = fake.repo(run.repo)
    app = fake.apps[run.app_id]
    run_json = render.check_run(fake, run)
    run_json["check_suite"] = _suite(fake, repo, app, run.head_sha, run.check_suite_id, None)
    data: dict[str, Any] = {"action": action, "check_run": run_json}
    if action == "requested_action":
        data["requested_action"] = {"identifier": identifier or ""}
    data.update(_common(fake, repo, sender or repo.owner, installation_id))
    return data


def issue_comment_event(
    fake: FakeGitHub,
    comment: IssueComment,
    action: str = "created",
    *,
    sender: str | None = None,
    changes: dict[str, Any] | None = None,
    installation_id: int | None = None,
) -> dict[str, Any]:
    """An ``issue_comment`` payload; ``issue.pull_request`` is present when the issue is a PR.

    ``edited`` carries ``changes`` (default ``{"body": {"from": <current body>}}``).
    """
    repo = fake.repo(comment.repo)
    issue = repo.issues[comment.issue_number]
    data: dict[str, Any] = {"action": action}
    if action == "edited":
        data["changes"] = changes or {"body": {"from": comment.body}}
    data["issue"] = render.issue(fake, issue)
    data["comment"] = render.issue_comment(fake, comment)
    data.update(_common(fake, repo, sender or comment.user, installation_id))
    return data


def ping_event(fake: FakeGitHub, *, hook_id: int = 30) -> dict[str, Any]:
    """The ``ping`` payload GitHub sends when an App's webhook is set up."""
    app = fake.app
    return {
        "zen": "Keep it logically awesome.",
        "hook_id": hook_id,
        "hook": {
            "type": "App",
            "id": hook_id,
            "name": "web",
            "active": True,
            "events": list(app.events),
            "config": {
                "content_type": "json",
                "insecure_ssl": "0",
                "url": "https://txaudit.example.invalid/webhook",
            },
            "updated_at": "2024-01-01T00:00:00Z",
            "created_at": "2024-01-01T00:00:00Z",
            "app_id": app.id,
            "deliveries_url": f"{fake.url}/app/hook/deliveries",
        },
        "sender": render.user(fake, app.owner),
    }


# -- signing and delivery ------------------------------------------------------------------------


def sign(body: bytes, secret: str) -> str:
    """``X-Hub-Signature-256`` value: ``sha256=`` + hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sign_sha1(body: bytes, secret: str) -> str:
    """Legacy ``X-Hub-Signature`` value (``sha1=``), still sent by GitHub."""
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def webhook_headers(
    event: str,
    body: bytes,
    secret: str | None,
    *,
    delivery_id: str | None = None,
    hook_id: int = 30,
    app_id: int | None = None,
) -> dict[str, str]:
    """The headers GitHub sends with a delivery (no signature headers when ``secret`` is None)."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/fake",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": str(hook_id),
    }
    if app_id is not None:
        headers["X-GitHub-Hook-Installation-Target-Type"] = "integration"
        headers["X-GitHub-Hook-Installation-Target-ID"] = str(app_id)
    if secret is not None:
        headers["X-Hub-Signature-256"] = sign(body, secret)
        headers["X-Hub-Signature"] = sign_sha1(body, secret)
    return headers


async def deliver(
    client: Any,
    event: str,
    payload: dict[str, Any],
    secret: str | None,
    delivery_id: str | None = None,
    *,
    url: str = "/webhook",
    extra_headers: dict[str, str] | None = None,
) -> Any:
    """POST ``payload`` to the app like GitHub does; return the client's response.

    ``client`` is pytest-aiohttp's ``TestClient`` (``url`` relative) or an aiohttp
    ``ClientSession`` (``url`` absolute). Reuse ``delivery_id`` to simulate a redelivery;
    ``secret=None`` sends no signature.
    """
    body = json.dumps(payload).encode()
    headers = webhook_headers(event, body, secret, delivery_id=delivery_id)
    headers.update(extra_headers or {})
    return await client.post(url, data=body, headers=headers)


async def send(
    fake: Any,
    session: Any,
    event: str,
    payload: dict[str, Any],
    *,
    url: str,
    delivery_id: str | None = None,
) -> int:
    """Deliver ``payload`` to the app at ``url`` as GitHub does, logging the attempt in the
    fake's delivery log (``GET /app/hook/deliveries``); the app's status, 0 if unreachable."""
    import aiohttp

    body = json.dumps(payload).encode()
    headers = webhook_headers(event, body, fake.webhook_secret, delivery_id=delivery_id)
    try:
        async with session.post(url, data=body, headers=headers) as response:
            status = int(response.status)
    except aiohttp.ClientError:
        status = 0
    fake.log_delivery(headers["X-GitHub-Delivery"], event, body, headers, status)
    return status
