"""Pull request events: audit new heads, cancel audits of closed pull requests."""

from __future__ import annotations

import logging
from typing import Any

from gidgethub import routing, sansio

from bot.app.auditor import Auditor
from bot.app.github import GitHubClient
from bot.app.queue import AuditRequest

logger = logging.getLogger(__name__)

router = routing.Router()


def _request(event: sansio.Event, trigger: str) -> tuple[AuditRequest, dict[str, Any]]:
    pull = event.data["pull_request"]
    base_repo = pull["base"]["repo"]
    request = AuditRequest(
        installation_id=event.data["installation"]["id"],
        owner=base_repo["owner"]["login"],
        repo=base_repo["name"],
        number=pull["number"],
        delivery_id=event.delivery_id,
        trigger=trigger,
    )
    return request, pull


@router.register("pull_request", action="opened")
@router.register("pull_request", action="reopened")
@router.register("pull_request", action="synchronize")
@router.register("pull_request", action="ready_for_review")
async def new_head(event: sansio.Event, gh: GitHubClient, auditor: Auditor) -> None:
    """Audit the head commit."""
    request, pull = _request(event, f"pull_request.{event.data['action']}")
    await auditor.request_audit(gh, request, pull=pull)


@router.register("pull_request", action="edited")
async def edited_pr(event: sansio.Event, gh: GitHubClient, auditor: Auditor) -> None:
    """A new base branch changes the diff (and the config); a new title does not."""
    if "base" not in (event.data.get("changes") or {}):
        return
    request, pull = _request(event, "pull_request.edited")
    await auditor.request_audit(gh, request, pull=pull)


@router.register("pull_request", action="closed")
async def closed_pr(event: sansio.Event, gh: GitHubClient, auditor: Auditor) -> None:
    """Cancel queued or running audits of the pull request."""
    request, _ = _request(event, "pull_request.closed")
    cancelled = await auditor.cancel(request.owner, request.repo, request.number)
    logger.info(
        "pull request closed",
        extra={
            "delivery": event.delivery_id,
            "repo": request.full_name,
            "pr": request.number,
            "cancelled": cancelled,
        },
    )
