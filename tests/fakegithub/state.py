"""In-memory state of the fake GitHub: apps, installations, tokens, repositories and their data.

Everything here is plain Python that tests can build and inspect directly; :mod:`.server` exposes it
over HTTP and :mod:`.render` turns it into GitHub's JSON shapes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import secrets
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .gitdata import (
    Commit,
    DiffOptions,
    Entry,
    FileDiff,
    FileSpec,
    diff_commits,
    make_commit,
    make_entry,
)

#: Permission levels of ``GET /collaborators/{user}/permission`` and the role each maps from.
ROLE_TO_PERMISSION = {
    "admin": "admin",
    "maintain": "write",
    "write": "write",
    "triage": "read",
    "read": "read",
    "none": "none",
}

REACTIONS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")


def generate_private_key_pem() -> str:
    """Generate a fresh 2048-bit RSA private key, PEM (PKCS#1, like GitHub's downloads)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


@lru_cache(maxsize=4)
def cached_private_key_pem(slot: int = 0) -> str:
    """A key generated once per process per ``slot``: RSA generation costs ~0.1 s per test."""
    return generate_private_key_pem()


def public_key_pem(private_key_pem: str) -> str:
    """The PEM public key matching ``private_key_pem``."""
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def stable_id(text: str, base: int = 10_000_000) -> int:
    """A deterministic numeric id for a login or name (so payloads are reproducible)."""
    return base + zlib.crc32(text.encode()) % 90_000_000


@dataclass
class ManifestRegistration:
    """A manifest a user confirmed on the fake's "Create GitHub App" page."""

    manifest: dict[str, Any]
    owner: str
    created_at: float
    used: bool = False


#: GitHub: the code must be converted "within one hour".
MANIFEST_CODE_LIFETIME = 3600.0


class Clock:
    """The fake's notion of time: real time plus an offset that tests may advance."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        """Seconds since the epoch, as the fake sees it."""
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward (tokens and JWTs expire against it)."""
        self.offset += seconds

    def iso(self, at: float | None = None) -> str:
        """``YYYY-MM-DDTHH:MM:SSZ`` for ``at`` (default: now), as GitHub formats timestamps."""
        moment = self.now() if at is None else at
        return dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class App:
    """A GitHub App registered on the fake."""

    id: int
    slug: str
    name: str
    client_id: str
    private_key_pem: str
    owner: str = "txaudit-org"
    permissions: dict[str, str] = field(
        default_factory=lambda: {
            "checks": "write",
            "contents": "read",
            "issues": "write",
            "metadata": "read",
            "pull_requests": "write",
        }
    )
    events: list[str] = field(
        default_factory=lambda: ["check_run", "check_suite", "issue_comment", "pull_request"]
    )

    @property
    def public_key_pem(self) -> str:
        """PEM public key the fake verifies the app's JWTs with."""
        return public_key_pem(self.private_key_pem)

    @property
    def bot_login(self) -> str:
        """The login the app acts as: ``<slug>[bot]``."""
        return f"{self.slug}[bot]"


@dataclass
class Installation:
    """An installation of an app on an account; ``repositories`` None means all of its repos."""

    id: int
    app_id: int
    account: str
    repositories: set[str] | None = None
    suspended: bool = False

    def covers(self, full_name: str) -> bool:
        """Whether tokens of this installation may access repository ``full_name``."""
        if self.repositories is not None:
            return full_name in self.repositories
        return full_name.split("/", 1)[0].lower() == self.account.lower()


@dataclass
class Token:
    """An installation access token."""

    token: str
    installation_id: int
    app_id: int
    expires_at: float
    revoked: bool = False
    #: repositories the token was down-scoped to (full names); None = all of the installation's
    repositories: set[str] | None = None

    def valid(self, now: float) -> bool:
        """Not revoked and not expired at ``now``."""
        return not self.revoked and now < self.expires_at


@dataclass
class CheckRun:
    """A check run; ``annotations`` holds every annotation appended by create and updates."""

    id: int
    repo: str
    app_id: int
    name: str
    head_sha: str
    check_suite_id: int
    status: str = "queued"
    conclusion: str | None = None
    external_id: str | None = None
    details_url: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    output: dict[str, Any] = field(default_factory=dict)
    annotations: list[dict[str, Any]] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    #: every request body applied to the run, in order (create first, then each PATCH)
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ReviewComment:
    """An inline (review) comment on a pull request's diff."""

    id: int
    repo: str
    pull_number: int
    review_id: int
    user: str
    body: str
    path: str
    line: int | None
    side: str
    start_line: int | None
    start_side: str | None
    original_line: int
    commit_id: str
    original_commit_id: str
    diff_hunk: str
    position: int | None
    created_at: str
    updated_at: str
    in_reply_to_id: int | None = None


@dataclass
class Review:
    """A pull request review with the ids of its inline comments."""

    id: int
    repo: str
    pull_number: int
    user: str
    body: str
    state: str  # COMMENTED | APPROVED | CHANGES_REQUESTED | PENDING
    commit_id: str
    submitted_at: str | None
    comment_ids: list[int] = field(default_factory=list)


@dataclass
class IssueComment:
    """A comment on an issue or on a pull request's conversation."""

    id: int
    repo: str
    issue_number: int
    user: str
    body: str
    created_at: str
    updated_at: str
    app_id: int | None = None  # performed_via_github_app


@dataclass
class Reaction:
    """A reaction on a comment (``subject`` is ("issue_comment"|"review_comment"|"issue", id))."""

    id: int
    subject: tuple[str, int]
    user: str
    content: str
    created_at: str


@dataclass
class Issue:
    """A plain issue (pull requests are issues too, see :class:`PullRequest`)."""

    number: int
    repo: Repo
    title: str
    body: str | None
    user: str
    state: str = "open"
    created_at: str = ""
    updated_at: str = ""
    closed_at: str | None = None
    id: int = 0

    @property
    def is_pull(self) -> bool:
        """False for a plain issue."""
        return False


@dataclass
class PullRequest(Issue):
    """A pull request between two branches (the head possibly in a fork)."""

    head_ref: str = ""
    head_sha: str = ""
    base_ref: str = ""
    base_sha: str = ""
    draft: bool = False
    #: repository holding the head branch (the base repo itself, or a fork)
    head_repo: Repo | None = None
    #: the fork was deleted: ``head.repo`` renders as null
    head_repo_deleted: bool = False
    merged: bool = False
    merged_at: str | None = None
    omit_patch: set[str] = field(default_factory=set)
    #: every head sha the PR has had, oldest first
    head_history: list[str] = field(default_factory=list)
    _files_cache: dict[tuple[str, str, frozenset[str]], list[FileDiff]] = field(
        default_factory=dict, repr=False
    )

    @property
    def is_pull(self) -> bool:
        """True: this issue is a pull request."""
        return True

    @property
    def head_owner(self) -> str:
        """Login that owns the head repository (the base owner when the fork is gone)."""
        return (self.head_repo or self.repo).owner

    @property
    def is_fork(self) -> bool:
        """Whether the head branch lives in another repository."""
        return self.head_repo is not None and self.head_repo is not self.repo

    def merge_base(self) -> str:
        """The best common ancestor of base and head (GitHub diffs PRs three-dot style)."""
        store = self.repo.objects
        ancestors: set[str] = set()
        todo = [self.base_sha]
        while todo:
            sha = todo.pop()
            if sha in ancestors:
                continue
            ancestors.add(sha)
            todo.extend(store[sha].parents)
        queue = [self.head_sha]
        seen: set[str] = set()
        while queue:
            sha = queue.pop(0)
            if sha in ancestors:
                return sha
            if sha in seen:
                continue
            seen.add(sha)
            queue.extend(store[sha].parents)
        return self.base_sha

    def files(self) -> list[FileDiff]:
        """The changed files at the current head, as ``GET /pulls/{n}/files`` lists them."""
        key = (self.base_sha, self.head_sha, frozenset(self.omit_patch))
        if key not in self._files_cache:
            store = self.repo.objects
            options = DiffOptions(
                omit_patch=frozenset(self.omit_patch),
                max_patch_bytes=self.repo.max_patch_bytes,
                max_patch_lines=self.repo.max_patch_lines,
            )
            self._files_cache[key] = diff_commits(
                store[self.merge_base()], store[self.head_sha], options
            )
        return self._files_cache[key]

    def file(self, path: str) -> FileDiff | None:
        """The diff entry for ``path``, or None when the PR does not touch it."""
        return next((f for f in self.files() if f.filename == path), None)

    # -- lifecycle (test side; pair with the matching payloads.* builder) -------------------------

    def push(self, files: Mapping[str, FileSpec], **kwargs: Any) -> Commit:
        """Push a commit with ``files`` to the head branch; the PR follows (``synchronize``)."""
        source = self.head_repo or self.repo
        return source.commit(files, branch=self.head_ref, **kwargs)

    def close(self, *, merged: bool = False) -> None:
        """Close (or merge) the pull request."""
        now = self.repo.fake.clock.iso()
        self.state, self.closed_at, self.updated_at = "closed", now, now
        if merged:
            self.merged, self.merged_at = True, now

    def reopen(self) -> None:
        """Reopen a closed pull request."""
        self.state, self.closed_at = "open", None
        self.updated_at = self.repo.fake.clock.iso()

    def ready_for_review(self) -> None:
        """Turn a draft into a pull request ready for review."""
        self.draft = False
        self.updated_at = self.repo.fake.clock.iso()

    def convert_to_draft(self) -> None:
        """Turn the pull request into a draft."""
        self.draft = True
        self.updated_at = self.repo.fake.clock.iso()

    def change_base(self, ref: str) -> dict[str, Any]:
        """Retarget the PR to branch ``ref``; returns the ``changes`` object of the edited event."""
        changes = {"base": {"ref": {"from": self.base_ref}, "sha": {"from": self.base_sha}}}
        self.base_ref, self.base_sha = ref, self.repo.branches[ref]
        self.updated_at = self.repo.fake.clock.iso()
        return changes

    def commit_shas(self) -> list[str]:
        """Commits reachable from head but not from base (oldest first)."""
        store = self.repo.objects
        base_side: set[str] = set()
        todo = [self.base_sha]
        while todo:
            sha = todo.pop()
            if sha not in base_side:
                base_side.add(sha)
                todo.extend(store[sha].parents)
        result: list[str] = []
        todo = [self.head_sha]
        seen: set[str] = set()
        while todo:
            sha = todo.pop()
            if sha in seen or sha in base_side:
                continue
            seen.add(sha)
            result.append(sha)
            todo.extend(store[sha].parents)
        return list(reversed(result))


class Repo:
    """A repository: branches, the (fork-shared) object store, issues/PRs and collaborators."""

    def __init__(
        self,
        fake: GitHubState,
        full_name: str,
        *,
        default_branch: str = "main",
        private: bool = False,
        fork_of: Repo | None = None,
    ) -> None:
        self.fake = fake
        self.full_name = full_name
        self.owner, self.name = full_name.split("/", 1)
        self.id = stable_id(full_name, 100_000_000)
        self.default_branch = default_branch
        self.private = private
        self.fork_of = fork_of
        #: commits shared across a fork network, as on GitHub (PR heads are readable from the base)
        self.objects: dict[str, Commit] = fork_of.objects if fork_of is not None else {}
        #: blob sha -> content, shared like :attr:`objects`
        self.blobs: dict[str, bytes] = fork_of.blobs if fork_of is not None else {}
        self.branches: dict[str, str] = {}
        self.issues: dict[int, Issue] = {}
        self.permissions: dict[str, str] = {self.owner: "admin"}
        #: permission of users not set explicitly (public repository: read)
        self.default_permission = "read"
        self.max_patch_bytes = 1_000_000
        self.max_patch_lines = 20_000
        self.created_at = fake.clock.iso()
        self._numbers = itertools.count(1)

    def __repr__(self) -> str:
        return f"<Repo {self.full_name}>"

    # -- git --------------------------------------------------------------------------------------

    def commit(
        self,
        files: Mapping[str, FileSpec],
        *,
        branch: str | None = None,
        parent: str | Commit | None = None,
        message: str = "Update files",
        author: str | None = None,
        replace: bool = False,
        executable: Iterable[str] = (),
    ) -> Commit:
        """Create a commit and (optionally) move ``branch`` to it; return the commit.

        ``files`` maps paths to new contents (``str``/``bytes``, :class:`Symlink`,
        :class:`Submodule`) or ``None`` to delete. The tree starts from ``parent`` (default: the
        tip of ``branch``, or of the default branch for a new branch) unless ``replace`` is true.
        Paths in ``executable`` get mode 100755. Open pull requests whose head is ``branch``
        follow it (like a push).
        """
        parent_sha = parent.sha if isinstance(parent, Commit) else parent
        if parent_sha is None and branch is not None:
            # like ``git checkout -b``: a new branch starts from the default branch
            parent_sha = self.branches.get(branch, self.branches.get(self.default_branch))
        entries: dict[str, Entry] = {}
        if parent_sha is not None and not replace:
            entries = dict(self.objects[parent_sha].entries)
        exec_paths = set(executable)
        for path, spec in files.items():
            path = path.strip("/")
            if spec is None:
                entries.pop(path, None)
            else:
                entries[path] = make_entry(path, spec, executable=path in exec_paths)
        commit = make_commit(
            entries,
            parents=[parent_sha] if parent_sha else [],
            message=message,
            author=author or self.owner,
            timestamp=self.fake.clock.iso(),
        )
        self.objects[commit.sha] = commit
        for entry in entries.values():
            if entry.content is not None:
                self.blobs.setdefault(entry.sha, entry.content)
        if branch is not None:
            self.set_branch(branch, commit.sha)
        return commit

    def push(self, branch: str, files: Mapping[str, FileSpec], **kwargs: Any) -> Commit:
        """Commit on top of ``branch`` and move it (a ``git push``); PRs from it synchronize."""
        return self.commit(files, branch=branch, **kwargs)

    def set_branch(self, branch: str, sha: str) -> None:
        """Point ``branch`` at ``sha`` (also a force-push); open PRs with that head follow it."""
        self.branches[branch] = sha
        for repo in self.fake.repos.values():
            for issue in repo.issues.values():
                if (
                    isinstance(issue, PullRequest)
                    and issue.state == "open"
                    and issue.head_ref == branch
                    and issue.head_repo is self
                    and issue.head_sha != sha
                ):
                    issue.head_sha = sha
                    issue.head_history.append(sha)
                    issue.updated_at = self.fake.clock.iso()
                    self.fake.on_pull_head_changed(issue)

    def resolve(self, ref: str) -> Commit | None:
        """The commit a sha, a branch name, ``refs/heads/x`` or ``refs/pull/N/head`` names."""
        if ref in self.objects:
            return self.objects[ref]
        name = ref.removeprefix("refs/heads/")
        if name in self.branches:
            return self.objects[self.branches[name]]
        if ref.startswith("refs/pull/") and ref.endswith("/head"):
            issue = self.issues.get(int(ref.split("/")[2]))
            if isinstance(issue, PullRequest):
                return self.objects[issue.head_sha]
        if 7 <= len(ref) < 40:
            matches = [c for sha, c in self.objects.items() if sha.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
        return None

    # -- issues and pull requests -----------------------------------------------------------------

    def open_issue(
        self, title: str = "An issue", *, body: str | None = "", user: str = "alice"
    ) -> Issue:
        """Open a plain issue."""
        now = self.fake.clock.iso()
        number = next(self._numbers)
        issue = Issue(
            number, self, title, body, user, created_at=now, updated_at=now, id=self.fake.next_id()
        )
        self.issues[number] = issue
        return issue

    def open_pull(
        self,
        *,
        head: str,
        base: str | None = None,
        title: str = "Change things",
        body: str | None = "",
        user: str = "alice",
        draft: bool = False,
        head_repo: Repo | None = None,
    ) -> PullRequest:
        """Open a PR from branch ``head`` (of ``head_repo``, a fork, if given) into ``base``."""
        source = head_repo or self
        base = base or self.default_branch
        if head not in source.branches:
            raise KeyError(f"no branch {head!r} in {source.full_name}")
        now = self.fake.clock.iso()
        number = next(self._numbers)
        pr = PullRequest(
            number,
            self,
            title,
            body,
            user,
            created_at=now,
            updated_at=now,
            id=self.fake.next_id(),
            head_ref=head,
            head_sha=source.branches[head],
            base_ref=base,
            base_sha=self.branches[base],
            draft=draft,
            head_repo=source,
        )
        pr.head_history.append(pr.head_sha)
        self.issues[number] = pr
        return pr

    def pull(self, number: int) -> PullRequest:
        """The pull request ``number`` (KeyError if it is not a PR)."""
        issue = self.issues[number]
        if not isinstance(issue, PullRequest):
            raise KeyError(f"#{number} is an issue, not a pull request")
        return issue

    def pulls(self) -> list[PullRequest]:
        """All pull requests of the repository."""
        return [i for i in self.issues.values() if isinstance(i, PullRequest)]

    def add_comment(self, number: int, body: str, *, user: str = "alice") -> IssueComment:
        """Post an issue comment as ``user`` (what a human does before an issue_comment event)."""
        return self.fake.add_issue_comment(self, number, body, user=user)

    def set_permission(self, user: str, role: str) -> None:
        """Give ``user`` a role: admin, maintain, write, triage, read or none."""
        if role not in ROLE_TO_PERMISSION:
            raise ValueError(f"unknown role {role!r}")
        self.permissions[user] = role

    def role_of(self, user: str) -> str:
        """The role of ``user`` (explicit, else :attr:`default_permission`)."""
        return self.permissions.get(user, self.default_permission)


@dataclass
class HookDelivery:
    """One attempt to deliver a webhook, as GitHub's app delivery log keeps it."""

    id: int
    guid: str
    event: str
    action: str | None
    installation_id: int | None
    repository_id: int | None
    delivered_at: str
    redelivery: bool
    status_code: int  # the app's answer; 0 when it could not be reached
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def status(self) -> str:
        if 200 <= self.status_code < 300:
            return "OK"
        if self.status_code == 0:
            return "failed to connect to host"
        return f"Invalid HTTP Response: {self.status_code}"


class GitHubState:
    """All state of the fake, plus the helpers tests use to build and inspect it."""

    def __init__(
        self,
        *,
        app_id: int = 4242,
        app_slug: str = "txaudit",
        private_key_pem: str | None = None,
        installation_id: int = 1001,
        installation_account: str = "acme",
        webhook_secret: str = "fake-webhook-secret",
        token_lifetime: float = 3600.0,
    ) -> None:
        self.clock = Clock()
        self._ids = itertools.count(5_000_000)
        self.apps: dict[int, App] = {}
        self.installations: dict[int, Installation] = {}
        self.tokens: dict[str, Token] = {}
        self.repos: dict[str, Repo] = {}
        self.check_runs: dict[int, CheckRun] = {}
        self.check_suites: dict[tuple[str, int, str], int] = {}
        self.reviews: dict[int, Review] = {}
        self.review_comments: dict[int, ReviewComment] = {}
        #: Resolved review threads: top comment id -> login of who resolved it.
        self.resolved_threads: dict[int, str] = {}
        #: Every GraphQL request body the fake answered (JSON text, clipped).
        self.graphql_documents: list[str] = []
        self.issue_comments: dict[int, IssueComment] = {}
        self.reactions: dict[int, Reaction] = {}
        #: The app's webhook delivery log (`GET /app/hook/deliveries`), oldest first.
        self.hook_deliveries: list[HookDelivery] = []
        #: Where `POST /app/hook/deliveries/{id}/attempts` sends a redelivery.
        self.webhook_url: str | None = None
        self._delivery_ids = itertools.count(90_000_001)
        #: Ids of the deliveries the app asked to redeliver, in order.
        self.redelivery_requests: list[int] = []
        #: Redeliveries in flight (tasks), so that none is garbage-collected mid-send.
        self.background: set[Any] = set()
        self.webhook_secret = webhook_secret
        #: App manifests posted to `/settings/apps/new`, by one-time code (the manifest flow).
        self.manifest_codes: dict[str, ManifestRegistration] = {}
        #: Apps registered through the manifest flow: {app id: {"manifest", "webhook_secret"}}.
        self.registered_apps: dict[int, dict[str, Any]] = {}
        #: lifetime in seconds of new installation tokens (GitHub: one hour)
        self.token_lifetime = token_lifetime
        self.app = self.add_app(
            app_slug,
            app_id=app_id,
            private_key_pem=private_key_pem or cached_private_key_pem(0),
            installation_id=installation_id,
            account=installation_account,
        )
        self.installation_id = installation_id

    # -- convenience ------------------------------------------------------------------------------

    @property
    def app_id(self) -> int:
        """Id of the app under test."""
        return self.app.id

    @property
    def private_key_pem(self) -> str:
        """PEM private key of the app under test (give it to the app's config)."""
        return self.app.private_key_pem

    def log_delivery(
        self,
        guid: str,
        event: str,
        body: bytes,
        headers: dict[str, str],
        status_code: int,
        *,
        redelivery: bool = False,
    ) -> HookDelivery:
        """Record one delivery attempt in the app's delivery log."""
        import json as _json

        try:
            data = _json.loads(body)
        except ValueError:
            data = {}
        delivery = HookDelivery(
            id=next(self._delivery_ids),
            guid=guid,
            event=event,
            action=data.get("action") if isinstance(data, dict) else None,
            installation_id=((data.get("installation") or {}).get("id") if data else None),
            repository_id=((data.get("repository") or {}).get("id") if data else None),
            delivered_at=self.clock.iso(),
            redelivery=redelivery,
            status_code=status_code,
            body=body,
            headers=dict(headers),
        )
        self.hook_deliveries.append(delivery)
        return delivery

    def next_id(self) -> int:
        """A fresh object id (unique across all kinds of objects)."""
        return next(self._ids)

    def now_iso(self) -> str:
        """The fake's current time, formatted like GitHub."""
        return self.clock.iso()

    # -- apps, installations, tokens --------------------------------------------------------------

    def add_app(
        self,
        slug: str,
        *,
        app_id: int | None = None,
        private_key_pem: str | None = None,
        installation_id: int | None = None,
        account: str = "acme",
    ) -> App:
        """Register an app (with its own key) and install it on ``account``'s repositories."""
        app_id = app_id or stable_id(slug, 100_000)
        app = App(
            id=app_id,
            slug=slug,
            name=slug,
            client_id=f"Iv1.{secrets.token_hex(8)}",
            private_key_pem=private_key_pem or cached_private_key_pem(len(self.apps) + 1),
        )
        self.apps[app_id] = app
        inst_id = installation_id or stable_id(f"inst:{slug}", 1_000_000)
        self.installations[inst_id] = Installation(inst_id, app_id, account)
        return app

    def installation_of(self, app: App | int) -> Installation:
        """The (first) installation of ``app``."""
        app_id = app if isinstance(app, int) else app.id
        return next(i for i in self.installations.values() if i.app_id == app_id)

    def mint_token(
        self, installation_id: int | None = None, *, lifetime: float | None = None
    ) -> Token:
        """Create an installation token directly (test side; the app gets its own over HTTP)."""
        inst = self.installations[installation_id or self.installation_id]
        lifetime = self.token_lifetime if lifetime is None else lifetime
        token = Token(
            "ghs_" + secrets.token_urlsafe(27).replace("-", "a").replace("_", "b"),
            inst.id,
            inst.app_id,
            self.clock.now() + lifetime,
        )
        self.tokens[token.token] = token
        return token

    def revoke_token(self, token: str) -> None:
        """Revoke one installation token (later calls with it get 401 Bad credentials)."""
        self.tokens[token].revoked = True

    def expire_token(self, token: str) -> None:
        """Make one installation token expired now."""
        self.tokens[token].expires_at = self.clock.now() - 1

    def expire_all_tokens(self) -> None:
        """Expire every installation token issued so far."""
        for token in self.tokens.values():
            token.expires_at = min(token.expires_at, self.clock.now() - 1)

    # -- repositories -----------------------------------------------------------------------------

    def create_repo(
        self,
        full_name: str = "acme/payments",
        *,
        default_branch: str = "main",
        private: bool = False,
        files: Mapping[str, FileSpec] | None = None,
        fork_of: Repo | None = None,
    ) -> Repo:
        """Create a repository; ``files`` become an initial commit on the default branch."""
        repo = Repo(
            self, full_name, default_branch=default_branch, private=private, fork_of=fork_of
        )
        self.repos[full_name.lower()] = repo
        if files is not None:
            repo.commit(files, branch=default_branch, message="Initial commit")
        elif fork_of is not None:
            repo.branches = dict(fork_of.branches)
        return repo

    def fork(self, repo: Repo, owner: str) -> Repo:
        """Fork ``repo`` into ``owner``'s account (same object store, copied branches)."""
        return self.create_repo(
            f"{owner}/{repo.name}", fork_of=repo, default_branch=repo.default_branch
        )

    def repo(self, full_name: str) -> Repo:
        """The repository ``owner/name`` (case-insensitive, as on GitHub)."""
        return self.repos[full_name.lower()]

    def delete_repo(self, repo: Repo) -> None:
        """Delete a repository (e.g. a fork: its PRs then show ``head.repo: null``)."""
        self.repos.pop(repo.full_name.lower(), None)
        for other in self.repos.values():
            for pr in other.pulls():
                if pr.head_repo is repo:
                    pr.head_repo_deleted = True

    def on_pull_head_changed(self, pr: PullRequest) -> None:
        """Called after a PR's head moves: review comments on changed files become outdated."""
        store = pr.repo.objects
        head = store[pr.head_sha]
        for comment in self.review_comments.values():
            if comment.repo != pr.repo.full_name or comment.pull_number != pr.number:
                continue
            if comment.line is None:
                continue
            old = store[comment.commit_id].entries.get(comment.path)
            new = head.entries.get(comment.path)
            if old is None or new is None or old.sha != new.sha:
                comment.line = None
                comment.position = None
            else:
                comment.commit_id = pr.head_sha

    # -- writes made on behalf of humans (test side) ----------------------------------------------

    def add_issue_comment(
        self, repo: Repo, number: int, body: str, *, user: str = "alice", app_id: int | None = None
    ) -> IssueComment:
        """Store an issue comment (used by the API handler and by tests acting as humans)."""
        now = self.clock.iso()
        comment = IssueComment(self.next_id(), repo.full_name, number, user, body, now, now, app_id)
        self.issue_comments[comment.id] = comment
        return comment

    def create_check_run(
        self,
        repo: Repo,
        head_sha: str,
        name: str = "ci",
        *,
        app: App | None = None,
        status: str = "completed",
        conclusion: str | None = "success",
        **fields: Any,
    ) -> CheckRun:
        """Store a check run directly (e.g. another app's run, for ``check_run.created``)."""
        app = app or self.app
        suite_id = self.check_suites.setdefault((repo.full_name, app.id, head_sha), self.next_id())
        now = self.clock.iso()
        run = CheckRun(
            id=self.next_id(),
            repo=repo.full_name,
            app_id=app.id,
            name=name,
            head_sha=head_sha,
            check_suite_id=suite_id,
            status=status,
            conclusion=conclusion if status == "completed" else None,
            started_at=now,
            completed_at=now if status == "completed" else None,
            **fields,
        )
        self.check_runs[run.id] = run
        return run

    # -- reading state (test side) ----------------------------------------------------------------

    def runs_for(
        self, head_sha: str | None = None, *, name: str | None = None, repo: Repo | None = None
    ) -> list[CheckRun]:
        """Check runs (optionally of one head sha / name / repo), oldest first."""
        return [
            run
            for run in self.check_runs.values()
            if (head_sha is None or run.head_sha == head_sha)
            and (name is None or run.name == name)
            and (repo is None or run.repo == repo.full_name)
        ]

    def reviews_of(self, pr: PullRequest) -> list[Review]:
        """Reviews posted on ``pr``, oldest first."""
        return [
            r
            for r in self.reviews.values()
            if r.repo == pr.repo.full_name and r.pull_number == pr.number
        ]

    def add_review_reply(self, top: ReviewComment, user: str, body: str) -> ReviewComment:
        """A reply in the review thread that `top` starts."""
        now = self.now_iso()
        reply = dataclasses.replace(
            top,
            id=self.next_id(),
            user=user,
            body=body,
            created_at=now,
            updated_at=now,
            in_reply_to_id=top.id,
        )
        self.review_comments[reply.id] = reply
        return reply

    def thread_replies(self, top: ReviewComment) -> list[ReviewComment]:
        """The replies in `top`'s review thread, oldest first."""
        return sorted(
            (c for c in self.review_comments.values() if c.in_reply_to_id == top.id),
            key=lambda c: c.id,
        )

    def review_comments_of(self, pr: PullRequest) -> list[ReviewComment]:
        """Inline review comments on ``pr``, oldest first."""
        return [
            c
            for c in self.review_comments.values()
            if c.repo == pr.repo.full_name and c.pull_number == pr.number
        ]

    def issue_comments_of(self, issue: Issue) -> list[IssueComment]:
        """Conversation comments on an issue or pull request, oldest first."""
        return [
            c
            for c in self.issue_comments.values()
            if c.repo == issue.repo.full_name and c.issue_number == issue.number
        ]

    def reactions_on(self, comment: IssueComment | ReviewComment | int) -> list[Reaction]:
        """Reactions on an issue comment (or review comment) by object or id."""
        cid = comment if isinstance(comment, int) else comment.id
        return [r for r in self.reactions.values() if r.subject[1] == cid]

    def find(self, items: Iterable[Any], predicate: Callable[[Any], bool]) -> Any:
        """First item matching ``predicate`` or None (small helper for assertions)."""
        return next((i for i in items if predicate(i)), None)
