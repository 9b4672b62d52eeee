"""Hostile webhook deliveries: bad signatures and bodies, redeliveries, bursts, bot loops.

Every test goes through `POST /webhook` of the real server against the shared fake GitHub and
asserts what GitHub (and a user) would see: the status code, the fake's request log, check runs.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from app_helpers import Harness, helper_source
from fakegithub import FakeGitHub, payloads

from bot.app.intake import MAX_BODY_BYTES
from bot.app.server import BACKGROUND, QUEUE

PATH = "app/jobs.py"


def open_pr(fake: FakeGitHub, files: dict[str, Any] | None = None) -> Any:
    repo = fake.create_repo("acme/payments", files={"README.md": "hi\n"})
    repo.push("feature", files or {PATH: helper_source(1)})
    return repo.open_pull(head="feature", user="alice")


def assert_nothing_happened(harness: Harness) -> None:
    """No GitHub call, nothing in the background, nothing queued."""
    assert harness.fake.log.count() == 0, harness.fake.log.summary()
    assert len(harness.app[BACKGROUND]) == 0
    assert not harness.app[QUEUE]._tasks  # type: ignore[attr-defined]


def _sig(harness: Harness, body: bytes) -> str:
    return payloads.sign(body, harness.fake.webhook_secret)


# Each case: (headers to send, body) -> the status GitHub's delivery log would show.
def _cases(harness: Harness, pr_body: bytes) -> list[tuple[str, dict[str, str], bytes, int]]:
    sign = lambda body: _sig(harness, body)  # noqa: E731
    base = {"content-type": "application/json", "x-github-delivery": "d-x"}
    pr_headers = {**base, "x-github-event": "pull_request"}
    form = b"payload=" + pr_body
    return [
        ("missing signature", pr_headers, pr_body, 401),
        (
            "wrong signature",
            {**pr_headers, "x-hub-signature-256": "sha256=" + "0" * 64},
            pr_body,
            401,
        ),
        (
            "signature of another body",
            {**pr_headers, "x-hub-signature-256": sign(b"{}")},
            pr_body,
            401,
        ),
        (
            "signature with another secret",
            {**pr_headers, "x-hub-signature-256": payloads.sign(pr_body, "not-the-secret")},
            pr_body,
            401,
        ),
        (
            "legacy sha1 signature only",
            {
                **pr_headers,
                "x-hub-signature": payloads.sign_sha1(pr_body, harness.fake.webhook_secret),
            },
            pr_body,
            401,
        ),
        (
            "non-ASCII signature",
            {**pr_headers, "x-hub-signature-256": "sha256=é" + "0" * 63},
            pr_body,
            401,
        ),
        ("empty signature", {**pr_headers, "x-hub-signature-256": ""}, pr_body, 401),
        ("not JSON", {**pr_headers, "x-hub-signature-256": sign(b"{oops")}, b"{oops", 400),
        ("JSON array", {**pr_headers, "x-hub-signature-256": sign(b"[1]")}, b"[1]", 400),
        ("JSON string", {**pr_headers, "x-hub-signature-256": sign(b'"x"')}, b'"x"', 400),
        (
            "not UTF-8",
            {**pr_headers, "x-hub-signature-256": sign(b'{"a": "\xff"}')},
            b'{"a": "\xff"}',
            400,
        ),
        (
            "unknown charset",
            {
                **pr_headers,
                "content-type": "application/json; charset=klingon",
                "x-hub-signature-256": sign(pr_body),
            },
            pr_body,
            400,
        ),
        (
            "text/plain",
            {**pr_headers, "content-type": "text/plain", "x-hub-signature-256": sign(pr_body)},
            pr_body,
            400,
        ),
        (
            "form without payload",
            {
                **pr_headers,
                "content-type": "application/x-www-form-urlencoded",
                "x-hub-signature-256": sign(b"a=b"),
            },
            b"a=b",
            400,
        ),
        (
            "no X-GitHub-Event",
            {
                "content-type": "application/json",
                "x-github-delivery": "d-x",
                "x-hub-signature-256": sign(pr_body),
            },
            pr_body,
            400,
        ),
        (
            "no X-GitHub-Delivery",
            {
                "content-type": "application/json",
                "x-github-event": "pull_request",
                "x-hub-signature-256": sign(pr_body),
            },
            pr_body,
            400,
        ),
        (
            "form-encoded but signed JSON",
            {
                **pr_headers,
                "content-type": "application/x-www-form-urlencoded",
                "x-hub-signature-256": sign(form),
            },
            form,
            202,
        ),  # GitHub's other content type: accepted (then audited)
    ]


async def test_rejected_deliveries_call_nothing_and_queue_nothing(app_client: Harness) -> None:
    fake = app_client.fake
    pr = open_pr(fake)
    body = json.dumps(app_client.pr_event("opened", pr)).encode()
    for name, headers, payload, expected in _cases(app_client, body):
        if expected == 202:
            continue
        response = await app_client.client.post("/webhook", data=payload, headers=headers)
        assert response.status == expected, name
        assert (await response.json())["status"] == expected, name
        assert_nothing_happened(app_client)
    assert fake.runs_for(pr.head_sha) == []


async def test_form_encoded_delivery_is_accepted(app_client: Harness) -> None:
    fake = app_client.fake
    pr = open_pr(fake)
    body = json.dumps(app_client.pr_event("opened", pr)).encode()
    [(_, headers, payload, _)] = [c for c in _cases(app_client, body) if c[3] == 202]
    response = await app_client.client.post("/webhook", data=payload, headers=headers)
    assert response.status == 202
    await app_client.settle()
    assert [r.conclusion for r in fake.runs_for(pr.head_sha)] == ["failure"]


async def test_body_above_25_mb_is_413_and_calls_nothing(app_client: Harness) -> None:
    body = b'{"zen": "' + b"x" * MAX_BODY_BYTES + b'"}'
    response = await app_client.post_raw(body, event="pull_request")
    assert response.status == 413
    assert_nothing_happened(app_client)
    # 25 MB exactly is GitHub's cap, and still accepted.
    at_cap = b"{" + b" " * (MAX_BODY_BYTES - 2) + b"}"
    assert (await app_client.post_raw(at_cap, event="ping")).status == 200


async def test_handled_event_without_installation_is_400(app_client: Harness) -> None:
    pr = open_pr(app_client.fake)
    payload = app_client.pr_event("opened", pr)
    del payload["installation"]
    assert (await app_client.deliver("pull_request", payload)).status == 400
    assert_nothing_happened(app_client)


@pytest.mark.parametrize(
    "event, action",
    [
        ("pull_request", "labeled"),
        ("pull_request", "converted_to_draft"),
        ("pull_request", "brand_new_action"),  # GitHub adds actions over time
        ("check_suite", "requested"),  # see test_push_burst_audits_the_head_once
        ("check_suite", "completed"),
        ("check_run", "created"),
        ("check_run", "completed"),
        ("issue_comment", "deleted"),
        ("issues", "opened"),
        ("installation", "created"),
        ("star", "created"),
    ],
)
async def test_unhandled_events_and_actions_are_200(
    app_client: Harness, event: str, action: str
) -> None:
    pr = open_pr(app_client.fake)
    payload = app_client.pr_event("opened", pr)
    payload["action"] = action
    response = await app_client.deliver(event, payload)
    assert response.status == 200
    assert_nothing_happened(app_client)


async def test_ping_is_200_and_calls_nothing(app_client: Harness) -> None:
    response = await app_client.deliver("ping", payloads.ping_event(app_client.fake))
    assert response.status == 200
    assert_nothing_happened(app_client)


# --- redeliveries and bursts ---------------------------------------------------------------


async def test_redelivery_audits_the_head_once(app_client: Harness) -> None:
    fake = app_client.fake
    pr = open_pr(fake)
    payload = app_client.pr_event("opened", pr)
    assert (await app_client.deliver("pull_request", payload, delivery="d-1")).status == 202
    calls = len(fake.log)
    assert (await app_client.deliver("pull_request", payload, delivery="d-1")).status == 200
    assert len(fake.log) == calls
    assert len(fake.runs_for(pr.head_sha)) == 1


async def test_push_burst_audits_the_head_once(app_client: Harness) -> None:
    """One push fires `pull_request.synchronize` and `check_suite.requested`; GitHub may also
    send the same event twice and someone may redeliver it. The app handles only
    `check_suite.rerequested` (a click), so `requested` is ignored; the rest deduplicates."""
    fake = app_client.fake
    pr = open_pr(fake)
    pr.push({PATH: helper_source(2)})
    fake.faults.add(route="POST /repos/{o}/{r}/check-runs", delay=0.2)  # keep the audit running
    sync = app_client.pr_event("synchronize", pr)
    suite = payloads.check_suite_event(fake, fake.repo("acme/payments"), pr.head_sha, "requested")
    statuses = [
        (await app_client.deliver("pull_request", sync, delivery="s-1", settle=False)).status,
        (await app_client.deliver("check_suite", suite, delivery="c-1", settle=False)).status,
        (await app_client.deliver("pull_request", sync, delivery="s-1", settle=False)).status,
        (await app_client.deliver("pull_request", sync, delivery="s-2", settle=False)).status,
    ]
    await app_client.settle()
    assert statuses == [202, 200, 200, 202]
    assert fake.log.count("POST /repos/{o}/{r}/check-runs") == 1
    [run] = fake.runs_for(pr.head_sha)
    assert run.conclusion == "failure"
    assert len(fake.reviews_of(pr)) == 1


async def test_burst_after_the_audit_finished_does_not_audit_again(app_client: Harness) -> None:
    """A duplicate `synchronize` that arrives after the (quick) audit has finished."""
    fake = app_client.fake
    pr = open_pr(fake)
    sync = app_client.pr_event("synchronize", pr)
    await app_client.deliver("pull_request", sync, delivery="s-1")
    await app_client.deliver("pull_request", sync, delivery="s-2")
    assert fake.log.count("POST /repos/{o}/{r}/check-runs") == 1
    # An explicit request still re-audits.
    comment = app_client.comment_event(pr, "/txaudit", user="alice")
    await app_client.deliver("issue_comment", comment)
    assert fake.log.count("POST /repos/{o}/{r}/check-runs") == 2


async def test_failed_delivery_can_be_redelivered(app_client: Harness) -> None:
    """A delivery whose handling failed is not remembered: a manual redelivery works."""
    fake = app_client.fake
    pr = open_pr(fake)
    repo = fake.repo("acme/payments")
    repo.set_permission("bob", "write")
    fault = fake.faults.add(
        route="GET /repos/{o}/{r}/collaborators/{user}/permission", status=500, times=None
    )
    payload = app_client.comment_event(pr, "/txaudit", user="bob")
    assert (await app_client.deliver("issue_comment", payload, delivery="d-9")).status == 202
    assert fake.runs_for(pr.head_sha) == []
    fake.faults.faults.remove(fault)
    assert (await app_client.deliver("issue_comment", payload, delivery="d-9")).status == 202
    assert [r.status for r in fake.runs_for(pr.head_sha)] == ["completed"]


# --- bots ------------------------------------------------------------------------------------


@pytest.mark.parametrize("login", ["txaudit[bot]", "dependabot[bot]", "github-actions[bot]"])
async def test_bot_comments_trigger_nothing(app_client: Harness, login: str) -> None:
    pr = open_pr(app_client.fake)
    payload = app_client.comment_event(pr, "/txaudit\n/txaudit help", user=login)
    assert payload["sender"]["type"] == "Bot"
    assert (await app_client.deliver("issue_comment", payload)).status == 202
    assert app_client.fake.log.count() == 0


async def test_the_apps_own_replies_do_not_loop(app_client: Harness) -> None:
    fake = app_client.fake
    pr = open_pr(fake)
    await app_client.deliver("issue_comment", app_client.comment_event(pr, "/txaudit help"))
    await app_client.deliver("issue_comment", app_client.comment_event(pr, "/txaudit nope"))
    replies = [c for c in fake.issue_comments_of(pr) if c.user.endswith("[bot]")]
    assert len(replies) == 2
    fake.log.clear()
    for reply in replies:
        # GitHub delivers the app's own comments back to it; quote the command to be sure.
        reply.body += "\n/txaudit\n/txaudit help"
        event = payloads.issue_comment_event(fake, reply, "created")
        assert (await app_client.deliver("issue_comment", event)).status == 202
    assert fake.log.count() == 0
    assert len(fake.issue_comments_of(pr)) == 4
