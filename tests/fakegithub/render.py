"""GitHub's JSON shapes for the fake's state (REST responses and webhook payload parts).

Shapes follow GitHub's REST responses and the octokit/webhooks payload examples, trimmed of
fields nothing here reads (avatars, the dozens of ``*_url`` templates beyond the common ones).
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .gitdata import Commit, Entry, FileDiff
from .state import (
    REACTIONS,
    ROLE_TO_PERMISSION,
    App,
    CheckRun,
    Installation,
    Issue,
    IssueComment,
    PullRequest,
    Reaction,
    Repo,
    Review,
    ReviewComment,
    stable_id,
)

if TYPE_CHECKING:
    from .server import FakeGitHub


def b64_lines(data: bytes) -> str:
    """Base64 wrapped at 60 characters per line, each line ending in ``\\n``, as GitHub sends it."""
    encoded = base64.b64encode(data).decode()
    return "".join(encoded[i : i + 60] + "\n" for i in range(0, len(encoded), 60))


def user(fake: FakeGitHub, login: str) -> dict[str, Any]:
    """A user object; ``x[bot]`` logins are Bots, logins of known apps' owners Organizations."""
    is_bot = login.endswith("[bot]")
    user_id = stable_id(login)
    api = f"{fake.url}/users/{quote(login)}"
    html = f"{fake.html_url}/apps/{login[:-5]}" if is_bot else f"{fake.html_url}/{login}"
    return {
        "login": login,
        "id": user_id,
        "node_id": f"U_{user_id}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{user_id}?v=4",
        "gravatar_id": "",
        "url": api,
        "html_url": html,
        "type": "Bot" if is_bot else ("Organization" if login in fake.organizations else "User"),
        "site_admin": False,
    }


def repository(fake: FakeGitHub, repo: Repo) -> dict[str, Any]:
    """A full repository object."""
    api = f"{fake.url}/repos/{repo.full_name}"
    return {
        "id": repo.id,
        "node_id": f"R_{repo.id}",
        "name": repo.name,
        "full_name": repo.full_name,
        "private": repo.private,
        "owner": user(fake, repo.owner),
        "html_url": f"{fake.html_url}/{repo.full_name}",
        "description": None,
        "fork": repo.fork_of is not None,
        "url": api,
        "pulls_url": api + "/pulls{/number}",
        "issues_url": api + "/issues{/number}",
        "issue_comment_url": api + "/issues/comments{/number}",
        "contents_url": api + "/contents/{+path}",
        "blobs_url": api + "/git/blobs{/sha}",
        "trees_url": api + "/git/trees{/sha}",
        "commits_url": api + "/commits{/sha}",
        "statuses_url": api + "/statuses/{sha}",
        "collaborators_url": api + "/collaborators{/collaborator}",
        "compare_url": api + "/compare/{base}...{head}",
        "created_at": repo.created_at,
        "updated_at": repo.created_at,
        "pushed_at": repo.created_at,
        "clone_url": f"{fake.html_url}/{repo.full_name}.git",
        "default_branch": repo.default_branch,
        "visibility": "private" if repo.private else "public",
        "archived": False,
        "disabled": False,
    }


def repo_ref(fake: FakeGitHub, repo: Repo) -> dict[str, Any]:
    """The minimal repository object inside ``check_run.pull_requests[].head.repo``."""
    return {"id": repo.id, "url": f"{fake.url}/repos/{repo.full_name}", "name": repo.name}


def app(fake: FakeGitHub, a: App) -> dict[str, Any]:
    """An app object (``GET /app``, ``check_run.app``)."""
    return {
        "id": a.id,
        "slug": a.slug,
        "client_id": a.client_id,
        "node_id": f"A_{a.id}",
        "owner": user(fake, a.owner),
        "name": a.name,
        "description": "",
        "external_url": "https://example.invalid/txaudit",
        "html_url": f"{fake.html_url}/apps/{a.slug}",
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
        "permissions": dict(a.permissions),
        "events": list(a.events),
    }


def installation(fake: FakeGitHub, inst: Installation) -> dict[str, Any]:
    """An installation object (``GET /app/installations/{id}``)."""
    a = fake.apps[inst.app_id]
    return {
        "id": inst.id,
        "account": user(fake, inst.account),
        "repository_selection": "all" if inst.repositories is None else "selected",
        "access_tokens_url": f"{fake.url}/app/installations/{inst.id}/access_tokens",
        "repositories_url": f"{fake.url}/installation/repositories",
        "html_url": f"{fake.html_url}/settings/installations/{inst.id}",
        "app_id": a.id,
        "app_slug": a.slug,
        "target_id": stable_id(inst.account),
        "target_type": "Organization",
        "permissions": dict(a.permissions),
        "events": list(a.events),
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
        "suspended_at": None,
    }


def _branch_side(
    fake: FakeGitHub, repo: Repo | None, owner: str, ref: str, sha: str
) -> dict[str, Any]:
    return {
        "label": f"{owner}:{ref}",
        "ref": ref,
        "sha": sha,
        "user": user(fake, owner),
        "repo": repository(fake, repo) if repo is not None else None,
    }


def _author_association(repo: Repo, login: str) -> str:
    if login == repo.owner:
        return "OWNER"
    if repo.role_of(login) in ("admin", "maintain", "write", "triage"):
        return "COLLABORATOR"
    return "CONTRIBUTOR"


def pull_request(fake: FakeGitHub, pr: PullRequest) -> dict[str, Any]:
    """A full pull request object (``GET /pulls/{n}`` and ``pull_request`` webhooks)."""
    repo = pr.repo
    api = f"{fake.url}/repos/{repo.full_name}"
    html = f"{fake.html_url}/{repo.full_name}/pull/{pr.number}"
    files = pr.files()
    return {
        "url": f"{api}/pulls/{pr.number}",
        "id": pr.id,
        "node_id": f"PR_{pr.id}",
        "html_url": html,
        "diff_url": html + ".diff",
        "patch_url": html + ".patch",
        "issue_url": f"{api}/issues/{pr.number}",
        "commits_url": f"{api}/pulls/{pr.number}/commits",
        "review_comments_url": f"{api}/pulls/{pr.number}/comments",
        "review_comment_url": api + "/pulls/comments{/number}",
        "comments_url": f"{api}/issues/{pr.number}/comments",
        "statuses_url": f"{api}/statuses/{pr.head_sha}",
        "number": pr.number,
        "state": pr.state,
        "locked": False,
        "title": pr.title,
        "user": user(fake, pr.user),
        "body": pr.body,
        "labels": [],
        "milestone": None,
        "active_lock_reason": None,
        "created_at": pr.created_at,
        "updated_at": pr.updated_at,
        "closed_at": pr.closed_at,
        "merged_at": pr.merged_at,
        "merge_commit_sha": None,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "head": _branch_side(
            fake,
            None if pr.head_repo_deleted else pr.head_repo,
            pr.head_owner,
            pr.head_ref,
            pr.head_sha,
        ),
        "base": _branch_side(fake, repo, repo.owner, pr.base_ref, pr.base_sha),
        "_links": {
            "self": {"href": f"{api}/pulls/{pr.number}"},
            "html": {"href": html},
            "issue": {"href": f"{api}/issues/{pr.number}"},
            "comments": {"href": f"{api}/issues/{pr.number}/comments"},
            "review_comments": {"href": f"{api}/pulls/{pr.number}/comments"},
            "commits": {"href": f"{api}/pulls/{pr.number}/commits"},
            "statuses": {"href": f"{api}/statuses/{pr.head_sha}"},
        },
        "author_association": _author_association(repo, pr.user),
        "auto_merge": None,
        "draft": pr.draft,
        "merged": pr.merged,
        "mergeable": None if pr.state != "open" else True,
        "rebaseable": None,
        "mergeable_state": "unknown" if pr.draft else "clean",
        "merged_by": None,
        "comments": len(fake.issue_comments_of(pr)),
        "review_comments": len(fake.review_comments_of(pr)),
        "maintainer_can_modify": pr.head_repo is not repo and not pr.head_repo_deleted,
        "commits": len(pr.commit_shas()),
        "additions": sum(f.additions for f in files),
        "deletions": sum(f.deletions for f in files),
        "changed_files": len(files),
    }


def pull_request_ref(fake: FakeGitHub, pr: PullRequest) -> dict[str, Any]:
    """The minimal PR object in ``check_run.pull_requests`` / ``check_suite.pull_requests``."""
    repo = pr.repo
    head_repo = pr.head_repo or repo
    return {
        "url": f"{fake.url}/repos/{repo.full_name}/pulls/{pr.number}",
        "id": pr.id,
        "number": pr.number,
        "head": {"ref": pr.head_ref, "sha": pr.head_sha, "repo": repo_ref(fake, head_repo)},
        "base": {"ref": pr.base_ref, "sha": pr.base_sha, "repo": repo_ref(fake, repo)},
    }


def issue(fake: FakeGitHub, item: Issue) -> dict[str, Any]:
    """An issue object; for a pull request it carries the ``pull_request`` key."""
    repo = item.repo
    api = f"{fake.url}/repos/{repo.full_name}"
    kind = "pull" if item.is_pull else "issues"
    data: dict[str, Any] = {
        "url": f"{api}/issues/{item.number}",
        "repository_url": api,
        "labels_url": f"{api}/issues/{item.number}/labels{{/name}}",
        "comments_url": f"{api}/issues/{item.number}/comments",
        "events_url": f"{api}/issues/{item.number}/events",
        "html_url": f"{fake.html_url}/{repo.full_name}/{kind}/{item.number}",
        "id": item.id,
        "node_id": f"I_{item.id}",
        "number": item.number,
        "title": item.title,
        "user": user(fake, item.user),
        "labels": [],
        "state": item.state,
        "locked": False,
        "assignee": None,
        "assignees": [],
        "milestone": None,
        "comments": len(fake.issue_comments_of(item)),
        "created_at": item.created_at,
        "updated_at": item.updated_at,
        "closed_at": item.closed_at,
        "author_association": _author_association(repo, item.user),
        "active_lock_reason": None,
        "body": item.body,
        "reactions": reaction_summary(fake, f"{api}/issues/{item.number}/reactions", []),
        "performed_via_github_app": None,
        "state_reason": None,
    }
    if isinstance(item, PullRequest):
        html = f"{fake.html_url}/{repo.full_name}/pull/{item.number}"
        data["draft"] = item.draft
        data["pull_request"] = {
            "url": f"{api}/pulls/{item.number}",
            "html_url": html,
            "diff_url": html + ".diff",
            "patch_url": html + ".patch",
            "merged_at": item.merged_at,
        }
    return data


def reaction_summary(fake: FakeGitHub, url: str, reactions: list[Reaction]) -> dict[str, Any]:
    """The ``reactions`` rollup object on issues and comments."""
    summary: dict[str, Any] = {"url": url, "total_count": len(reactions)}
    for content in REACTIONS:
        summary[content] = sum(1 for r in reactions if r.content == content)
    return summary


def issue_comment(fake: FakeGitHub, c: IssueComment) -> dict[str, Any]:
    """An issue comment object."""
    repo = fake.repo(c.repo)
    api = f"{fake.url}/repos/{repo.full_name}"
    item = repo.issues[c.issue_number]
    kind = "pull" if item.is_pull else "issues"
    return {
        "url": f"{api}/issues/comments/{c.id}",
        "html_url": f"{fake.html_url}/{repo.full_name}/{kind}/{c.issue_number}#issuecomment-{c.id}",
        "issue_url": f"{api}/issues/{c.issue_number}",
        "id": c.id,
        "node_id": f"IC_{c.id}",
        "user": user(fake, c.user),
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "author_association": _author_association(repo, c.user),
        "body": c.body,
        "reactions": reaction_summary(
            fake, f"{api}/issues/comments/{c.id}/reactions", fake.reactions_on(c.id)
        ),
        "performed_via_github_app": app(fake, fake.apps[c.app_id]) if c.app_id else None,
    }


def reaction(fake: FakeGitHub, r: Reaction) -> dict[str, Any]:
    """A reaction object."""
    return {
        "id": r.id,
        "node_id": f"REA_{r.id}",
        "user": user(fake, r.user),
        "content": r.content,
        "created_at": r.created_at,
    }


def check_run(fake: FakeGitHub, run: CheckRun) -> dict[str, Any]:
    """A check run object (REST and ``check_run`` webhooks)."""
    repo = fake.repo(run.repo)
    api = f"{fake.url}/repos/{repo.full_name}"
    output = run.output
    # GitHub only lists PRs whose head branch is in this repository (never fork PRs).
    pulls = [
        pull_request_ref(fake, pr)
        for pr in repo.pulls()
        if pr.state == "open" and pr.head_sha == run.head_sha and pr.head_repo is repo
    ]
    head_branch = next((b for b, sha in repo.branches.items() if sha == run.head_sha), None)
    return {
        "id": run.id,
        "name": run.name,
        "node_id": f"CR_{run.id}",
        "head_sha": run.head_sha,
        "external_id": run.external_id if run.external_id is not None else "",
        "url": f"{api}/check-runs/{run.id}",
        "html_url": f"{fake.html_url}/{repo.full_name}/runs/{run.id}",
        "details_url": run.details_url,
        "status": run.status,
        "conclusion": run.conclusion,
        "started_at": run.started_at,
        "completed_at": run.completed_at,
        "output": {
            "title": output.get("title"),
            "summary": output.get("summary"),
            "text": output.get("text"),
            "annotations_count": len(run.annotations),
            "annotations_url": f"{api}/check-runs/{run.id}/annotations",
        },
        "check_suite": {
            "id": run.check_suite_id,
            "head_branch": head_branch,
            "head_sha": run.head_sha,
        },
        "app": app(fake, fake.apps[run.app_id]),
        "pull_requests": pulls,
        "actions": run.actions,
    }


def annotation(fake: FakeGitHub, run: CheckRun, a: dict[str, Any]) -> dict[str, Any]:
    """An annotation as ``GET /check-runs/{id}/annotations`` lists it."""
    return {
        "path": a["path"],
        "blob_href": f"{fake.html_url}/{run.repo}/blob/{run.head_sha}/{a['path']}",
        "start_line": a["start_line"],
        "start_column": a.get("start_column"),
        "end_line": a["end_line"],
        "end_column": a.get("end_column"),
        "annotation_level": a["annotation_level"],
        "title": a.get("title"),
        "message": a["message"],
        "raw_details": a.get("raw_details"),
    }


def review(fake: FakeGitHub, r: Review) -> dict[str, Any]:
    """A pull request review object."""
    repo = fake.repo(r.repo)
    html = f"{fake.html_url}/{repo.full_name}/pull/{r.pull_number}"
    return {
        "id": r.id,
        "node_id": f"PRR_{r.id}",
        "user": user(fake, r.user),
        "body": r.body,
        "state": r.state,
        "html_url": f"{html}#pullrequestreview-{r.id}",
        "pull_request_url": f"{fake.url}/repos/{repo.full_name}/pulls/{r.pull_number}",
        "author_association": "NONE",
        "submitted_at": r.submitted_at,
        "commit_id": r.commit_id,
    }


def review_comment(fake: FakeGitHub, c: ReviewComment) -> dict[str, Any]:
    """A review (inline diff) comment object."""
    repo = fake.repo(c.repo)
    api = f"{fake.url}/repos/{repo.full_name}"
    html = f"{fake.html_url}/{repo.full_name}/pull/{c.pull_number}"
    return {
        "url": f"{api}/pulls/comments/{c.id}",
        "pull_request_review_id": c.review_id,
        "id": c.id,
        "node_id": f"PRRC_{c.id}",
        "diff_hunk": c.diff_hunk,
        "path": c.path,
        "position": c.position,
        "original_position": c.position,
        "commit_id": c.commit_id,
        "original_commit_id": c.original_commit_id,
        "user": user(fake, c.user),
        "body": c.body,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "html_url": f"{html}#discussion_r{c.id}",
        "pull_request_url": f"{api}/pulls/{c.pull_number}",
        "author_association": "NONE",
        "start_line": c.start_line,
        "original_start_line": c.start_line,
        "start_side": c.start_side,
        "line": c.line,
        "original_line": c.original_line,
        "side": c.side,
        "subject_type": "line",
        "in_reply_to_id": c.in_reply_to_id,
        "reactions": reaction_summary(
            fake, f"{api}/pulls/comments/{c.id}/reactions", fake.reactions_on(c.id)
        ),
    }


def diff_entry(fake: FakeGitHub, repo: Repo, head_sha: str, f: FileDiff) -> dict[str, Any]:
    """One element of ``GET /pulls/{n}/files`` (and of a commit's ``files``)."""
    quoted = quote(f.filename)
    data: dict[str, Any] = {
        "sha": f.sha,
        "filename": f.filename,
        "status": f.status,
        "additions": f.additions,
        "deletions": f.deletions,
        "changes": f.changes,
        "blob_url": f"{fake.html_url}/{repo.full_name}/blob/{head_sha}/{quoted}",
        "raw_url": f"{fake.html_url}/{repo.full_name}/raw/{head_sha}/{quoted}",
        "contents_url": f"{fake.url}/repos/{repo.full_name}/contents/{quoted}?ref={head_sha}",
    }
    if f.patch is not None:
        data["patch"] = f.patch
    if f.previous_filename is not None:
        data["previous_filename"] = f.previous_filename
    return data


def commit(fake: FakeGitHub, repo: Repo, c: Commit) -> dict[str, Any]:
    """A commit object (``GET /repos/{o}/{r}/commits/{ref}``)."""
    api = f"{fake.url}/repos/{repo.full_name}"
    person = {
        "name": c.author,
        "email": f"{c.author}@users.noreply.github.com",
        "date": c.timestamp,
    }
    return {
        "sha": c.sha,
        "node_id": f"C_{c.sha[:12]}",
        "url": f"{api}/commits/{c.sha}",
        "html_url": f"{fake.html_url}/{repo.full_name}/commit/{c.sha}",
        "commit": {
            "message": c.message,
            "author": person,
            "committer": person,
            "tree": {"sha": c.tree_sha, "url": f"{api}/git/trees/{c.tree_sha}"},
        },
        "author": user(fake, c.author),
        "committer": user(fake, c.author),
        "parents": [{"sha": p, "url": f"{api}/commits/{p}"} for p in c.parents],
    }


def content_file(
    fake: FakeGitHub, repo: Repo, ref: str, entry: Entry, *, with_content: bool
) -> dict[str, Any]:
    """A ``GET /contents/{path}`` object for a file, symlink or submodule."""
    api = f"{fake.url}/repos/{repo.full_name}"
    name = entry.path.rpartition("/")[2]
    kind = {"120000": "symlink", "160000": "submodule"}.get(entry.mode, "file")
    html = f"{fake.html_url}/{repo.full_name}/blob/{ref}/{quote(entry.path)}"
    self_url = f"{api}/contents/{quote(entry.path)}?ref={ref}"
    data: dict[str, Any] = {
        "type": kind,
        "size": entry.size,
        "name": name,
        "path": entry.path,
        "sha": entry.sha,
        "url": self_url,
        "git_url": f"{api}/git/blobs/{entry.sha}" if kind != "submodule" else None,
        "html_url": html,
        "download_url": f"{fake.html_url}/{repo.full_name}/raw/{ref}/{quote(entry.path)}"
        if kind == "file"
        else None,
        "_links": {"self": self_url, "git": f"{api}/git/blobs/{entry.sha}", "html": html},
    }
    if kind == "symlink" and entry.content is not None:
        data["target"] = entry.content.decode()
    if kind == "submodule":
        data["submodule_git_url"] = entry.submodule_url
    if with_content and kind == "file" and entry.content is not None:
        data["content"] = b64_lines(entry.content)
        data["encoding"] = "base64"
    return data


def permission(fake: FakeGitHub, repo: Repo, login: str) -> dict[str, Any]:
    """``GET /collaborators/{user}/permission``: permission, role_name and the user."""
    role = repo.role_of(login)
    perm = ROLE_TO_PERMISSION[role]
    levels = ["pull", "triage", "push", "maintain", "admin"]
    reached = {"none": -1, "read": 0, "triage": 1, "write": 2, "maintain": 3, "admin": 4}[role]
    u = user(fake, login)
    u["permissions"] = {name: i <= reached for i, name in enumerate(levels)}
    u["role_name"] = role
    return {"permission": perm, "role_name": role, "user": u}
