"""Review threads that follow their findings: a fixed finding's thread is answered and
resolved, a finding that comes back reopens its thread (GraphQL; REST has no resolve).

Resolving needs `contents: write` for a GitHub App (github/gh-aw#35726, oven-sh/bun#40468),
which `app.yaml` does not ask for: a FORBIDDEN answer is expected, the reply alone is posted,
and the check-run summary says once how to let txaudit resolve.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gidgethub import BadRequest, GraphQLException, HTTPException, QueryError

from bot.app.github import GitHubClient
from bot.review.fingerprints import fingerprints_in

logger = logging.getLogger(__name__)

#: A thread's replies carry this marker, so that one head is never answered twice.
REPLY_MARKER = "<!-- txaudit:thread {state}@{sha} -->"
FORBIDDEN_NOTE = (
    "txaudit replied in the threads of fixed findings but could not resolve them: "
    "granting the app **Contents: write** lets it resolve fixed threads."
)

THREADS_QUERY = """
query($owner: String!, $name: String!, $number: Int!, $after: String) {
  repository(owner: $owner, name: $name) {
    pullRequest(number: $number) {
      reviewThreads(first: 100, after: $after) {
        pageInfo { hasNextPage endCursor }
        nodes {
          id
          isResolved
          resolvedBy { login }
          path
          comments(first: 100) {
            nodes { fullDatabaseId body author { login } }
          }
        }
      }
    }
  }
}
"""
RESOLVE = """
mutation($threadId: ID!) {
  resolveReviewThread(input: {threadId: $threadId}) { thread { id isResolved } }
}
"""
UNRESOLVE = """
mutation($threadId: ID!) {
  unresolveReviewThread(input: {threadId: $threadId}) { thread { id isResolved } }
}
"""
#: Pages of threads read at most (100 threads each).
MAX_THREAD_PAGES = 10


def graphql_url(api_url: str) -> str:
    """GitHub's GraphQL endpoint for a REST base: `https://HOST/api/graphql` beside
    Enterprise Server's `https://HOST/api/v3`, else `{api_url}/graphql`."""
    base = api_url.rstrip("/")
    if base.endswith("/api/v3"):
        return base[: -len("/v3")] + "/graphql"
    return base + "/graphql"


@dataclass
class Tidied:
    """What tidying the threads did, for the summary."""

    fixed: int = 0
    resolved: int = 0
    reopened: int = 0
    forbidden: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Thread:
    id: str
    resolved: bool
    resolved_by: str | None
    path: str
    top_id: int
    fingerprints: frozenset[str]
    bodies: tuple[str, ...]
    rule: str | None = None


async def tidy_threads(
    gh: GitHubClient,
    *,
    api_url: str,
    owner: str,
    repo: str,
    number: int,
    head_sha: str,
    bot_login: str | None,
    reported: Collection[str],
    unknown_paths: Collection[str],
    pull_paths: Collection[str],
    suppressed: Mapping[str, Sequence[tuple[tuple[str, ...], str | None]]] | None = None,
) -> Tidied:
    """Answer and resolve the threads of our comments whose findings are gone at `head_sha`,
    and reopen those we resolved whose findings are back. Threads resolved by a person are left
    alone; a file that was not audited (`unknown_paths`) says nothing. `suppressed`: the used
    suppressions of each audited file (rule ids, empty for all; reason), so that a finding
    suppressed since is answered with its reason. Never raises."""
    done = Tidied()
    endpoint = graphql_url(api_url)
    try:
        threads = await _threads(gh, endpoint, owner, repo, number, bot_login)
    except (GraphQLException, HTTPException) as exc:
        logger.warning("could not read review threads", extra={"error": _describe(exc)})
        done.notes.append(f"Review threads were not updated: {_describe(exc)}.")
        return done
    short = head_sha[:7]
    for thread in threads:
        if not thread.fingerprints or thread.path in unknown_paths:
            continue
        gone = not (thread.fingerprints & set(reported))
        try:
            if gone and not thread.resolved:
                done.fixed += 1
                reason = _why_gone(
                    thread, short, pull_paths, (suppressed or {}).get(thread.path, ())
                )
                marker = REPLY_MARKER.format(state="fixed", sha=head_sha)
                await _reply_once(gh, owner, repo, number, thread, reason, marker)
                if not done.forbidden and await _mutate(gh, endpoint, RESOLVE, thread, done):
                    done.resolved += 1
            elif not gone and thread.resolved and bot_login and thread.resolved_by == bot_login:
                marker = REPLY_MARKER.format(state="back", sha=head_sha)
                if await _mutate(gh, endpoint, UNRESOLVE, thread, done):
                    done.reopened += 1
                await _reply_once(
                    gh, owner, repo, number, thread, f"This finding is back in `{short}`.", marker
                )
        except (GraphQLException, HTTPException) as exc:
            logger.warning(
                "could not update a review thread",
                extra={"thread": thread.id, "error": _describe(exc)},
            )
            done.notes.append(f"A review thread was not updated: {_describe(exc)}.")
    if done.forbidden:
        done.notes.append(FORBIDDEN_NOTE)
    return done


_RULE_ID = re.compile(r"\b(TXA?\d{2,3}|ORM\d{3})\b")


def _why_gone(
    thread: _Thread,
    short: str,
    pull_paths: Collection[str],
    suppressions: Sequence[tuple[tuple[str, ...], str | None]],
) -> str:
    """The reply for a thread whose finding is gone: removed, suppressed (a suppression of the
    comment's rule is used in the file; the first one is named), or fixed."""
    if thread.path not in pull_paths:
        return f"The code is gone from this pull request's changes in `{short}`."
    for rule_ids, reason in suppressions:
        if thread.rule is not None and (not rule_ids or thread.rule in rule_ids):
            if reason:
                return f"Suppressed in `{short}`: {reason}"
            return f"Suppressed in `{short}` (no reason given)."
    return f"Fixed in `{short}`."


async def _threads(
    gh: GitHubClient,
    endpoint: str,
    owner: str,
    repo: str,
    number: int,
    bot_login: str | None,
) -> list[_Thread]:
    out: list[_Thread] = []
    after: str | None = None
    for _ in range(MAX_THREAD_PAGES):
        data = await gh.graphql(
            THREADS_QUERY, endpoint=endpoint, owner=owner, name=repo, number=number, after=after
        )
        pull = ((data or {}).get("repository") or {}).get("pullRequest") or {}
        page = pull.get("reviewThreads") or {}
        for node in page.get("nodes") or []:
            thread = _parse(node, bot_login)
            if thread is not None:
                out.append(thread)
        info = page.get("pageInfo") or {}
        if not info.get("hasNextPage"):
            break
        after = info.get("endCursor")
    return out


def _parse(node: Mapping[str, Any], bot_login: str | None) -> _Thread | None:
    comments = ((node.get("comments") or {}).get("nodes")) or []
    if not comments:
        return None
    top = comments[0]
    author = (top.get("author") or {}).get("login")
    if bot_login is not None and author != bot_login:
        return None  # not our comment
    try:
        top_id = int(top.get("fullDatabaseId") or 0)
    except (TypeError, ValueError):
        return None
    return _Thread(
        id=str(node.get("id")),
        resolved=bool(node.get("isResolved")),
        resolved_by=((node.get("resolvedBy") or {}).get("login")),
        path=str(node.get("path") or ""),
        top_id=top_id,
        fingerprints=fingerprints_in(top.get("body") or ""),
        bodies=tuple(str(c.get("body") or "") for c in comments[1:]),
        rule=next(iter(_RULE_ID.findall(top.get("body") or "")), None),
    )


async def _reply_once(
    gh: GitHubClient,
    owner: str,
    repo: str,
    number: int,
    thread: _Thread,
    text: str,
    marker: str,
) -> None:
    if any(marker in body for body in thread.bodies):
        return  # this head was answered already (a re-run, a redelivery)
    await gh.post(
        "/repos/{owner}/{repo}/pulls/{number}/comments/{comment_id}/replies",
        {"owner": owner, "repo": repo, "number": number, "comment_id": thread.top_id},
        data={"body": f"{text}\n{marker}"},
    )


async def _mutate(
    gh: GitHubClient, endpoint: str, document: str, thread: _Thread, done: Tidied
) -> bool:
    """Run a resolve/unresolve; False (and `done.forbidden`) when the app may not."""
    try:
        await gh.graphql(document, endpoint=endpoint, threadId=thread.id)
    except QueryError as exc:
        if _error_type(exc) == "FORBIDDEN":
            done.forbidden = True
            return False
        raise
    return True


def _error_type(exc: QueryError) -> str | None:
    errors = (exc.response or {}).get("errors") or []
    return errors[0].get("type") if errors and isinstance(errors[0], dict) else None


def _describe(exc: Exception) -> str:
    if isinstance(exc, QueryError):
        return f"GitHub's GraphQL API answered: {exc}"
    if isinstance(exc, BadRequest | HTTPException):
        return f"GitHub answered {int(exc.status_code)}"
    return f"GitHub's GraphQL API failed ({exc.__class__.__name__})"
