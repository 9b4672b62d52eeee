"""Check run and check suite events: the Re-run buttons and the Re-audit action."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from gidgethub import routing, sansio

from bot.app.auditor import CHECK_NAME, Auditor, parse_external_id
from bot.app.github import GitHubClient
from bot.app.queue import AuditRequest

logger = logging.getLogger(__name__)

router = routing.Router()

REAUDIT_IDENTIFIER = "reaudit"


@router.register("check_run", action="rerequested")
async def check_run_rerequested(event: sansio.Event, gh: GitHubClient, auditor: Auditor) -> None:
    """ "Re-run" on our check run: re-audit its pull request."""
    await _reaudit_check_run(event, gh, auditor)


@router.register("check_run", action="requested_action")
async def check_run_requested_action(
    event: sansio.Event, gh: GitHubClient, auditor: Auditor
) -> None:
    """The check run's "Re-audit" button."""
    identifier = (event.data.get("requested_action") or {}).get("identifier")
    if identifier != REAUDIT_IDENTIFIER:
        return
    await _reaudit_check_run(event, gh, auditor)


@router.register("check_suite", action="rerequested")
async def check_suite_rerequested(event: sansio.Event, gh: GitHubClient, auditor: Auditor) -> None:
    """ "Re-run all checks": re-audit the pull requests of the suite's commit."""
    suite = event.data["check_suite"]
    if not await auditor.is_our_app(suite.get("app")):
        return
    owner, repo = _repo(event)
    numbers = _numbers(suite.get("pull_requests"), event)
    if not numbers:
        # Fork pull requests: `pull_requests` is empty, so read our runs' external_id.
        async for run in gh.getiter(
            "/repos/{owner}/{repo}/commits/{sha}/check-runs"
            "?check_name={name}&filter=all&per_page=100",
            {"owner": owner, "repo": repo, "sha": suite["head_sha"], "name": CHECK_NAME},
            iterable_key="check_runs",
        ):
            if await auditor.is_our_app(run.get("app")):
                numbers |= _from_external_id(run.get("external_id"), event)
    if not numbers:
        numbers = await _numbers_for_commit(gh, owner, repo, suite["head_sha"], event)
    await _reaudit(event, gh, auditor, numbers)


async def _reaudit_check_run(event: sansio.Event, gh: GitHubClient, auditor: Auditor) -> None:
    run = event.data["check_run"]
    if not await auditor.is_our_app(run.get("app")):
        return  # another app's run
    numbers = _from_external_id(run.get("external_id"), event)
    if not numbers:
        numbers = _numbers(run.get("pull_requests"), event)
    if not numbers:
        owner, repo = _repo(event)
        numbers = await _numbers_for_commit(gh, owner, repo, run["head_sha"], event)
    await _reaudit(event, gh, auditor, numbers)


async def _reaudit(
    event: sansio.Event, gh: GitHubClient, auditor: Auditor, numbers: Iterable[int]
) -> None:
    owner, repo = _repo(event)
    numbers = sorted(numbers)
    if not numbers:
        logger.info(
            "no pull request found for the check",
            extra={"delivery": event.delivery_id, "repo": f"{owner}/{repo}"},
        )
        return
    for number in numbers:
        request = AuditRequest(
            installation_id=event.data["installation"]["id"],
            owner=owner,
            repo=repo,
            number=number,
            delivery_id=event.delivery_id,
            trigger=f"{event.event}.{event.data.get('action')}",
        )
        await auditor.request_audit(gh, request)


def _repo(event: sansio.Event) -> tuple[str, str]:
    repository = event.data["repository"]
    return repository["owner"]["login"], repository["name"]


def _numbers(pulls: Iterable[Mapping[str, Any]] | None, event: sansio.Event) -> set[int]:
    """Numbers of the listed pull requests whose base is this repository."""
    repo_id = event.data["repository"].get("id")
    found = set()
    for pull in pulls or ():
        base_repo = ((pull.get("base") or {}).get("repo") or {}).get("id")
        if base_repo is None or base_repo == repo_id:
            found.add(int(pull["number"]))
    return found


def _from_external_id(value: str | None, event: sansio.Event) -> set[int]:
    parsed = parse_external_id(value)
    if parsed is None or parsed[0].lower() != event.data["repository"]["full_name"].lower():
        return set()
    return {parsed[1]}


async def _numbers_for_commit(
    gh: GitHubClient, owner: str, repo: str, sha: str, event: sansio.Event
) -> set[int]:
    """Open pull requests of this repository that contain `sha`."""
    found = set()
    async for pull in gh.getiter(
        "/repos/{owner}/{repo}/commits/{sha}/pulls?per_page=100",
        {"owner": owner, "repo": repo, "sha": sha},
    ):
        if pull.get("state") == "open" and (pull.get("head") or {}).get("sha") == sha:
            found |= _numbers([pull], event)
    return found
