"""GitHub access: retries, rate limits, dropped connections, concurrency, tokens, logs."""

from __future__ import annotations

import logging
import time

from app_helpers import Harness, helper_source

import bot.app.github

PATH = "app/jobs.py"


def new_pr(fake, files=None):
    repo = fake.create_repo("acme/payments", files={"README.md": "hi\n"})
    repo.push("feature", files or {PATH: helper_source(1)})
    return repo, repo.open_pull(head="feature")


async def test_primary_rate_limit_waits_until_reset(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = new_pr(fake)
    fake.faults.primary_rate_limit(
        reset_at=int(time.time()) + 30, route="GET /repos/{o}/{r}/pulls/{n}/files"
    )
    await app_client.deliver("pull_request", app_client.pr_event("opened", pr))
    [run] = fake.runs_for(pr.head_sha)
    assert run.conclusion == "failure" and len(run.annotations) == 1
    assert any(25 <= s <= 32 for s in app_client.sleeps)


async def test_primary_rate_limit_too_far_away_fails_the_audit_in_words(
    app_client: Harness,
) -> None:
    fake = app_client.fake
    _, pr = new_pr(fake)
    fake.faults.primary_rate_limit(
        reset_at=int(time.time()) + 3000, route="GET /repos/{o}/{r}/pulls/{n}/files"
    )
    await app_client.deliver("pull_request", app_client.pr_event("opened", pr))
    [run] = fake.runs_for(pr.head_sha)
    assert run.conclusion == "failure"
    assert "rate limit" in run.output["summary"]


async def test_429_and_dropped_connections_are_retried(app_client: Harness) -> None:
    fake = app_client.fake
    _, pr = new_pr(fake)
    fake.faults.too_many_requests(route="GET /repos/{o}/{r}/git/blobs/{sha}", retry_after=3)
    # aiohttp itself retries a GET once on a dropped keep-alive connection; drop it more often.
    dropped = fake.faults.add(route="GET /repos/{o}/{r}/pulls/{n}/comments", drop=True, times=4)
    await app_client.deliver("pull_request", app_client.pr_event("opened", pr))
    [run] = fake.runs_for(pr.head_sha)
    assert run.conclusion == "failure" and len(run.annotations) == 1
    assert dropped.fired == 4
    assert 3 in app_client.sleeps and len(app_client.sleeps) >= 2


async def test_concurrency_per_installation_is_bounded(app_client: Harness) -> None:
    fake = app_client.fake
    files = {f"app/mod_{i:03}.py": helper_source(1, start=i) for i in range(60)}
    _, pr = new_pr(fake, files)
    fake.latency = 0.01
    await app_client.deliver("pull_request", app_client.pr_event("opened", pr))
    [run] = fake.runs_for(pr.head_sha)
    assert len(run.annotations) == 60
    assert 1 < fake.max_in_flight <= bot.app.github.CONCURRENCY_PER_INSTALLATION


async def test_token_is_reminted_five_minutes_before_expiry(app_client: Harness) -> None:
    fake = app_client.fake
    fake.token_lifetime = 6 * 60
    app_client.github.tokens._clock = fake.clock.now
    _, pr = new_pr(fake)
    await app_client.deliver("pull_request", app_client.pr_event("opened", pr))
    await app_client.deliver("pull_request", app_client.pr_event("reopened", pr))
    assert fake.log.count("POST /app/installations/{id}/access_tokens") == 1
    fake.clock.advance(2 * 60)  # 4 minutes left: inside the margin
    await app_client.deliver("pull_request", app_client.pr_event("reopened", pr))
    assert fake.log.count("POST /app/installations/{id}/access_tokens") == 2
    assert fake.log.count(status=401) == 0


async def test_logs_carry_context_and_never_secrets(app_client: Harness, caplog) -> None:
    fake = app_client.fake
    _, pr = new_pr(fake)
    caplog.set_level(logging.DEBUG)
    await app_client.deliver("pull_request", app_client.pr_event("opened", pr), delivery="d-42")
    done = [r for r in caplog.records if r.getMessage() == "audit complete"]
    assert done and done[0].delivery == "d-42" and done[0].pr == pr.number
    assert done[0].head_sha == pr.head_sha and done[0].repo == "acme/payments"
    rate = [r for r in caplog.records if r.getMessage() == "rate limit after audit"]
    assert rate and rate[0].rate_remaining is not None
    everything = "\n".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)
    for token in fake.tokens:
        assert token not in everything
    assert fake.webhook_secret not in everything
    assert "PRIVATE KEY" not in everything


async def test_app_jwt_is_signed_once_with_the_key_parsed_at_startup(
    app_client: Harness, monkeypatch
) -> None:
    """Parsing the PEM costs ~28 ms of event-loop CPU; signing with the parsed key ~0.3 ms.
    Regression: every JWT (token mint, GET /app) used to parse the PEM again."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    keys: list[object] = []
    real_encode = jwt.encode

    def spy(payload, key, *args, **kwargs):
        keys.append(key)
        return real_encode(payload, key, *args, **kwargs)

    monkeypatch.setattr(jwt, "encode", spy)
    fake = app_client.fake
    _, pr = new_pr(fake)
    await app_client.deliver("pull_request", app_client.pr_event("opened", pr))
    assert await app_client.github.bot_login() is not None  # GET /app with the app JWT
    [run] = fake.runs_for(pr.head_sha)
    assert run.conclusion == "failure"
    assert fake.log.count("GET /app") == 1 and fake.log.count(status=401) == 0
    assert len(keys) == 1 and isinstance(keys[0], rsa.RSAPrivateKey)
