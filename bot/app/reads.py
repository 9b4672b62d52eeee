"""The GitHub reads of one audit: changed files, head tree, blobs, config, earlier comments.

Each read is a method of `AuditReads`; `StartedReads` holds the ones an audit starts at once.
"""

from __future__ import annotations

import asyncio
import logging
import tomllib
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import cachetools
from gidgethub import BadRequest

from bot.app.github import GitHub, GitHubClient, decode_content
from bot.app.queue import AuditRequest
from bot.review.fingerprints import fingerprints_in
from bot.review.patch import EMPTY_PATCH, PatchLines, parse_patch
from rules.engine.config import CONFIG_PATHS, Config, ConfigError, parse_config_text

logger = logging.getLogger(__name__)


PYTHON_SUFFIXES = (".py", ".pyi")
#: Files larger than this are not audited (the contents API's JSON limit).
MAX_FILE_BYTES = 1024 * 1024
#: GitHub lists at most this many files of a pull request.
MAX_LISTED_FILES = 3000
MODE_SYMLINK = "120000"
MODE_SUBMODULE = "160000"
#: Head trees kept (path -> mode, size, sha of the Python files), bounded by total entries.
TREE_CACHE_ENTRIES = 100_000


#: Among the existing fingerprints when one of our replies resolved a thread (it never
#: equals a finding's fingerprint, which is hex).
THREAD_RESOLVED = "thread:resolved"
RESOLVED_MARK = "<!-- txaudit:thread fixed@"


class StartedReads:
    """The reads an audit starts at once, as tasks; awaited where each step needs them."""

    def __init__(
        self,
        *,
        config: Awaitable[Config],
        files: Awaitable[list[dict[str, Any]]],
        tree: Awaitable[dict[str, TreeEntry]],
        existing: Awaitable[frozenset[str]],
    ) -> None:
        self.config = asyncio.ensure_future(config)
        self.files = asyncio.ensure_future(files)
        self.tree = asyncio.ensure_future(tree)
        self.existing = asyncio.ensure_future(existing)

    async def cancel(self) -> None:
        """Cancel what is still running; collect every outcome (no unretrieved errors)."""
        tasks: list[asyncio.Future[Any]] = [self.config, self.files, self.tree, self.existing]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class TreeEntry(NamedTuple):
    """A blob of the head tree."""

    mode: str
    size: int
    sha: str


_UNKNOWN_ENTRY = TreeEntry("", 0, "")


def _unchanged_content(entry: Mapping[str, Any]) -> bool:
    """A pure rename, copy or mode change (a binary file also has no counts, but is
    added or modified)."""
    return (
        entry.get("status") in ("renamed", "copied", "changed", "unchanged")
        and not entry.get("additions")
        and not entry.get("deletions")
    )


@dataclass(frozen=True)
class FetchedFile:
    path: str
    status: str
    patch: PatchLines | None
    sha: str
    content: bytes | None = None
    skipped: str | None = None

    def skip(self, why: str) -> FetchedFile:
        return FetchedFile(self.path, self.status, self.patch, self.sha, None, why)

    def with_content(self, content: bytes) -> FetchedFile:
        return FetchedFile(self.path, self.status, self.patch, self.sha, content, None)


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def request_extra(request: AuditRequest) -> dict[str, Any]:
    return {
        "delivery": request.delivery_id,
        "installation": request.installation_id,
        "repo": request.full_name,
        "pr": request.number,
    }


class AuditReads:
    """The reads of an audit through one installation's client (`gh`); head trees are cached."""

    def __init__(self, hub: GitHub) -> None:
        self.hub = hub
        self._trees: cachetools.LRUCache[tuple[str, str], dict[str, TreeEntry]] = (
            cachetools.LRUCache(maxsize=TREE_CACHE_ENTRIES, getsizeof=lambda tree: len(tree) + 1)
        )

    async def read_config(self, gh: GitHubClient, request: AuditRequest, ref: str) -> Config:
        for path in CONFIG_PATHS:
            text = await self.read_text(gh, request, path, ref)
            if text is not None:
                return parse_config_text(text, filename=path)
        text = await self.read_text(gh, request, "pyproject.toml", ref)
        if text is None:
            return Config()
        try:
            tool = tomllib.loads(text).get("tool")
        except tomllib.TOMLDecodeError:
            return Config()  # a broken pyproject.toml without our section is not our business
        if not isinstance(tool, dict) or "txaudit" not in tool:
            return Config()
        return parse_config_text(text, filename="pyproject.toml")

    async def read_text(
        self, gh: GitHubClient, request: AuditRequest, path: str, ref: str
    ) -> str | None:
        try:
            data = await gh.getitem(
                "/repos/{owner}/{repo}/contents/{+path}{?ref}",
                {"owner": request.owner, "repo": request.repo, "path": path, "ref": ref},
            )
        except BadRequest as exc:
            if exc.status_code == 404:
                return None
            raise
        if not isinstance(data, dict) or data.get("type", "file") != "file":
            return None
        content = decode_content(data)
        try:
            return content.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not UTF-8 text") from None

    async def changed_files(
        self, gh: GitHubClient, request: AuditRequest, expected: int = 0
    ) -> list[dict[str, Any]]:
        """All pages of the changed files; with `expected` (the pull request's
        `changed_files`) the pages are fetched at once, then any further ones followed."""
        url = "/repos/{owner}/{repo}/pulls/{number}/files?per_page=100"
        url_vars: dict[str, str | int] = {
            "owner": request.owner,
            "repo": request.repo,
            "number": request.number,
        }
        pages = min(max(1, -(-expected // 100)), MAX_LISTED_FILES // 100)

        async def follow(page: int) -> list[dict[str, Any]]:
            suffix = f"&page={page}" if page > 1 else ""
            return [entry async for entry in gh.getiter(url + suffix, url_vars)]

        async def one(page: int) -> list[dict[str, Any]]:
            return list(await gh.getitem(url + f"&page={page}", url_vars))

        chunks = await asyncio.gather(*(one(page) for page in range(1, pages)), follow(pages))
        return [entry for chunk in chunks for entry in chunk]

    async def python_tree(
        self, gh: GitHubClient, request: AuditRequest, head_sha: str
    ) -> dict[str, TreeEntry]:
        """path -> (mode, size, sha) of the Python entries of the head tree (best effort).

        The diff entries carry no mode, and a symlink's blob is its target path, so the
        tree tells symlinks and submodules apart from files; TX007 needs its paths.
        """
        key = (request.full_name, head_sha)
        cached = self._trees.get(key)
        if cached is not None:
            return cached
        try:
            tree = await gh.getitem(
                "/repos/{owner}/{repo}/git/trees/{sha}?recursive=1",
                {"owner": request.owner, "repo": request.repo, "sha": head_sha},
            )
        except BadRequest as exc:
            logger.warning(
                "could not read the head tree; file modes unknown",
                extra={**request_extra(request), "status": exc.status_code},
            )
            return {}
        entries = {
            item["path"]: TreeEntry(
                str(item.get("mode", "")), int(item.get("size") or 0), str(item.get("sha", ""))
            )
            for item in tree.get("tree", ())
            if isinstance(item, dict) and str(item.get("path", "")).endswith(PYTHON_SUFFIXES)
        }
        if len(entries) < TREE_CACHE_ENTRIES:
            self._trees[key] = entries
        return entries

    async def fetch(
        self,
        gh: GitHubClient,
        request: AuditRequest,
        entry: Mapping[str, Any],
        tree: Mapping[str, TreeEntry],
    ) -> FetchedFile:
        path = entry["filename"]
        patch = entry.get("patch")
        lines = parse_patch(patch) if isinstance(patch, str) else None
        if lines is None and _unchanged_content(entry):
            lines = EMPTY_PATCH  # no patch because the content did not change: no new lines
        base = FetchedFile(
            path=path, status=entry.get("status", "modified"), patch=lines, sha=entry["sha"]
        )
        mode, size, _ = tree.get(path, _UNKNOWN_ENTRY)
        if mode == MODE_SYMLINK:
            return base.skip("a symbolic link; its target is audited where it lives")
        if mode == MODE_SUBMODULE:
            return base.skip("a submodule; not audited")
        if size > MAX_FILE_BYTES:
            return base.skip(f"larger than 1 MB ({_megabytes(size)}); not audited")
        try:
            content = await self.hub.blob(gh, request.owner, request.repo, entry["sha"])
        except BadRequest as exc:
            if exc.status_code in (404, 409, 422):
                return base.skip(f"could not be read from GitHub ({exc.status_code}); not audited")
            raise
        if len(content) > MAX_FILE_BYTES:
            return base.skip(f"larger than 1 MB ({_megabytes(len(content))}); not audited")
        return base.with_content(content)

    async def existing_fingerprints(
        self, gh: GitHubClient, request: AuditRequest
    ) -> frozenset[str]:
        async def comments() -> list[dict[str, Any]]:
            return [
                comment
                async for comment in gh.getiter(
                    "/repos/{owner}/{repo}/pulls/{number}/comments?per_page=100",
                    {"owner": request.owner, "repo": request.repo, "number": request.number},
                )
            ]

        login, listed = await asyncio.gather(self.hub.bot_login(), comments())
        found: set[str] = set()
        for comment in listed:
            user = comment.get("user") or {}
            if login is not None and user.get("login") != login:
                continue
            if login is None and user.get("type") != "Bot":
                continue
            body = comment.get("body") or ""
            found |= fingerprints_in(body)
            if RESOLVED_MARK in body:  # a thread we resolved: a finding may come back
                found.add(THREAD_RESOLVED)
        return frozenset(found)

    async def newer_head(
        self, gh: GitHubClient, request: AuditRequest, head_sha: str
    ) -> str | None:
        """The pull request's current head sha when it is no longer `head_sha`."""
        pull = await gh.getitem(
            "/repos/{owner}/{repo}/pulls/{number}",
            {"owner": request.owner, "repo": request.repo, "number": request.number},
        )
        current = pull["head"]["sha"]
        return None if current == head_sha else str(current)
