"""The REST endpoints of the fake, each behaving (status codes, shapes, limits) like GitHub's.

``ROUTES`` lists ``(method, template, handler, auth)``; ``auth`` is ``"jwt"`` (app JWT),
``"token"`` (installation token) or ``"any"``. Templates are what the request log reports.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from . import render
from .gitdata import Commit, FileDiff, Hunk
from .server import FAKE_KEY, ApiError, Auth, FakeGitHub, json_response
from .state import (
    MANIFEST_CODE_LIFETIME,
    REACTIONS,
    CheckRun,
    IssueComment,
    ManifestRegistration,
    PullRequest,
    Reaction,
    Repo,
    Review,
    ReviewComment,
    generate_private_key_pem,
    stable_id,
)

MAX_PR_FILES = 3000
JSON_CONTENT_LIMIT = 1024 * 1024
ISSUE_COMMENT_MAX = 65536
CHECK_TEXT_MAX = 65535
ANNOTATIONS_PER_REQUEST = 50
CHECK_STATUSES = ("queued", "in_progress", "completed")
CHECK_CONCLUSIONS = (
    "action_required",
    "cancelled",
    "failure",
    "neutral",
    "success",
    "skipped",
    "timed_out",
)
ANNOTATION_LEVELS = ("notice", "warning", "failure")
REVIEW_EVENTS = {
    "COMMENT": "COMMENTED",
    "APPROVE": "APPROVED",
    "REQUEST_CHANGES": "CHANGES_REQUESTED",
}
DOCS_REVIEWS = "https://docs.github.com/rest/pulls/reviews#create-a-review-for-a-pull-request"
DOCS_CHECKS = "https://docs.github.com/rest/checks/runs#create-a-check-run"


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _fake(request: web.Request) -> FakeGitHub:
    return request.app[FAKE_KEY]


def _auth(request: web.Request) -> Auth:
    auth: Auth = request["auth"]
    return auth


def _body(request: web.Request) -> dict[str, Any]:
    body = request["json"]
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ApiError(400, "Problems parsing JSON")
    return body


def _repo(request: web.Request) -> Repo:
    """The repository of the URL, if the token may see it (GitHub answers 404 otherwise)."""
    fake = _fake(request)
    full_name = f"{request.match_info['o']}/{request.match_info['r']}"
    repo = fake.repos.get(full_name.lower())
    auth = _auth(request)
    if repo is None:
        raise ApiError(404, "Not Found")
    if auth.token is not None:
        inst = fake.installations[auth.token.installation_id]
        allowed = auth.token.repositories
        if not inst.covers(repo.full_name) or (
            allowed is not None and repo.full_name not in allowed
        ):
            raise ApiError(404, "Not Found")
    return repo


def _number(request: web.Request, key: str = "n") -> int:
    return int(request.match_info[key])


def _pull(request: web.Request, repo: Repo) -> PullRequest:
    issue = repo.issues.get(_number(request))
    if not isinstance(issue, PullRequest):
        raise ApiError(404, "Not Found")
    return issue


def _bot(fake: FakeGitHub, auth: Auth) -> str:
    app_id = auth.app_id
    assert app_id is not None
    return fake.apps[app_id].bot_login


def _accepts_raw(request: web.Request) -> bool:
    return ".raw" in request.headers.get("Accept", "")


def _raw_response(data: bytes, request: web.Request) -> web.Response:
    accept = request.headers.get("Accept", "application/vnd.github.raw")
    media = next(
        (p.strip() for p in accept.split(",") if ".raw" in p), "application/vnd.github.raw"
    )
    return web.Response(body=data, headers={"Content-Type": f"{media}; charset=utf-8"})


def paginate(
    request: web.Request, items: list[Any], *, default: int = 30, maximum: int = 100
) -> tuple[list[Any], dict[str, str]]:
    """Slice ``items`` by ``page``/``per_page`` and build GitHub's ``Link`` header."""
    try:
        per_page = int(request.query.get("per_page", default))
    except ValueError:
        per_page = default
    per_page = max(1, min(per_page, maximum))
    try:
        page = max(1, int(request.query.get("page", 1)))
    except ValueError:
        page = 1
    last = max(1, -(-len(items) // per_page))
    chunk = items[(page - 1) * per_page : page * per_page]
    fake = _fake(request)
    base = fake.root_url + request.path

    def link(p: int) -> str:
        query = dict(request.query)
        query["page"] = str(p)
        if "per_page" in request.query:
            query["per_page"] = str(per_page)
        return f"<{base}?{urlencode(query)}>"

    links = []
    if page < last:
        links += [f'{link(page + 1)}; rel="next"', f'{link(last)}; rel="last"']
    if page > 1:
        links += [f'{link(1)}; rel="first"', f'{link(min(page - 1, last))}; rel="prev"']
    return chunk, ({"Link": ", ".join(links)} if links else {})


def _invalid(detail: str) -> ApiError:
    """GitHub's JSON-schema validation failure (422 without an ``errors`` list)."""
    return ApiError(422, f"Invalid request.\n\n{detail}", documentation_url=DOCS_CHECKS)


def _resolve(repo: Repo, ref: str) -> Commit:
    commit = repo.resolve(ref)
    if commit is None:
        raise ApiError(422, f"No commit found for SHA: {ref}")
    return commit


# ---------------------------------------------------------------------------------------------
# apps and installations
# ---------------------------------------------------------------------------------------------


async def get_app(request: web.Request) -> web.Response:
    """GET /app (JWT)."""
    fake = _fake(request)
    app = _auth(request).app
    assert app is not None
    return json_response(render.app(fake, app))


async def list_installations(request: web.Request) -> web.Response:
    """GET /app/installations (JWT)."""
    fake = _fake(request)
    app = _auth(request).app
    assert app is not None
    items = [
        render.installation(fake, i) for i in fake.installations.values() if i.app_id == app.id
    ]
    page, headers = paginate(request, items)
    return json_response(page, headers=headers)


def _installation(request: web.Request) -> Any:
    fake = _fake(request)
    app = _auth(request).app
    inst = fake.installations.get(_number(request, "id"))
    if inst is None or app is None or inst.app_id != app.id:
        raise ApiError(404, "Not Found")
    return inst


async def get_installation(request: web.Request) -> web.Response:
    """GET /app/installations/{id} (JWT)."""
    return json_response(render.installation(_fake(request), _installation(request)))


async def get_repo_installation(request: web.Request) -> web.Response:
    """GET /repos/{o}/{r}/installation (JWT)."""
    fake = _fake(request)
    app = _auth(request).app
    full_name = f"{request.match_info['o']}/{request.match_info['r']}"
    for inst in fake.installations.values():
        if app is not None and inst.app_id == app.id and inst.covers(full_name):
            if full_name.lower() in fake.repos:
                return json_response(render.installation(fake, inst))
    raise ApiError(404, "Not Found")


async def create_access_token(request: web.Request) -> web.Response:
    """POST /app/installations/{id}/access_tokens (JWT) -> 201 {token, expires_at, ...}."""
    fake = _fake(request)
    inst = _installation(request)
    if inst.suspended:
        raise ApiError(403, "This installation has been suspended")
    body = _body(request)
    app = fake.apps[inst.app_id]
    token = fake.mint_token(inst.id)
    names = body.get("repositories")
    ids = body.get("repository_ids")
    selected: list[Repo] | None = None
    if names or ids:
        selected = []
        for repo in fake.repos.values():
            if not inst.covers(repo.full_name):
                continue
            if (names and repo.name in names) or (ids and repo.id in ids):
                selected.append(repo)
        if not selected:
            raise ApiError(
                422,
                "There is at least one repository that does not exist or is not "
                "accessible to the parent installation.",
            )
        token.repositories = {r.full_name for r in selected}
    permissions = body.get("permissions") or dict(app.permissions)
    data: dict[str, Any] = {
        "token": token.token,
        "expires_at": fake.clock.iso(token.expires_at),
        "permissions": permissions,
        "repository_selection": "selected" if selected is not None or inst.repositories else "all",
    }
    if selected is not None:
        data["repositories"] = [render.repository(fake, r) for r in selected]
    return json_response(data, status=201)


async def list_installation_repos(request: web.Request) -> web.Response:
    """GET /installation/repositories (token)."""
    fake = _fake(request)
    token = _auth(request).token
    assert token is not None
    inst = fake.installations[token.installation_id]
    repos = [
        render.repository(fake, r)
        for r in fake.repos.values()
        if inst.covers(r.full_name)
        and (token.repositories is None or r.full_name in token.repositories)
    ]
    page, headers = paginate(request, repos)
    return json_response({"total_count": len(repos), "repositories": page}, headers=headers)


async def revoke_installation_token(request: web.Request) -> web.Response:
    """DELETE /installation/token (token) -> 204."""
    token = _auth(request).token
    assert token is not None
    token.revoked = True
    return web.Response(status=204)


async def get_rate_limit(request: web.Request) -> web.Response:
    """GET /rate_limit (free)."""
    fake = _fake(request)
    auth: Auth = request["auth"]
    key = auth.token.token if auth.token else (f"app:{auth.app.id}" if auth.app else "anon")
    bucket = fake.rate_bucket(key)
    core = {
        "limit": bucket.limit,
        "used": bucket.used,
        "remaining": bucket.remaining,
        "reset": bucket.reset,
        "resource": "core",
    }
    return json_response({"resources": {"core": core}, "rate": core})


# ---------------------------------------------------------------------------------------------
# repositories, pulls, files
# ---------------------------------------------------------------------------------------------


async def get_repository(request: web.Request) -> web.Response:
    """GET /repos/{o}/{r}."""
    return json_response(render.repository(_fake(request), _repo(request)))


async def list_pulls(request: web.Request) -> web.Response:
    """GET /repos/{o}/{r}/pulls?state=&head=owner:ref&base=ref (newest first)."""
    fake = _fake(request)
    repo = _repo(request)
    state = request.query.get("state", "open")
    head = request.query.get("head")
    base = request.query.get("base")
    pulls = sorted(repo.pulls(), key=lambda p: p.number, reverse=True)
    selected = []
    for pr in pulls:
        if state != "all" and pr.state != state:
            continue
        if base and pr.base_ref != base:
            continue
        if head:
            owner, _, ref = head.partition(":")
            if not ref:
                owner, ref = repo.owner, owner
            if pr.head_ref != ref or pr.head_owner.lower() != owner.lower():
                continue
        selected.append(pr)
    page, headers = paginate(request, selected)
    return json_response([render.pull_request(fake, p) for p in page], headers=headers)


def _full_diff(pr: PullRequest) -> str:
    parts = []
    for f in pr.files():
        old = f.previous_filename or f.filename
        parts.append(f"diff --git a/{old} b/{f.filename}\n")
        if f.status == "added":
            parts.append("new file mode 100644\n--- /dev/null\n")
        else:
            parts.append(f"--- a/{old}\n")
        parts.append("+++ /dev/null\n" if f.status == "removed" else f"+++ b/{f.filename}\n")
        if f.patch is not None:
            parts.append(f.patch + "\n")
        else:
            parts.append("Binary files differ\n")
    return "".join(parts)


async def get_pull(request: web.Request) -> web.Response:
    """GET /repos/{o}/{r}/pulls/{n} (JSON, or the whole diff with the diff media type)."""
    fake = _fake(request)
    repo = _repo(request)
    pr = _pull(request, repo)
    accept = request.headers.get("Accept", "")
    if ".diff" in accept or ".patch" in accept:
        media = (
            "application/vnd.github.diff" if ".diff" in accept else "application/vnd.github.patch"
        )
        return web.Response(
            body=_full_diff(pr).encode(), headers={"Content-Type": f"{media}; charset=utf-8"}
        )
    return json_response(render.pull_request(fake, pr))


async def list_pull_files(request: web.Request) -> web.Response:
    """GET /repos/{o}/{r}/pulls/{n}/files: 30 per page by default, 100 max, 3000 files at most."""
    fake = _fake(request)
    repo = _repo(request)
    pr = _pull(request, repo)
    files = pr.files()[:MAX_PR_FILES]
    page, headers = paginate(request, files)
    return json_response(
        [render.diff_entry(fake, repo, pr.head_sha, f) for f in page], headers=headers
    )


async def list_pull_commits(request: web.Request) -> web.Response:
    """GET /repos/{o}/{r}/pulls/{n}/commits (oldest first, 250 max)."""
    fake = _fake(request)
    repo = _repo(request)
    pr = _pull(request, repo)
    commits = [repo.objects[s] for s in pr.commit_shas()][:250]
    page, headers = paginate(request, commits)
    return json_response([render.commit(fake, repo, c) for c in page], headers=headers)


async def list_commit_pulls(request: web.Request) -> web.Response:
    """GET /repos/{o}/{r}/commits/{sha}/pulls: PRs containing the commit (head or history)."""
    fake = _fake(request)
    repo = _repo(request)
    sha = request.match_info["sha"]
    commit = repo.resolve(sha)
    if commit is None:
        raise ApiError(422, f"No commit found for SHA: {sha}")
    pulls = [p for p in repo.pulls() if commit.sha == p.head_sha or commit.sha in p.commit_shas()]
    pulls.sort(key=lambda p: p.number, reverse=True)
    page, headers = paginate(request, pulls)
    return json_response([render.pull_request(fake, p) for p in page], headers=headers)


async def get_commit(request: web.Request) -> web.Response:
    """GET /repos/{o}/{r}/commits/{ref}: the commit with its files (diff to first parent)."""
    from .gitdata import diff_commits

    fake = _fake(request)
    repo = _repo(request)
    commit = _resolve(repo, request.match_info["ref"])
    data = render.commit(fake, repo, commit)
    parent = repo.objects[commit.parents[0]] if commit.parents else None
    empty = Commit("", {}, [], "", "", "")
    files = diff_commits(parent or empty, commit)
    data["files"] = [render.diff_entry(fake, repo, commit.sha, f) for f in files[:300]]
    data["stats"] = {
        "additions": sum(f.additions for f in files),
        "deletions": sum(f.deletions for f in files),
        "total": sum(f.changes for f in files),
    }
    return json_response(data)


async def compare_commits(request: web.Request) -> web.Response:
    """GET /repos/{o}/{r}/compare/{base}...{head}: three-dot comparison with files."""
    from .gitdata import diff_commits

    fake = _fake(request)
    repo = _repo(request)
    base_ref, sep, head_ref = request.match_info["spec"].partition("...")
    if not sep:
        raise ApiError(404, "Not Found")
    base, head = repo.resolve(base_ref), repo.resolve(head_ref)
    if base is None or head is None:
        raise ApiError(404, "Not Found")
    probe = PullRequest(0, repo, "", "", "", base_sha=base.sha, head_sha=head.sha)
    merge_base = repo.objects[probe.merge_base()]
    ahead = [repo.objects[s] for s in probe.commit_shas()]
    behind = PullRequest(0, repo, "", "", "", base_sha=head.sha, head_sha=base.sha).commit_shas()
    files = diff_commits(merge_base, head)
    status = (
        "identical"
        if base.sha == head.sha
        else ("ahead" if not behind else ("behind" if not ahead else "diverged"))
    )
    return json_response(
        {
            "url": f"{fake.url}/repos/{repo.full_name}/compare/{base_ref}...{head_ref}",
            "status": status,
            "ahead_by": len(ahead),
            "behind_by": len(behind),
            "total_commits": len(ahead),
            "base_commit": render.commit(fake, repo, base),
            "merge_base_commit": render.commit(fake, repo, merge_base),
            "commits": [render.commit(fake, repo, c) for c in ahead[:250]],
            "files": [render.diff_entry(fake, repo, head.sha, f) for f in files[:300]],
        }
    )


async def get_user(request: web.Request) -> web.Response:
    """GET /users/{login} (e.g. to learn the id of ``<slug>[bot]``)."""
    return json_response(render.user(_fake(request), request.match_info["login"]))


# ---------------------------------------------------------------------------------------------
# contents, blobs, trees
# ---------------------------------------------------------------------------------------------


async def get_contents(request: web.Request) -> web.Response:
    """GET /repos/{o}/{r}/contents/{path}?ref=: file JSON (base64), raw bytes, or a directory."""
    fake = _fake(request)
    repo = _repo(request)
    ref = request.query.get("ref") or repo.default_branch
    commit = repo.resolve(ref)
    if commit is None:
        raise ApiError(404, f"No commit found for the ref {ref}")
    path = request.match_info["path"].strip("/")
    entry = commit.entries.get(path)
    if entry is not None:
        if _accepts_raw(request) and entry.content is not None:
            if entry.size > 100 * 1024 * 1024:
                raise ApiError(403, "This API returns blobs up to 100 MB in size.")
            return _raw_response(entry.content, request)
        if entry.size > JSON_CONTENT_LIMIT and entry.mode not in ("120000", "160000"):
            raise ApiError(
                403,
                "This API returns blobs up to 1 MB in size. The requested blob is too large to "
                "fetch via the API, but you can use the Git Data API to request blobs up to 100 MB "
                "in size.",
                errors=[{"resource": "Blob", "field": "data", "code": "too_large"}],
                documentation_url="https://docs.github.com/rest/repos/contents#get-repository-content",
            )
        return json_response(render.content_file(fake, repo, ref, entry, with_content=True))
    prefix = path + "/" if path else ""
    listing: dict[str, dict[str, Any]] = {}
    for p, e in sorted(commit.entries.items()):
        if not p.startswith(prefix):
            continue
        rest = p[len(prefix) :]
        if "/" in rest:
            name = rest.split("/", 1)[0]
            sub = prefix + name
            tree_sha = commit.trees[sub].sha
            api = f"{fake.url}/repos/{repo.full_name}"
            listing.setdefault(
                name,
                {
                    "type": "dir",
                    "size": 0,
                    "name": name,
                    "path": sub,
                    "sha": tree_sha,
                    "url": f"{api}/contents/{sub}?ref={ref}",
                    "git_url": f"{api}/git/trees/{tree_sha}",
                    "html_url": f"{fake.html_url}/{repo.full_name}/tree/{ref}/{sub}",
                    "download_url": None,
                },
            )
        else:
            listing[rest] = render.content_file(fake, repo, ref, e, with_content=False)
    if not listing:
        raise ApiError(
            404,
            "Not Found",
            documentation_url="https://docs.github.com/rest/repos/contents#get-repository-content",
        )
    return json_response(list(listing.values())[:1000])


async def get_blob(request: web.Request) -> web.Response:
    """GET /repos/{o}/{r}/git/blobs/{sha}: base64 JSON, or raw bytes with the raw media type."""
    fake = _fake(request)
    repo = _repo(request)
    sha = request.match_info["sha"]
    content = repo.blobs.get(sha)
    if content is None:
        raise ApiError(404, "Not Found")
    if _accepts_raw(request):
        return _raw_response(content, request)
    return json_response(
        {
            "sha": sha,
            "node_id": f"B_{sha[:12]}",
            "size": len(content),
            "url": f"{fake.url}/repos/{repo.full_name}/git/blobs/{sha}",
            "content": render.b64_lines(content),
            "encoding": "base64",
        }
    )


async def get_tree(request: web.Request) -> web.Response:
    """GET /repos/{o}/{r}/git/trees/{sha}[?recursive=...] for a tree sha, commit sha or branch.

    As on GitHub, *any* value of ``recursive`` (even ``0``) makes the listing recursive.
    """
    fake = _fake(request)
    repo = _repo(request)
    ref = request.match_info["sha"]
    commit = repo.resolve(ref)
    directory = ""
    if commit is None:
        for candidate in repo.objects.values():
            found = next((d for d, node in candidate.trees.items() if node.sha == ref), None)
            if found is not None:
                commit, directory = candidate, found
                break
    if commit is None:
        raise ApiError(404, "Not Found")
    recursive = "recursive" in request.query
    api = f"{fake.url}/repos/{repo.full_name}"
    root = commit.trees[directory]
    prefix = directory + "/" if directory else ""
    tree: list[dict[str, Any]] = []

    def add_dir(dir_path: str) -> None:
        node = commit.trees[dir_path]
        for name, mode, kind, sha in node.children:
            full = f"{dir_path}/{name}" if dir_path else name
            item: dict[str, Any] = {
                "path": full[len(prefix) :],
                "mode": mode,
                "type": kind,
                "sha": sha,
            }
            if kind == "blob":
                item["size"] = commit.entries[full].size
                item["url"] = f"{api}/git/blobs/{sha}"
            elif kind == "tree":
                item["url"] = f"{api}/git/trees/{sha}"
            tree.append(item)
            if kind == "tree" and recursive:
                add_dir(full)

    add_dir(directory)
    return json_response(
        {"sha": root.sha, "url": f"{api}/git/trees/{root.sha}", "tree": tree, "truncated": False}
    )


# ---------------------------------------------------------------------------------------------
# check runs
# ---------------------------------------------------------------------------------------------


def _check_len(value: Any, name: str, maximum: int) -> None:
    if value is not None and not isinstance(value, str):
        raise _invalid(f"For 'properties/{name}', {value!r} is not a string.")
    if isinstance(value, str) and len(value) > maximum:
        raise _invalid(
            f"For 'properties/{name}', \"{value[:20]}...\" is too long ({len(value)} chars, "
            f"maximum is {maximum})."
        )


def _validate_annotation(a: Any) -> None:
    if not isinstance(a, dict):
        raise _invalid("For 'items', annotations must be objects.")
    for key in ("path", "start_line", "end_line", "annotation_level", "message"):
        if a.get(key) is None:
            raise _invalid(f'"{key}" wasn\'t supplied.')
    for key in ("start_line", "end_line"):
        if not isinstance(a[key], int) or a[key] < 1:
            raise _invalid(f"For 'properties/{key}', {a[key]!r} is not a positive integer.")
    if a["end_line"] < a["start_line"]:
        raise _invalid("For 'properties/end_line', end_line must not be before start_line.")
    if a["annotation_level"] not in ANNOTATION_LEVELS:
        raise _invalid(
            f"For 'properties/annotation_level', {a['annotation_level']!r} is not one of "
            f"{list(ANNOTATION_LEVELS)}."
        )
    if (a.get("start_column") is not None or a.get("end_column") is not None) and a[
        "start_line"
    ] != a["end_line"]:
        raise _invalid(
            "start_column and end_column may only be given when start_line and end_line are equal."
        )
    _check_len(a["message"], "message", 64 * 1024)
    _check_len(a.get("raw_details"), "raw_details", 64 * 1024)
    _check_len(a.get("title"), "title", 255)


def _validate_check_body(body: dict[str, Any], run: CheckRun | None) -> None:
    """Apply GitHub's create/update check run schema; raise 422 like GitHub on violations."""
    if run is None:
        for key in ("name", "head_sha"):
            if not body.get(key):
                raise _invalid(f'"{key}" wasn\'t supplied.')
    elif "head_sha" in body and body["head_sha"] != run.head_sha:
        raise _invalid("For 'properties/head_sha', a check run's head_sha cannot be changed.")
    status = body.get("status")
    if status is not None and status not in CHECK_STATUSES:
        raise _invalid(f"For 'properties/status', {status!r} is not one of {list(CHECK_STATUSES)}.")
    conclusion = body.get("conclusion")
    if conclusion is not None and conclusion not in CHECK_CONCLUSIONS:
        raise _invalid(
            f"For 'properties/conclusion', {conclusion!r} is not one of {list(CHECK_CONCLUSIONS)}."
        )
    if (status == "completed" or body.get("completed_at")) and conclusion is None:
        raise _invalid('"conclusion" wasn\'t supplied.')
    output = body.get("output")
    if output is not None:
        if not isinstance(output, dict):
            raise _invalid("For 'properties/output', it is not an object.")
        for key in ("title", "summary"):
            if not isinstance(output.get(key), str):
                raise _invalid(f'"{key}" wasn\'t supplied.')
        _check_len(output.get("summary"), "summary", CHECK_TEXT_MAX)
        _check_len(output.get("text"), "text", CHECK_TEXT_MAX)
        annotations = output.get("annotations") or []
        if not isinstance(annotations, list):
            raise _invalid("For 'properties/annotations', it is not an array.")
        if len(annotations) > ANNOTATIONS_PER_REQUEST:
            raise _invalid(
                f"For 'properties/annotations', {len(annotations)} items is more than the maximum "
                f"of {ANNOTATIONS_PER_REQUEST}."
            )
        for a in annotations:
            _validate_annotation(a)
        for image in output.get("images") or []:
            if not isinstance(image, dict) or not image.get("alt") or not image.get("image_url"):
                raise _invalid('"alt" and "image_url" are required for images.')
    actions = body.get("actions")
    if actions is not None:
        if not isinstance(actions, list) or len(actions) > 3:
            raise _invalid("For 'properties/actions', at most 3 actions are allowed.")
        for action in actions:
            if not isinstance(action, dict):
                raise _invalid("For 'items', actions must be objects.")
            for key, limit in (("label", 20), ("description", 40), ("identifier", 20)):
                if not isinstance(action.get(key), str) or not action[key]:
                    raise _invalid(f'"{key}" wasn\'t supplied.')
                _check_len(action[key], key, limit)


def _apply_check_body(fake: FakeGitHub, run: CheckRun, body: dict[str, Any]) -> None:
    for key in ("name", "external_id", "details_url", "started_at", "completed_at"):
        if key in body:
            setattr(run, key, body[key])
    if "status" in body:
        run.status = body["status"]
        if run.status == "in_progress" and not run.started_at:
            run.started_at = fake.now_iso()
        if run.status != "completed":
            run.conclusion, run.completed_at = None, None
    if body.get("conclusion") is not None:
        run.conclusion = body["conclusion"]
        run.status = "completed"  # giving a conclusion completes the run
        run.completed_at = body.get("completed_at") or run.completed_at or fake.now_iso()
    output = body.get("output")
    if output is not None:
        for key in ("title", "summary", "text"):
            if key in output:
                run.output[key] = output[key]
        run.annotations.extend(dict(a) for a in output.get("annotations") or [])
        run.images.extend(dict(i) for i in output.get("images") or [])
    if "actions" in body:
        run.actions = list(body["actions"])
    run.history.append(body)


async def create_check_run(request: web.Request) -> web.Response:
    """POST /repos/{o}/{r}/check-runs -> 201."""
    fake = _fake(request)
    repo = _repo(request)
    auth = _auth(request)
    body = _body(request)
    _validate_check_body(body, None)
    commit = _resolve(repo, body["head_sha"])
    app_id = auth.app_id
    assert app_id is not None
    suite_key = (repo.full_name, app_id, commit.sha)
    suite_id = fake.check_suites.setdefault(suite_key, fake.next_id())
    run = CheckRun(
        id=fake.next_id(),
        repo=repo.full_name,
        app_id=app_id,
        name=body["name"],
        head_sha=commit.sha,
        check_suite_id=suite_id,
        started_at=fake.now_iso(),
    )
    _apply_check_body(fake, run, {k: v for k, v in body.items() if k != "head_sha"})
    run.history[-1] = body
    fake.check_runs[run.id] = run
    return json_response(render.check_run(fake, run), status=201)


def _check_run(request: web.Request, repo: Repo) -> CheckRun:
    run = _fake(request).check_runs.get(_number(request, "id"))
    if run is None or run.repo != repo.full_name:
        raise ApiError(404, "Not Found")
    return run


async def update_check_run(request: web.Request) -> web.Response:
    """PATCH /repos/{o}/{r}/check-runs/{id}: annotations and images append."""
    fake = _fake(request)
    repo = _repo(request)
    run = _check_run(request, repo)
    if _auth(request).app_id != run.app_id:
        raise ApiError(
            403,
            "Invalid app_id - check run can only be modified by the GitHub App that created it.",
        )
    body = _body(request)
    _validate_check_body(body, run)
    _apply_check_body(fake, run, body)
    return json_response(render.check_run(fake, run))


async def get_check_run(request: web.Request) -> web.Response:
    """GET /repos/{o}/{r}/check-runs/{id}."""
    repo = _repo(request)
    return json_response(render.check_run(_fake(request), _check_run(request, repo)))


async def list_annotations(request: web.Request) -> web.Response:
    """GET /repos/{o}/{r}/check-runs/{id}/annotations (paginated)."""
    fake = _fake(request)
    repo = _repo(request)
    run = _check_run(request, repo)
    page, headers = paginate(request, run.annotations)
    return json_response([render.annotation(fake, run, a) for a in page], headers=headers)


async def list_check_runs_for_ref(request: web.Request) -> web.Response:
    """GET /repos/{o}/{r}/commits/{ref}/check-runs -> {total_count, check_runs}."""
    fake = _fake(request)
    repo = _repo(request)
    commit = repo.resolve(request.match_info["ref"])
    if commit is None:
        raise ApiError(422, f"No commit found for SHA: {request.match_info['ref']}")
    runs = fake.runs_for(commit.sha, repo=repo)
    name = request.query.get("check_name")
    status = request.query.get("status")
    app_id = request.query.get("app_id")
    runs = [
        r
        for r in runs
        if (name is None or r.name == name)
        and (status is None or r.status == status)
        and (app_id is None or str(r.app_id) == app_id)
    ]
    if request.query.get("filter", "latest") == "latest":
        latest: dict[tuple[int, str], CheckRun] = {}
        for run in runs:
            latest[(run.app_id, run.name)] = run
        runs = list(latest.values())
    runs.sort(key=lambda r: r.id, reverse=True)
    page, headers = paginate(request, runs)
    return json_response(
        {"total_count": len(runs), "check_runs": [render.check_run(fake, r) for r in page]},
        headers=headers,
    )


# ---------------------------------------------------------------------------------------------
# reviews and review comments
# ---------------------------------------------------------------------------------------------


def _review_error(message: str) -> ApiError:
    """The reviews endpoint's 422: ``errors`` is a list of *strings*."""
    return ApiError(422, "Unprocessable Entity", errors=[message], documentation_url=DOCS_REVIEWS)


def _anchor(pr: PullRequest, comment: dict[str, Any]) -> tuple[FileDiff, Hunk, str, int, int]:
    """Check one review comment against the PR's diff; return (file, hunk, side, line, position)."""
    path = comment.get("path")
    if not isinstance(path, str) or not path:
        raise _review_error("Pull request review thread path can't be blank")
    if not isinstance(comment.get("body"), str) or not comment["body"]:
        raise _review_error("Pull request review thread body can't be blank")
    diff = pr.file(path)
    if diff is None:
        raise _review_error("Path could not be resolved")
    if diff.patch is None:
        raise _review_error("Pull request review thread diff hunk can't be blank")
    hunks = diff.hunks()
    side = comment.get("side") or "RIGHT"
    if side not in ("LEFT", "RIGHT"):
        raise _review_error("Pull request review thread side must be LEFT or RIGHT")
    line = comment.get("line")
    if line is None and comment.get("position") is not None:
        for hunk in hunks:
            for position, pos_side, pos_line in hunk.positions:
                if position == comment["position"]:
                    side, line = pos_side, pos_line
        if line is None:
            raise _review_error("Pull request review thread position is invalid")
    if not isinstance(line, int):
        raise _review_error("Pull request review thread line must be part of the diff")
    found = next((h for h in hunks if line in (h.right if side == "RIGHT" else h.left)), None)
    if found is None:
        raise _review_error("Pull request review thread line must be part of the diff")
    hunk = found
    start_line = comment.get("start_line")
    if start_line is not None:
        start_side = comment.get("start_side") or side
        if not isinstance(start_line, int) or start_line >= line:
            raise _review_error("Pull request review thread start line must precede the end line")
        if start_line not in (hunk.right if start_side == "RIGHT" else hunk.left):
            raise _review_error(
                "Pull request review thread start line must be part of the same hunk as the line"
            )
    position = next(p for p, s, n in hunk.positions if s == side and n == line)
    return diff, hunk, side, line, position


def _diff_hunk(patch: str, hunk: Hunk, position: int) -> str:
    lines = patch.split("\n")
    header = hunk.positions[0][0] - 1
    return "\n".join(lines[header : position + 1])


async def create_review(request: web.Request) -> web.Response:
    """POST /repos/{o}/{r}/pulls/{n}/reviews: all comments must anchor in the diff, or 422."""
    fake = _fake(request)
    repo = _repo(request)
    pr = _pull(request, repo)
    auth = _auth(request)
    body = _body(request)
    event = body.get("event")
    if event is not None and event not in REVIEW_EVENTS:
        raise _review_error(f'Event "{event}" is not one of APPROVE, REQUEST_CHANGES, COMMENT')
    comments = body.get("comments") or []
    review_body = body.get("body") or ""
    if event == "REQUEST_CHANGES" and not review_body:
        raise _review_error("Body can't be blank")
    if event == "COMMENT" and not review_body and not comments:
        raise _review_error("Body can't be blank")
    commit_id = body.get("commit_id") or pr.head_sha
    if commit_id not in repo.objects:
        raise _review_error("Commit ID is not part of the pull request")
    user = _bot(fake, auth)
    if event == "APPROVE" and user == pr.user:
        raise _review_error("Can not approve your own pull request")
    anchors = [_anchor(pr, c) for c in comments]  # any failure: nothing is stored
    now = fake.now_iso()
    review = Review(
        id=fake.next_id(),
        repo=repo.full_name,
        pull_number=pr.number,
        user=user,
        body=review_body,
        state=REVIEW_EVENTS.get(event or "", "PENDING"),
        commit_id=commit_id,
        submitted_at=now if event else None,
    )
    for comment, (diff, hunk, side, line, position) in zip(comments, anchors, strict=True):
        assert diff.patch is not None
        rc = ReviewComment(
            id=fake.next_id(),
            repo=repo.full_name,
            pull_number=pr.number,
            review_id=review.id,
            user=user,
            body=comment["body"],
            path=diff.filename,
            line=line,
            side=side,
            start_line=comment.get("start_line"),
            start_side=(comment.get("start_side") or side) if comment.get("start_line") else None,
            original_line=line,
            commit_id=commit_id,
            original_commit_id=commit_id,
            diff_hunk=_diff_hunk(diff.patch, hunk, position),
            position=position,
            created_at=now,
            updated_at=now,
        )
        fake.review_comments[rc.id] = rc
        review.comment_ids.append(rc.id)
    fake.reviews[review.id] = review
    return json_response(render.review(fake, review))


async def list_reviews(request: web.Request) -> web.Response:
    """GET /repos/{o}/{r}/pulls/{n}/reviews (paginated, oldest first)."""
    fake = _fake(request)
    repo = _repo(request)
    pr = _pull(request, repo)
    page, headers = paginate(request, fake.reviews_of(pr))
    return json_response([render.review(fake, r) for r in page], headers=headers)


async def get_review(request: web.Request) -> web.Response:
    """GET /repos/{o}/{r}/pulls/{n}/reviews/{id}."""
    fake = _fake(request)
    repo = _repo(request)
    pr = _pull(request, repo)
    review = fake.reviews.get(_number(request, "id"))
    if review is None or review.repo != repo.full_name or review.pull_number != pr.number:
        raise ApiError(404, "Not Found")
    return json_response(render.review(fake, review))


async def list_review_comments(request: web.Request) -> web.Response:
    """GET /repos/{o}/{r}/pulls/{n}/comments (paginated, oldest first)."""
    fake = _fake(request)
    repo = _repo(request)
    pr = _pull(request, repo)
    page, headers = paginate(request, fake.review_comments_of(pr))
    return json_response([render.review_comment(fake, c) for c in page], headers=headers)


def _review_comment(request: web.Request, repo: Repo) -> ReviewComment:
    comment = _fake(request).review_comments.get(_number(request, "id"))
    if comment is None or comment.repo != repo.full_name:
        raise ApiError(404, "Not Found")
    return comment


async def get_review_comment(request: web.Request) -> web.Response:
    """GET /repos/{o}/{r}/pulls/comments/{id}."""
    repo = _repo(request)
    return json_response(render.review_comment(_fake(request), _review_comment(request, repo)))


async def update_review_comment(request: web.Request) -> web.Response:
    """PATCH /repos/{o}/{r}/pulls/comments/{id} {body}."""
    fake = _fake(request)
    repo = _repo(request)
    comment = _review_comment(request, repo)
    body = _body(request)
    if not isinstance(body.get("body"), str) or not body["body"]:
        raise ApiError(
            422,
            "Validation Failed",
            errors=[
                {"resource": "PullRequestReviewComment", "code": "missing_field", "field": "body"}
            ],
        )
    comment.body = body["body"]
    comment.updated_at = fake.now_iso()
    return json_response(render.review_comment(fake, comment))


async def delete_review_comment(request: web.Request) -> web.Response:
    """DELETE /repos/{o}/{r}/pulls/comments/{id} -> 204."""
    fake = _fake(request)
    repo = _repo(request)
    comment = _review_comment(request, repo)
    del fake.review_comments[comment.id]
    return web.Response(status=204)


# ---------------------------------------------------------------------------------------------
# issues, issue comments, reactions, permissions
# ---------------------------------------------------------------------------------------------


async def get_issue(request: web.Request) -> web.Response:
    """GET /repos/{o}/{r}/issues/{n} (pull requests are issues too)."""
    fake = _fake(request)
    repo = _repo(request)
    issue = repo.issues.get(_number(request))
    if issue is None:
        raise ApiError(404, "Not Found")
    return json_response(render.issue(fake, issue))


def _validate_comment_body(body: dict[str, Any]) -> str:
    text = body.get("body")
    if not isinstance(text, str) or not text:
        raise ApiError(
            422,
            "Validation Failed",
            errors=[{"resource": "IssueComment", "code": "missing_field", "field": "body"}],
        )
    if len(text) > ISSUE_COMMENT_MAX:
        raise ApiError(
            422,
            "Validation Failed",
            errors=[
                {
                    "resource": "IssueComment",
                    "code": "custom",
                    "field": "body",
                    "message": f"body is too long (maximum is {ISSUE_COMMENT_MAX} characters)",
                }
            ],
        )
    return text


async def create_issue_comment(request: web.Request) -> web.Response:
    """POST /repos/{o}/{r}/issues/{n}/comments -> 201 (422 when the body exceeds 65536 chars)."""
    fake = _fake(request)
    repo = _repo(request)
    auth = _auth(request)
    issue = repo.issues.get(_number(request))
    if issue is None:
        raise ApiError(404, "Not Found")
    text = _validate_comment_body(_body(request))
    comment = fake.add_issue_comment(
        repo, issue.number, text, user=_bot(fake, auth), app_id=auth.app_id
    )
    return json_response(render.issue_comment(fake, comment), status=201)


async def list_issue_comments(request: web.Request) -> web.Response:
    """GET /repos/{o}/{r}/issues/{n}/comments (paginated, oldest first)."""
    fake = _fake(request)
    repo = _repo(request)
    issue = repo.issues.get(_number(request))
    if issue is None:
        raise ApiError(404, "Not Found")
    page, headers = paginate(request, fake.issue_comments_of(issue))
    return json_response([render.issue_comment(fake, c) for c in page], headers=headers)


def _issue_comment(request: web.Request, repo: Repo) -> IssueComment:
    comment = _fake(request).issue_comments.get(_number(request, "id"))
    if comment is None or comment.repo != repo.full_name:
        raise ApiError(404, "Not Found")
    return comment


async def get_issue_comment(request: web.Request) -> web.Response:
    """GET /repos/{o}/{r}/issues/comments/{id}."""
    repo = _repo(request)
    return json_response(render.issue_comment(_fake(request), _issue_comment(request, repo)))


async def update_issue_comment(request: web.Request) -> web.Response:
    """PATCH /repos/{o}/{r}/issues/comments/{id} {body}."""
    fake = _fake(request)
    repo = _repo(request)
    comment = _issue_comment(request, repo)
    comment.body = _validate_comment_body(_body(request))
    comment.updated_at = fake.now_iso()
    return json_response(render.issue_comment(fake, comment))


async def delete_issue_comment(request: web.Request) -> web.Response:
    """DELETE /repos/{o}/{r}/issues/comments/{id} -> 204."""
    fake = _fake(request)
    repo = _repo(request)
    comment = _issue_comment(request, repo)
    del fake.issue_comments[comment.id]
    return web.Response(status=204)


async def _create_reaction(request: web.Request, kind: str, subject_id: int) -> web.Response:
    fake = _fake(request)
    content = _body(request).get("content")
    if content not in REACTIONS:
        raise ApiError(
            422,
            "Validation Failed",
            errors=[
                {
                    "resource": "Reaction",
                    "code": "custom",
                    "field": "content",
                    "message": "content is not included in the list",
                }
            ],
        )
    user = _bot(fake, _auth(request))
    for existing in fake.reactions.values():
        if (
            existing.subject == (kind, subject_id)
            and existing.user == user
            and existing.content == content
        ):
            return json_response(render.reaction(fake, existing), status=200)
    reaction = Reaction(fake.next_id(), (kind, subject_id), user, content, fake.now_iso())
    fake.reactions[reaction.id] = reaction
    return json_response(render.reaction(fake, reaction), status=201)


async def create_issue_comment_reaction(request: web.Request) -> web.Response:
    """POST /repos/{o}/{r}/issues/comments/{id}/reactions: 201 created, 200 if it exists."""
    repo = _repo(request)
    comment = _issue_comment(request, repo)
    return await _create_reaction(request, "issue_comment", comment.id)


async def create_review_comment_reaction(request: web.Request) -> web.Response:
    """POST /repos/{o}/{r}/pulls/comments/{id}/reactions: 201 created, 200 if it exists."""
    repo = _repo(request)
    comment = _review_comment(request, repo)
    return await _create_reaction(request, "review_comment", comment.id)


async def list_issue_comment_reactions(request: web.Request) -> web.Response:
    """GET /repos/{o}/{r}/issues/comments/{id}/reactions."""
    fake = _fake(request)
    repo = _repo(request)
    comment = _issue_comment(request, repo)
    items = [
        r
        for r in fake.reactions_on(comment.id)
        if request.query.get("content") in (None, r.content)
    ]
    page, headers = paginate(request, items)
    return json_response([render.reaction(fake, r) for r in page], headers=headers)


async def get_permission(request: web.Request) -> web.Response:
    """GET /repos/{o}/{r}/collaborators/{user}/permission."""
    fake = _fake(request)
    repo = _repo(request)
    return json_response(render.permission(fake, repo, request.match_info["user"]))


# ---------------------------------------------------------------------------------------------
# the app's webhook delivery log
# ---------------------------------------------------------------------------------------------


def _delivery_json(d: Any, *, full: bool = False) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": d.id,
        "guid": d.guid,
        "delivered_at": d.delivered_at,
        "redelivery": d.redelivery,
        "duration": 0.05,
        "status": d.status,
        "status_code": d.status_code,
        "event": d.event,
        "action": d.action,
        "installation_id": d.installation_id,
        "repository_id": d.repository_id,
        "throttled_at": None,
    }
    if full:
        item["request"] = {"headers": d.headers, "payload": json.loads(d.body or b"{}")}
        item["response"] = {"headers": {}, "payload": None}
    return item


async def list_hook_deliveries(request: web.Request) -> web.Response:
    """GET /app/hook/deliveries (JWT): newest first, paginated by `cursor` like GitHub."""
    fake = _fake(request)
    try:
        per_page = max(1, min(int(request.query.get("per_page", 30)), 100))
    except ValueError:
        per_page = 30
    items = sorted(fake.hook_deliveries, key=lambda d: d.id, reverse=True)
    cursor = request.query.get("cursor")
    if cursor:
        if not cursor.isdigit():
            raise ApiError(422, "Invalid cursor")
        items = [d for d in items if d.id < int(cursor)]
    page = items[:per_page]
    headers = {}
    if len(items) > per_page:
        query = {"per_page": str(per_page), "cursor": str(page[-1].id)}
        headers["Link"] = f'<{fake.root_url + request.path}?{urlencode(query)}>; rel="next"'
    return json_response([_delivery_json(d) for d in page], headers=headers)


def _hook_delivery(request: web.Request) -> Any:
    wanted = _number(request, "id")
    for delivery in _fake(request).hook_deliveries:
        if delivery.id == wanted:
            return delivery
    raise ApiError(404, "Not Found")


async def get_hook_delivery(request: web.Request) -> web.Response:
    """GET /app/hook/deliveries/{id} (JWT)."""
    return json_response(_delivery_json(_hook_delivery(request), full=True))


async def redeliver_hook_delivery(request: web.Request) -> web.Response:
    """POST /app/hook/deliveries/{id}/attempts (JWT): 202, then the payload goes out again
    with the same guid, and the attempt is logged with `redelivery: true`."""
    fake = _fake(request)
    original = _hook_delivery(request)
    if fake.webhook_url is None:
        raise ApiError(422, "The app has no webhook URL")
    fake.redelivery_requests.append(original.id)
    task = asyncio.get_running_loop().create_task(_redeliver(fake, original))
    fake.background.add(task)
    task.add_done_callback(fake.background.discard)
    return json_response({}, status=202)


async def _redeliver(fake: Any, original: Any) -> None:
    import aiohttp

    status = 0
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(
                fake.webhook_url, data=original.body, headers=original.headers
            ) as response:
                status = response.status
    except aiohttp.ClientError:
        status = 0
    fake.log_delivery(
        original.guid, original.event, original.body, original.headers, status, redelivery=True
    )


REPO = "/repos/{o}/{r}"


#: (method, template, handler, auth)
# ---------------------------------------------------------------------------------------------
# registering an app from a manifest (GITHUB-2.md s.4)
# ---------------------------------------------------------------------------------------------


async def new_app_from_manifest(request: web.Request) -> web.Response:
    """The web page's "Create GitHub App" (confirmed at once): 302 to ``redirect_url`` with a
    one-time ``code`` and the ``state`` of the form's query string."""
    fake = _fake(request)
    form = await request.post()
    owner = request.match_info.get("org") or "octocat"
    if request.match_info.get("org") and owner not in fake.organizations:
        raise web.HTTPNotFound(text="organization not found\n")
    try:
        manifest = json.loads(str(form.get("manifest", "")))
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict):
        raise web.HTTPUnprocessableEntity(text="manifest: not a JSON object\n")
    hook = manifest.get("hook_attributes")
    if not manifest.get("url") or not isinstance(hook, dict) or not hook.get("url"):
        raise web.HTTPUnprocessableEntity(
            text="manifest: url and hook_attributes.url are required\n"
        )
    redirect = str(manifest.get("redirect_url") or "")
    if not redirect.startswith(("http://", "https://")):
        raise web.HTTPUnprocessableEntity(text="manifest: redirect_url is required here\n")
    code = secrets.token_hex(10)
    fake.manifest_codes[code] = ManifestRegistration(manifest, owner, fake.clock.now())
    query = {"code": code}
    if "state" in request.query:
        query["state"] = request.query["state"]
    raise web.HTTPFound(f"{redirect}{'&' if '?' in redirect else '?'}{urlencode(query)}")


async def convert_manifest(request: web.Request) -> web.Response:
    """``POST /app-manifests/{code}/conversions``: the app's id, pem and webhook secret, once."""
    fake = _fake(request)
    registration = fake.manifest_codes.get(request.match_info["code"])
    if (
        registration is None
        or registration.used
        or fake.clock.now() - registration.created_at > MANIFEST_CODE_LIFETIME
    ):
        raise ApiError(404, "Not Found")
    registration.used = True
    manifest = registration.manifest
    name = str(manifest.get("name") or "app")
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "app"
    while any(app.slug == slug for app in fake.apps.values()):
        slug += "-1"
    app = fake.add_app(slug, private_key_pem=generate_private_key_pem(), account=registration.owner)
    app.name = name
    app.owner = registration.owner
    app.permissions = dict(manifest.get("default_permissions") or {})
    app.events = list(manifest.get("default_events") or [])
    webhook_secret = secrets.token_hex(20)
    fake.registered_apps[app.id] = {"manifest": manifest, "webhook_secret": webhook_secret}
    body = {
        "id": app.id,
        "slug": app.slug,
        "node_id": f"A_{app.id}",
        "owner": {"login": registration.owner, "id": stable_id(registration.owner)},
        "name": app.name,
        "description": manifest.get("description"),
        "external_url": manifest.get("url"),
        "html_url": f"{fake.html_url}/apps/{app.slug}",
        "created_at": fake.clock.iso(),
        "updated_at": fake.clock.iso(),
        "permissions": app.permissions,
        "events": app.events,
        "installations_count": 0,
        "client_id": app.client_id,
        "client_secret": secrets.token_hex(20),
        "webhook_secret": webhook_secret,
        "pem": app.private_key_pem,
    }
    return json_response(body, status=201)


#: Web pages (not the API): served at the root also in GHES layout.
WEB_ROUTES: list[tuple[str, str, Any, str]] = [
    ("POST", "/settings/apps/new", new_app_from_manifest, "none"),
    ("POST", "/organizations/{org}/settings/apps/new", new_app_from_manifest, "none"),
]


async def create_review_reply(request: web.Request) -> web.Response:
    """POST /repos/{o}/{r}/pulls/{n}/comments/{id}/replies -> 201 (a reply to a top comment)."""
    fake = _fake(request)
    repo = _repo(request)
    pr = _pull(request, repo)
    top = fake.review_comments.get(_number(request, "id"))
    if top is None or top.repo != repo.full_name or top.pull_number != pr.number:
        raise ApiError(404, "Not Found")
    if top.in_reply_to_id is not None:
        raise ApiError(422, "Validation Failed", errors=[{"message": "in_reply_to is a reply"}])
    body = _body(request).get("body")
    if not isinstance(body, str) or not body:
        raise ApiError(422, "Validation Failed", errors=[{"field": "body", "code": "missing"}])
    reply = fake.add_review_reply(top, _bot(fake, _auth(request)), body)
    return json_response(render.review_comment(fake, reply), status=201)


ROUTES: list[tuple[str, str, Any, str]] = [
    ("POST", "/app-manifests/{code}/conversions", convert_manifest, "none"),
    ("GET", "/app", get_app, "jwt"),
    ("GET", "/app/hook/deliveries", list_hook_deliveries, "jwt"),
    ("GET", r"/app/hook/deliveries/{id:\d+}", get_hook_delivery, "jwt"),
    ("POST", r"/app/hook/deliveries/{id:\d+}/attempts", redeliver_hook_delivery, "jwt"),
    ("GET", "/app/installations", list_installations, "jwt"),
    ("GET", r"/app/installations/{id:\d+}", get_installation, "jwt"),
    ("POST", r"/app/installations/{id:\d+}/access_tokens", create_access_token, "jwt"),
    ("GET", REPO + "/installation", get_repo_installation, "jwt"),
    ("GET", "/installation/repositories", list_installation_repos, "token"),
    ("DELETE", "/installation/token", revoke_installation_token, "token"),
    ("GET", "/rate_limit", get_rate_limit, "any"),
    ("GET", "/users/{login}", get_user, "any"),
    ("GET", REPO, get_repository, "token"),
    ("GET", REPO + "/pulls", list_pulls, "token"),
    ("GET", REPO + r"/pulls/comments/{id:\d+}", get_review_comment, "token"),
    ("PATCH", REPO + r"/pulls/comments/{id:\d+}", update_review_comment, "token"),
    ("DELETE", REPO + r"/pulls/comments/{id:\d+}", delete_review_comment, "token"),
    ("POST", REPO + r"/pulls/comments/{id:\d+}/reactions", create_review_comment_reaction, "token"),
    ("GET", REPO + r"/pulls/{n:\d+}", get_pull, "token"),
    ("GET", REPO + r"/pulls/{n:\d+}/files", list_pull_files, "token"),
    ("GET", REPO + r"/pulls/{n:\d+}/commits", list_pull_commits, "token"),
    ("GET", REPO + r"/pulls/{n:\d+}/reviews", list_reviews, "token"),
    ("POST", REPO + r"/pulls/{n:\d+}/reviews", create_review, "token"),
    ("GET", REPO + r"/pulls/{n:\d+}/reviews/{id:\d+}", get_review, "token"),
    ("GET", REPO + r"/pulls/{n:\d+}/comments", list_review_comments, "token"),
    (
        "POST",
        REPO + r"/pulls/{n:\d+}/comments/{id:\d+}/replies",
        create_review_reply,
        "token",
    ),
    ("GET", REPO + "/commits/{sha}/pulls", list_commit_pulls, "token"),
    ("GET", REPO + "/commits/{ref:.+}/check-runs", list_check_runs_for_ref, "token"),
    ("GET", REPO + "/commits/{ref:.+}", get_commit, "token"),
    ("GET", REPO + "/compare/{spec:.+}", compare_commits, "token"),
    ("GET", REPO + "/contents/{path:.*}", get_contents, "token"),
    ("GET", REPO + "/git/blobs/{sha}", get_blob, "token"),
    ("GET", REPO + "/git/trees/{sha:.+}", get_tree, "token"),
    ("POST", REPO + "/check-runs", create_check_run, "token"),
    ("GET", REPO + r"/check-runs/{id:\d+}", get_check_run, "token"),
    ("PATCH", REPO + r"/check-runs/{id:\d+}", update_check_run, "token"),
    ("GET", REPO + r"/check-runs/{id:\d+}/annotations", list_annotations, "token"),
    ("GET", REPO + r"/issues/comments/{id:\d+}", get_issue_comment, "token"),
    ("PATCH", REPO + r"/issues/comments/{id:\d+}", update_issue_comment, "token"),
    ("DELETE", REPO + r"/issues/comments/{id:\d+}", delete_issue_comment, "token"),
    ("GET", REPO + r"/issues/comments/{id:\d+}/reactions", list_issue_comment_reactions, "token"),
    ("POST", REPO + r"/issues/comments/{id:\d+}/reactions", create_issue_comment_reaction, "token"),
    ("GET", REPO + r"/issues/{n:\d+}", get_issue, "token"),
    ("GET", REPO + r"/issues/{n:\d+}/comments", list_issue_comments, "token"),
    ("POST", REPO + r"/issues/{n:\d+}/comments", create_issue_comment, "token"),
    ("GET", REPO + "/collaborators/{user}/permission", get_permission, "token"),
]


def _canonical(template: str) -> str:
    """``/x/{id:\\d+}`` -> ``/x/{id}``: the form aiohttp reports and the request log uses."""
    import re

    return re.sub(r"\{(\w+):[^}]*\}", r"{\1}", template)


AUTH_BY_ROUTE: dict[tuple[str, str], str] = {
    (method, _canonical(template)): auth for method, template, _h, auth in ROUTES + WEB_ROUTES
}
#: GraphQL: `/graphql` on github.com, `/api/graphql` (outside `/api/v3`) on Enterprise Server.
AUTH_BY_ROUTE[("POST", "/graphql")] = "token"
AUTH_BY_ROUTE[("POST", "/api/graphql")] = "token"
