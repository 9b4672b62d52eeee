"""`POST /graphql` (`/api/graphql` on GitHub Enterprise Server): GitHub's GraphQL API over the
fake's state, as far as review threads go.

Every document is parsed and validated against GitHub's public schema
(`github-schema.graphql`, vendored from the npm package `@octokit/graphql-schema` 15.26.1,
`schema.graphql`), so a misspelled field fails as it would on GitHub: HTTP 200 with `errors`.
A review thread is a top-level review comment with its replies. `resolveReviewThread` and
`unresolveReviewThread` answer FORBIDDEN ("Resource not accessible by integration") unless the
app has `contents: write`, as GitHub does for apps (github/gh-aw#35726, oven-sh/bun#40468).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from aiohttp import web
from graphql import GraphQLError, GraphQLSchema, build_schema, execute, parse, validate

from .server import FAKE_KEY, FakeGitHub, json_response
from .state import PullRequest, ReviewComment

SCHEMA_PATH = Path(__file__).with_name("github-schema.graphql")


@functools.cache
def schema() -> GraphQLSchema:
    """GitHub's public schema, built once per process (~1 s)."""
    # The published SDL repeats two fields of EnterpriseOwnerInfo; GitHub serves it anyway.
    return build_schema(SCHEMA_PATH.read_text(encoding="utf-8"), assume_valid_sdl=True)


def _error(message: str, kind: str) -> GraphQLError:
    return GraphQLError(message, extensions={"type": kind})


def _connection(items: list[Any], first: int | None, after: str | None) -> dict[str, Any]:
    start = int(after) + 1 if after else 0
    count = min(first or 100, 100)
    page = items[start : start + count]
    end = start + len(page) - 1
    return {
        "nodes": page,
        "totalCount": len(items),
        "pageInfo": {
            "hasNextPage": start + len(page) < len(items),
            "hasPreviousPage": start > 0,
            "endCursor": str(end) if page else None,
            "startCursor": str(start) if page else None,
        },
    }


class _Api:
    """Resolvers over one fake, for one request's credentials."""

    def __init__(self, fake: FakeGitHub, app_id: int | None) -> None:
        self.fake = fake
        self.app_id = app_id

    # -- nodes ----------------------------------------------------------------------------

    def _actor(self, login: str) -> dict[str, Any]:
        kind = "Bot" if login.endswith("[bot]") else "User"
        return {"__typename": kind, "login": login}

    def _comment(self, c: ReviewComment) -> dict[str, Any]:
        return {
            "__typename": "PullRequestReviewComment",
            "id": f"PRRC_{c.id}",
            "fullDatabaseId": str(c.id),
            "databaseId": c.id,
            "body": c.body,
            "path": c.path,
            "author": self._actor(c.user),
            "url": f"{self.fake.html_url}/{c.repo}/pull/{c.pull_number}#discussion_r{c.id}",
        }

    def _thread_comments(self, top: ReviewComment) -> list[ReviewComment]:
        replies = [c for c in self.fake.review_comments.values() if c.in_reply_to_id == top.id]
        return [top, *sorted(replies, key=lambda c: c.id)]

    def _thread(self, top: ReviewComment) -> dict[str, Any]:
        resolver = self.fake.resolved_threads.get(top.id)
        comments = [self._comment(c) for c in self._thread_comments(top)]
        return {
            "__typename": "PullRequestReviewThread",
            "id": f"PRRT_{top.id}",
            "isResolved": resolver is not None,
            "isOutdated": False,
            "path": top.path,
            "line": top.line,
            "resolvedBy": self._actor(resolver) if resolver else None,
            "comments": lambda info, first=None, after=None, **_: _connection(
                comments, first, after
            ),
        }

    def _pull(self, pr: PullRequest) -> dict[str, Any]:
        tops = [
            c
            for c in self.fake.review_comments.values()
            if c.repo == pr.repo.full_name
            and c.pull_number == pr.number
            and c.in_reply_to_id is None
        ]
        threads = [self._thread(c) for c in sorted(tops, key=lambda c: c.id)]
        return {
            "number": pr.number,
            "reviewThreads": lambda info, first=None, after=None, **_: _connection(
                threads, first, after
            ),
        }

    def _top(self, thread_id: str) -> ReviewComment:
        try:
            top = self.fake.review_comments[int(thread_id.removeprefix("PRRT_"))]
        except (ValueError, KeyError):
            top = None
        if top is None or top.in_reply_to_id is not None:
            raise _error(
                f"Could not resolve to a node with the global id of '{thread_id}'", "NOT_FOUND"
            )
        return top

    def _require_contents_write(self) -> None:
        app = self.fake.apps.get(self.app_id or -1)
        if app is None or app.permissions.get("contents") != "write":
            raise _error("Resource not accessible by integration", "FORBIDDEN")

    def _login(self) -> str:
        app = self.fake.apps[self.app_id or -1]
        return app.bot_login

    # -- the roots ------------------------------------------------------------------------

    def query_root(self) -> dict[str, Any]:
        def repository(info: Any, owner: str, name: str, **_: Any) -> dict[str, Any] | None:
            repo = self.fake.repos.get(f"{owner}/{name}")
            if repo is None:
                raise _error(
                    f"Could not resolve to a Repository with the name '{owner}/{name}'.",
                    "NOT_FOUND",
                )

            def pull_request(info: Any, number: int) -> dict[str, Any] | None:
                issue = repo.issues.get(number)
                return self._pull(issue) if isinstance(issue, PullRequest) else None

            return {"name": repo.name, "pullRequest": pull_request}

        return {"repository": repository}

    def mutation_root(self) -> dict[str, Any]:
        def resolve(info: Any, input: dict[str, Any]) -> dict[str, Any]:
            top = self._top(input["threadId"])
            self._require_contents_write()
            self.fake.resolved_threads[top.id] = self._login()
            return {"thread": self._thread(top), "clientMutationId": input.get("clientMutationId")}

        def unresolve(info: Any, input: dict[str, Any]) -> dict[str, Any]:
            top = self._top(input["threadId"])
            self._require_contents_write()
            self.fake.resolved_threads.pop(top.id, None)
            return {"thread": self._thread(top), "clientMutationId": input.get("clientMutationId")}

        def reply(info: Any, input: dict[str, Any]) -> dict[str, Any]:
            top = self._top(input.get("pullRequestReviewThreadId") or "")
            comment = self.fake.add_review_reply(top, self._login(), input["body"])
            return {"comment": self._comment(comment)}

        return {
            "resolveReviewThread": resolve,
            "unresolveReviewThread": unresolve,
            "addPullRequestReviewThreadReply": reply,
        }


def _formatted(error: GraphQLError) -> dict[str, Any]:
    data = error.formatted
    kind = (error.extensions or {}).get("type")
    if kind:
        data["type"] = kind  # where GitHub puts it
    return dict(data)


async def graphql_endpoint(request: web.Request) -> web.Response:
    """POST /graphql: validate the document against the schema, then run it on the state."""
    fake: FakeGitHub = request.app[FAKE_KEY]
    body = request["json"]
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return json_response({"message": "Problems parsing JSON"}, status=400)
    try:
        document = parse(body["query"])
    except GraphQLError as exc:
        return json_response({"errors": [_formatted(exc)]})
    errors = validate(schema(), document)
    if errors:
        return json_response({"errors": [_formatted(e) for e in errors]})
    api = _Api(fake, request["auth"].app_id)
    operation = next(
        (d for d in document.definitions if getattr(d, "operation", None) is not None), None
    )
    is_mutation = operation is not None and operation.operation.value == "mutation"
    result = execute(
        schema(),
        document,
        root_value=api.mutation_root() if is_mutation else api.query_root(),
        variable_values=body.get("variables") or {},
    )
    payload: dict[str, Any] = {"data": result.data}
    if result.errors:
        payload["errors"] = [_formatted(e) for e in result.errors]
    fake.graphql_documents.append(json.dumps(body)[:2000])
    return json_response(payload)
