"""Pull request comments: `/txaudit` slash commands."""

from __future__ import annotations

import logging
from typing import Any

from gidgethub import BadRequest, routing, sansio

from bot.app import commands
from bot.app.auditor import Auditor
from bot.app.commands import Command, Name
from bot.app.github import GitHubClient
from bot.app.queue import AuditRequest
from rules.engine.model import KNOWN_RULE_IDS

logger = logging.getLogger(__name__)

router = routing.Router()

#: Collaborator permissions that may run commands (GitHub reports maintain as write).
WRITE_PERMISSIONS = frozenset({"admin", "write", "maintain"})


@router.register("issue_comment", action="created")
async def comment_created(event: sansio.Event, gh: GitHubClient, auditor: Auditor) -> None:
    """Run the slash commands of a new pull request comment."""
    data = event.data
    issue, comment, sender = data["issue"], data["comment"], data.get("sender") or {}
    if not issue.get("pull_request"):
        return  # a plain issue
    author = comment.get("user") or {}
    if "Bot" in (sender.get("type"), author.get("type")) or any(
        str(who.get("login") or "").endswith("[bot]") for who in (sender, author)
    ):
        return  # other bots and this app's own replies: never answer them (no loops)
    parsed = commands.parse_commands(comment.get("body") or "")
    if not parsed:
        return
    owner, repo = data["repository"]["owner"]["login"], data["repository"]["name"]
    number = issue["number"]
    login = sender.get("login") or ""
    extra = {
        "delivery": event.delivery_id,
        "event": "issue_comment",
        "installation": data["installation"]["id"],
        "repo": f"{owner}/{repo}",
        "pr": number,
        "user": login,
        "commands": [c.name.value for c in parsed],
    }
    allowed, permission = await _may_run(gh, owner, repo, login, issue)
    if not allowed:
        logger.info("command refused", extra={**extra, "permission": permission})
        await _reply(gh, owner, repo, number, commands.denied_reply(login, permission))
        return
    logger.info("running commands", extra=extra)
    await gh.post(
        "/repos/{owner}/{repo}/issues/comments/{id}/reactions",
        {"owner": owner, "repo": repo, "id": comment["id"]},
        data={"content": "eyes"},
    )
    for command in parsed:
        await _run(command, event, gh, auditor, owner, repo, number)


async def _may_run(
    gh: GitHubClient, owner: str, repo: str, login: str, issue: dict[str, Any]
) -> tuple[bool, str]:
    """(allowed, permission): the pull request's author, or write access and above."""
    if login and (issue.get("user") or {}).get("login") == login:
        return True, "author"
    try:
        answer = await gh.getitem(
            "/repos/{owner}/{repo}/collaborators/{username}/permission",
            {"owner": owner, "repo": repo, "username": login},
        )
    except BadRequest as exc:
        if exc.status_code == 404:  # not a collaborator
            return False, "none"
        raise
    permission = str(answer.get("permission") or "none")
    return permission in WRITE_PERMISSIONS, permission


async def _run(
    command: Command,
    event: sansio.Event,
    gh: GitHubClient,
    auditor: Auditor,
    owner: str,
    repo: str,
    number: int,
) -> None:
    if command.audits:
        request = AuditRequest(
            installation_id=event.data["installation"]["id"],
            owner=owner,
            repo=repo,
            number=number,
            filter_override="file" if command.name is Name.FULL else None,
            delivery_id=event.delivery_id,
            trigger=f"/txaudit {command.name.value}",
        )
        await auditor.request_audit(gh, request)
    elif command.name is Name.EXPLAIN:
        await _reply(gh, owner, repo, number, _explain(command.argument))
    elif command.name is Name.HELP:
        await _reply(gh, owner, repo, number, commands.help_reply())
    else:
        await _reply(gh, owner, repo, number, commands.help_reply(command.argument))


def _explain(rule_id: str) -> str:
    from rules.engine import registry

    info = registry.get_rule(rule_id) if rule_id else None
    if info is None:
        known = [rule.id for rule in registry.all_rules()] or list(KNOWN_RULE_IDS)
        return commands.unknown_rule_reply(rule_id, known)
    return commands.explain_reply(info.id, info.name, info.doc)


async def _reply(gh: GitHubClient, owner: str, repo: str, number: int, body: str) -> None:
    await gh.post(
        "/repos/{owner}/{repo}/issues/{number}/comments",
        {"owner": owner, "repo": repo, "number": number},
        data={"body": body},
    )
