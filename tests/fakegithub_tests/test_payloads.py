"""Webhook payload builders keep the recorded shapes, and deliveries validate with gidgethub."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from fakegithub import FakeGitHub
from fakegithub.payloads import (
    check_suite_event,
    deliver,
    issue_comment_event,
    pull_request_event,
    sign,
)
from fakegithub.scenarios import SCENARIOS, build, load_sample, seed
from gidgethub import sansio


def shape_gaps(sample: Any, built: Any, path: str = "$") -> list[str]:
    """Key paths of ``sample`` missing from ``built`` or typed differently (null matches all)."""
    if sample is None or built is None:
        return []
    if isinstance(sample, dict):
        if not isinstance(built, dict):
            return [f"{path}: expected object"]
        gaps = [f"{path}.{k}: missing" for k in sample if k not in built]
        for key, value in sample.items():
            if key in built:
                gaps += shape_gaps(value, built[key], f"{path}.{key}")
        return gaps
    if isinstance(sample, list):
        if not isinstance(built, list):
            return [f"{path}: expected array"]
        if sample and built:
            return shape_gaps(sample[0], built[0], f"{path}[0]")
        return []
    if (
        isinstance(sample, bool) != isinstance(built, bool)
        or (isinstance(sample, int | float) != isinstance(built, int | float))
        or isinstance(sample, str) != isinstance(built, str)
    ):
        return [f"{path}: {type(sample).__name__} vs {type(built).__name__}"]
    return []


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
async def test_builders_keep_the_sample_shapes(fake_github: FakeGitHub, scenario: str) -> None:
    event, sample = load_sample(scenario)
    built_event, built = build(scenario, fake_github)
    assert built_event == event
    assert built.get("action") == sample.get("action")
    assert shape_gaps(sample, built) == []
    if event != "ping":
        assert built["installation"]["id"] == fake_github.installation_id
        assert built["repository"]["url"].startswith(fake_github.url)


def test_sign_matches_githubs_test_vector() -> None:
    assert sign(b"Hello, World!", "It's a Secret to Everybody") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


async def test_semantics_of_key_payloads(fake_github: FakeGitHub) -> None:
    s = seed(fake_github)
    pr, fork_pr, repo = s["pr"], s["fork_pr"], s["repo"]
    before = pr.head_sha
    pr.push({"x.py": "x = 1\n"})
    sync = pull_request_event(fake_github, pr, "synchronize")
    assert (sync["before"], sync["after"]) == (before, pr.head_sha)
    assert sync["pull_request"]["head"]["sha"] == pr.head_sha

    repo.commit({"y.py": "y\n"}, branch="release")
    edited = pull_request_event(fake_github, pr, "edited", changes=pr.change_base("release"))
    assert edited["changes"]["base"]["ref"]["from"] == "main"
    assert edited["pull_request"]["base"]["ref"] == "release"

    suite = check_suite_event(fake_github, repo, fork_pr.head_sha, "requested")["check_suite"]
    assert suite["pull_requests"] == [] and suite["head_branch"] is None
    own = check_suite_event(fake_github, repo, pr.head_sha, "rerequested")["check_suite"]
    assert [p["number"] for p in own["pull_requests"]] == [pr.number]

    fake_github.delete_repo(s["fork"])
    gone = pull_request_event(fake_github, fork_pr, "synchronize")
    assert gone["pull_request"]["head"]["repo"] is None

    on_pr = issue_comment_event(fake_github, repo.add_comment(pr.number, "/txaudit"))
    on_issue = issue_comment_event(fake_github, repo.add_comment(s["issue"].number, "/txaudit"))
    assert "pull_request" in on_pr["issue"] and "pull_request" not in on_issue["issue"]
    bot = issue_comment_event(fake_github, repo.add_comment(pr.number, "hi", user="txaudit[bot]"))
    assert bot["sender"]["type"] == "Bot"


async def test_deliver_is_accepted_by_gidgethub(
    fake_github: FakeGitHub, aiohttp_client: Any
) -> None:
    seen: list[sansio.Event] = []

    async def webhook(request: web.Request) -> web.Response:
        try:
            event = sansio.Event.from_http(
                request.headers, await request.read(), secret=fake_github.webhook_secret
            )
        except Exception:  # noqa: BLE001 - any validation failure is a 401 here
            return web.Response(status=401)
        seen.append(event)
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    client = await aiohttp_client(app)
    payload = pull_request_event(fake_github, seed(fake_github)["pr"], "opened")
    resp = await deliver(client, "pull_request", payload, fake_github.webhook_secret, "d-1")
    assert resp.status == 202
    assert seen[0].event == "pull_request" and seen[0].delivery_id == "d-1"
    assert seen[0].data["pull_request"]["number"] == payload["number"]
    assert (await deliver(client, "pull_request", payload, "wrong-secret")).status == 401
