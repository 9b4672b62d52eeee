"""Git objects for the fake: blobs, trees, commits and the per-file diffs of a pull request.

Object ids are computed the way git computes them (sha1 over ``"<type> <len>\\0" + body``), so
a blob sha the fake reports equals ``git hash-object`` of the same bytes.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# git modes as they appear in tree entries and in the REST API.
MODE_FILE = "100644"
MODE_EXECUTABLE = "100755"
MODE_SYMLINK = "120000"
MODE_SUBMODULE = "160000"
MODE_TREE = "040000"

#: git's default "funcname" for hunk headers (no diff driver): a line that starts with a letter,
#: ``_`` or ``$``. GitHub shows it after the second ``@@``.
_FUNCNAME = re.compile(r"^[A-Za-z_$]")


def git_object_sha(kind: str, body: bytes) -> str:
    """Return the git object id of ``body`` stored as an object of type ``kind``."""
    header = f"{kind} {len(body)}\0".encode()
    return hashlib.sha1(header + body).hexdigest()


def blob_sha(content: bytes) -> str:
    """Return the git blob sha of ``content`` (what ``git hash-object`` prints)."""
    return git_object_sha("blob", content)


@dataclass(frozen=True)
class Symlink:
    """A symbolic link entry in a commit's tree (git stores the target as the blob content)."""

    target: str


@dataclass(frozen=True)
class Submodule:
    """A submodule (gitlink) entry: it points at a commit of another repository, with no blob."""

    sha: str
    url: str = "https://github.com/example/submodule.git"


#: What a test may give as a file's value in :meth:`Repo.commit`: text, bytes, a link, a
#: submodule, or ``None`` to delete the path.
FileSpec = str | bytes | Symlink | Submodule | None


@dataclass(frozen=True)
class Entry:
    """One path in a commit's flattened tree."""

    path: str
    mode: str
    sha: str
    content: bytes | None  # None for submodules
    submodule_url: str | None = None

    @property
    def type(self) -> str:
        """The git object type the entry points at: ``blob`` or ``commit`` (submodule)."""
        return "commit" if self.mode == MODE_SUBMODULE else "blob"

    @property
    def size(self) -> int:
        """Size in bytes of the blob (0 for a submodule)."""
        return len(self.content) if self.content is not None else 0


def make_entry(
    path: str, spec: str | bytes | Symlink | Submodule, *, executable: bool = False
) -> Entry:
    """Build a tree entry for ``path`` from a test's file spec."""
    if isinstance(spec, Submodule):
        return Entry(path, MODE_SUBMODULE, spec.sha, None, spec.url)
    if isinstance(spec, Symlink):
        data = spec.target.encode()
        return Entry(path, MODE_SYMLINK, blob_sha(data), data)
    data = spec.encode() if isinstance(spec, str) else bytes(spec)
    return Entry(path, MODE_EXECUTABLE if executable else MODE_FILE, blob_sha(data), data)


@dataclass(frozen=True)
class TreeNode:
    """A (sub)directory of a commit's tree with its git sha."""

    path: str  # "" for the root
    sha: str
    children: tuple[tuple[str, str, str, str], ...]  # (name, mode, type, sha)


def build_trees(entries: Mapping[str, Entry]) -> dict[str, TreeNode]:
    """Compute every directory's git tree object (sha exactly as git would) for flat entries.

    Returns a mapping from directory path (``""`` for the root) to its :class:`TreeNode`.
    """
    dirs: dict[str, dict[str, tuple[str, str, str]]] = {"": {}}
    for path, entry in entries.items():
        parts = path.split("/")
        for depth in range(1, len(parts)):
            dirs.setdefault("/".join(parts[:depth]), {})
        parent = "/".join(parts[:-1])
        dirs[parent][parts[-1]] = (entry.mode, entry.type, entry.sha)
    nodes: dict[str, TreeNode] = {}
    # Deepest directories first so that children's shas exist before their parents need them.
    for directory in sorted(dirs, key=lambda d: d.count("/") + (1 if d else 0), reverse=True):
        children = dirs[directory]  # subdirectories registered themselves below
        # git sorts tree entries by name, comparing directories as if they ended with "/".
        ordered = sorted(
            children.items(), key=lambda kv: kv[0] + ("/" if kv[1][1] == "tree" else "")
        )
        body = b"".join(
            f"{mode.lstrip('0')} {name}\0".encode() + bytes.fromhex(sha)
            for name, (mode, _kind, sha) in ordered
        )
        nodes[directory] = TreeNode(
            directory,
            git_object_sha("tree", body),
            tuple((name, mode, kind, sha) for name, (mode, kind, sha) in ordered),
        )
        if directory:
            parent, _, name = directory.rpartition("/")
            dirs[parent][name] = (MODE_TREE, "tree", nodes[directory].sha)
    return nodes


_commit_counter = itertools.count(1)


@dataclass
class Commit:
    """A commit: a flattened tree (path -> :class:`Entry`), parents and a message."""

    sha: str
    entries: dict[str, Entry]
    parents: list[str]
    message: str
    author: str
    timestamp: str
    _trees: dict[str, TreeNode] | None = field(default=None, repr=False)

    @property
    def trees(self) -> dict[str, TreeNode]:
        """Every directory of the commit's tree, computed lazily."""
        if self._trees is None:
            self._trees = build_trees(self.entries)
        return self._trees

    @property
    def tree_sha(self) -> str:
        """The sha of the commit's root tree."""
        return self.trees[""].sha

    def files(self) -> dict[str, bytes]:
        """Path -> content of every blob (files and symlinks) in the commit."""
        return {p: e.content for p, e in self.entries.items() if e.content is not None}


def make_commit(
    entries: dict[str, Entry], *, parents: list[str], message: str, author: str, timestamp: str
) -> Commit:
    """Create a commit whose sha is derived from its content, parents and a process-wide counter."""
    probe = Commit("", entries, parents, message, author, timestamp)
    body = (
        f"tree {probe.tree_sha}\n"
        + "".join(f"parent {p}\n" for p in parents)
        + f"author {author} <{author}@users.noreply.github.com> {next(_commit_counter)} +0000\n\n"
        + message
        + "\n"
    ).encode()
    probe.sha = git_object_sha("commit", body)
    return probe


# --------------------------------------------------------------------------------------------
# Diffs
# --------------------------------------------------------------------------------------------


def is_binary(content: bytes) -> bool:
    """git's heuristic: a NUL byte in the first 8000 bytes means binary."""
    return b"\0" in content[:8000]


def unified_patch(old: bytes, new: bytes, *, context: int = 3) -> str:
    """Return the per-file unified diff as GitHub's ``patch`` field shows it.

    That is git's output without the ``diff --git``/``---``/``+++`` header lines: hunks only,
    each starting with ``@@ -a,b +c,d @@`` (plus git's function-name context), lines joined with
    ``\\n`` and no final newline; ``\\ No newline at end of file`` after a last line without one.
    """
    a = old.decode("utf-8", "replace").splitlines(keepends=True)
    b = new.decode("utf-8", "replace").splitlines(keepends=True)
    out: list[str] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        first, last = group[0], group[-1]
        a_start, a_end, b_start, b_end = first[1], last[2], first[3], last[4]
        header = f"@@ -{_range(a_start, a_end)} +{_range(b_start, b_end)} @@"
        funcname = _funcname(a, a_start)
        out.append(f"{header} {funcname}" if funcname else header)
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out.extend(_lines(" ", a[i1:i2]))
                continue
            if tag in ("replace", "delete"):
                out.extend(_lines("-", a[i1:i2]))
            if tag in ("replace", "insert"):
                out.extend(_lines("+", b[j1:j2]))
    return "\n".join(out)


def _range(start: int, stop: int) -> str:
    """Format a hunk range like git: ``start,len``; ``start`` alone when len is 1."""
    length = stop - start
    beginning = start + 1
    if length == 1:
        return f"{beginning}"
    if length == 0:
        beginning -= 1
    return f"{beginning},{length}"


def _funcname(old_lines: list[str], hunk_start: int) -> str:
    """The last line before the hunk that git's default funcname pattern matches, trimmed."""
    for line in reversed(old_lines[:hunk_start]):
        if _FUNCNAME.match(line):
            return line.rstrip("\r\n")[:80].rstrip()
    return ""


def _lines(prefix: str, lines: Iterable[str]) -> list[str]:
    result: list[str] = []
    for line in lines:
        if line.endswith("\n"):
            result.append(prefix + line[:-1])
        else:
            result.append(prefix + line)
            result.append("\\ No newline at end of file")
    return result


_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass(frozen=True)
class Hunk:
    """One ``@@`` hunk of a patch with the lines a review comment may anchor to on each side."""

    index: int
    right: frozenset[int]  # new-file line numbers: added and context lines
    left: frozenset[int]  # old-file line numbers: removed and context lines
    #: position (1-based line offset below the file's first ``@@``) -> (side, line)
    positions: tuple[tuple[int, str, int], ...]


def parse_hunks(patch: str) -> list[Hunk]:
    """Parse a ``patch`` into hunks with their commentable lines (RIGHT and LEFT)."""
    hunks: list[Hunk] = []
    right: set[int] = set()
    left: set[int] = set()
    positions: list[tuple[int, str, int]] = []
    old_no = new_no = 0
    started = False
    for position, line in enumerate(patch.split("\n")):
        match = _HUNK.match(line)
        if match:
            if started:
                hunks.append(Hunk(len(hunks), frozenset(right), frozenset(left), tuple(positions)))
            right, left, positions = set(), set(), []
            old_no, new_no = int(match.group(1)), int(match.group(3))
            started = True
            continue
        if not started or line.startswith("\\"):
            continue
        if line.startswith("+"):
            right.add(new_no)
            positions.append((position, "RIGHT", new_no))
            new_no += 1
        elif line.startswith("-"):
            left.add(old_no)
            positions.append((position, "LEFT", old_no))
            old_no += 1
        else:
            right.add(new_no)
            left.add(old_no)
            positions.append((position, "RIGHT", new_no))
            old_no += 1
            new_no += 1
    if started:
        hunks.append(Hunk(len(hunks), frozenset(right), frozenset(left), tuple(positions)))
    return hunks


@dataclass
class FileDiff:
    """One entry of ``GET /pulls/{n}/files``: what changed in a file between two commits."""

    filename: str
    status: str  # added | removed | modified | renamed | changed
    sha: str | None  # blob sha at head (base blob for removed files); submodule commit sha
    additions: int
    deletions: int
    patch: str | None
    previous_filename: str | None = None

    @property
    def changes(self) -> int:
        """additions + deletions, as GitHub reports it."""
        return self.additions + self.deletions

    def hunks(self) -> list[Hunk]:
        """The hunks of :attr:`patch` (empty when the patch is omitted)."""
        return parse_hunks(self.patch) if self.patch else []


def _count(patch: str) -> tuple[int, int]:
    adds = dels = 0
    for line in patch.split("\n"):
        if line.startswith("+"):
            adds += 1
        elif line.startswith("-"):
            dels += 1
    return adds, dels


@dataclass
class DiffOptions:
    """Knobs for :func:`diff_commits`: which patches GitHub would leave out."""

    omit_patch: frozenset[str] = frozenset()
    max_patch_bytes: int = 1_000_000
    max_patch_lines: int = 20_000
    rename_threshold: float = 0.5


def _file_diff(
    path: str,
    old: Entry | None,
    new: Entry | None,
    options: DiffOptions,
    previous: str | None = None,
) -> FileDiff:
    if new is None:
        assert old is not None
        status, sha = "removed", old.sha
    elif previous is not None:
        status, sha = "renamed", new.sha
    elif old is None:
        status, sha = "added", new.sha
    elif old.mode != new.mode and old.sha == new.sha:
        status, sha = "changed", new.sha
    else:
        status, sha = "modified", new.sha
    old_bytes = old.content if old is not None and old.content is not None else b""
    new_bytes = new.content if new is not None and new.content is not None else b""
    if (old is not None and old.mode == MODE_SUBMODULE) or (
        new is not None and new.mode == MODE_SUBMODULE
    ):
        old_bytes = f"Subproject commit {old.sha}\n".encode() if old is not None else b""
        new_bytes = f"Subproject commit {new.sha}\n".encode() if new is not None else b""
    binary = is_binary(old_bytes) or is_binary(new_bytes)
    patch: str | None = None
    adds = dels = 0
    if not binary and old_bytes != new_bytes:
        patch = unified_patch(old_bytes, new_bytes)
        adds, dels = _count(patch)
        if (
            path in options.omit_patch
            or len(patch.encode()) > options.max_patch_bytes
            or patch.count("\n") + 1 > options.max_patch_lines
        ):
            patch = None  # GitHub keeps the counts but leaves the patch out
    return FileDiff(path, status, sha, adds, dels, patch, previous)


def diff_commits(base: Commit, head: Commit, options: DiffOptions | None = None) -> list[FileDiff]:
    """Compute GitHub's list of changed files between ``base`` and ``head``, sorted by path.

    Renames are detected between removed and added paths whose contents are identical or at
    least ``rename_threshold`` similar (git's default is 50%).
    """
    options = options or DiffOptions()
    old, new = base.entries, head.entries
    removed = [p for p in old if p not in new]
    added = [p for p in new if p not in old]
    renames: dict[str, str] = {}  # new path -> old path
    for new_path in added:
        new_entry = new[new_path]
        best: tuple[float, str] | None = None
        for old_path in removed:
            if old_path in renames.values():
                continue
            old_entry = old[old_path]
            if old_entry.content is None or new_entry.content is None:
                continue
            if old_entry.sha == new_entry.sha:
                score = 1.0
            else:
                score = difflib.SequenceMatcher(
                    None, old_entry.content.splitlines(), new_entry.content.splitlines()
                ).ratio()
            if score >= options.rename_threshold and (best is None or score > best[0]):
                best = (score, old_path)
        if best is not None:
            renames[new_path] = best[1]
    diffs: list[FileDiff] = []
    for path in sorted(set(old) | set(new)):
        if path in renames.values():
            continue
        if path in renames:
            diffs.append(_file_diff(path, old[renames[path]], new[path], options, renames[path]))
        elif path not in new:
            diffs.append(_file_diff(path, old[path], None, options))
        elif path not in old:
            diffs.append(_file_diff(path, None, new[path], options))
        elif old[path] != new[path]:
            diffs.append(_file_diff(path, old[path], new[path], options))
    return diffs
