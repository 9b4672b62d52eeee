"""Local I/O for the command line: find the config and the files, read them, run git.

The engine (`rules.engine.audit.audit_source`) takes bytes and returns findings; everything that
touches the disk, spawns processes or runs git for `txaudit check|diff|report` lives here.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import tokenize
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

from unidiff import PatchSet
from unidiff.errors import UnidiffParseError

from bot.cli.cache import Reads, ResultCache, paths_digest
from bot.review.patch import PatchLines
from rules.engine import follows_calls
from rules.engine.callgraph import source_digest
from rules.engine.config import (
    CONFIG_PATHS,
    Config,
    ConfigError,
    find_config,
    load_config_file,
    parse_config_text,
)
from rules.engine.model import FileResult, Finding

#: Directories never entered when recursing (besides hidden ones and virtualenvs).
SKIP_DIRS = frozenset(
    {
        "__pycache__",
        "__pypackages__",
        "node_modules",
        "site-packages",
        "venv",
        "env",
        "buck-out",
        "_build",
    }
)
PYTHON_SUFFIXES = (".py", ".pyi")
#: More files than this are audited in a process pool; fewer in-process.
PARALLEL_THRESHOLD = 32
#: Files larger than this are not audited (an entry in `errors`).
MAX_FILE_BYTES = 20 * 1024 * 1024
#: How often `--fix` re-audits a file whose fixes uncovered more fixable findings.
FIX_ROUNDS = 5


class UsageError(Exception):
    """A problem with the command line or the environment; `str()` is one line."""


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file to audit: where it is, its path for the config, and its path for output."""

    abs_path: Path
    rel: str  # relative to the project root, "/"-separated (include/exclude, overrides)
    display: str  # relative to the working directory (or repo root for `diff`)


@dataclass(frozen=True, slots=True)
class Project:
    """The tree being audited: its root, its config, and where guide paths are relative to."""

    root: Path
    config: Config
    config_path: Path | None


# --- paths -------------------------------------------------------------------------------


def display_path(path: Path, cwd: Path) -> str:
    """`path` relative to `cwd` with "/" (absolute when on another drive)."""
    try:
        return Path(os.path.relpath(path, cwd)).as_posix()
    except ValueError:
        return path.as_posix()


def _is_within(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def _root_for_config(config_path: Path) -> Path | None:
    """The project root a config file belongs to, or None if it says nothing about one."""
    if config_path.name == "pyproject.toml":
        return config_path.parent
    if config_path.parent.name == ".github":
        return config_path.parent.parent
    return None


def _git_root(start: Path) -> Path | None:
    for directory in (start, *start.parents):
        if (directory / ".git").exists():
            return directory
    return None


def load_project(first_path: Path, config_file: Path | None, cwd: Path) -> Project:
    """Find the project root and config for a tree (like ruff: the nearest config wins).

    Walks up from `first_path` to the first directory that has `.github/txaudit.yml` (or a
    `pyproject.toml` with `[tool.txaudit]`), stopping at the git root. Without one, the root
    is the git root, else the working directory (or the path itself when outside it).
    """
    start = first_path if first_path.is_dir() else first_path.parent
    start = start.resolve()
    git_root = _git_root(start)
    if config_file is not None:
        config = _load_config(config_file.resolve(), cwd)
        root = _root_for_config(config_file.resolve()) or git_root or _default_root(start, cwd)
        return Project(root=root, config=config, config_path=config_file)
    for directory in (start, *start.parents):
        found = find_config(directory)
        if found is not None:
            config = _load_config(found, cwd)
            return Project(root=directory, config=config, config_path=found)
        if directory == git_root:
            break
    return Project(root=git_root or _default_root(start, cwd), config=Config(), config_path=None)


def _load_config(path: Path, cwd: Path) -> Config:
    """Parse a config file; messages name it relative to `cwd`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return load_config_file(path)  # raises the ConfigError that says why
    return parse_config_text(text, filename=display_path(path, cwd))


def _default_root(start: Path, cwd: Path) -> Path:
    cwd = cwd.resolve()
    return cwd if _is_within(start, cwd) else start


def _skip_dir(directory: Path, name: str) -> bool:
    if name.startswith(".") or name in SKIP_DIRS:
        return True
    return (directory / name / "pyvenv.cfg").exists()


def discover(paths: Sequence[str], project: Project, cwd: Path) -> list[SourceFile]:
    """The Python files under `paths` that the config includes, sorted, without duplicates.

    Folders are walked (skipping hidden folders, virtualenvs and caches; symlinked folders
    are not followed) and filtered by `paths.include`/`paths.exclude` relative to the
    project root. A file named explicitly is audited if it is a Python file, like ruff.
    """
    root = project.root.resolve()
    found: dict[Path, SourceFile] = {}

    def add(file: Path) -> None:
        resolved = file.resolve()
        if resolved in found:
            return
        rel = resolved.relative_to(root).as_posix() if _is_within(resolved, root) else None
        display = display_path(file.absolute(), cwd)
        found[resolved] = SourceFile(abs_path=resolved, rel=rel or display, display=display)

    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise UsageError(f"{raw}: no such file or directory")
        if path.is_file():
            if path.suffix in PYTHON_SUFFIXES:
                add(path)
            continue
        base = path.resolve()
        for dirpath, dirnames, filenames in os.walk(base):
            directory = Path(dirpath)
            dirnames[:] = sorted(d for d in dirnames if not _skip_dir(directory, d))
            for name in filenames:
                if not name.endswith(PYTHON_SUFFIXES):
                    continue
                file = directory / name
                rel = file.relative_to(root).as_posix() if _is_within(file, root) else None
                if rel is None or project.config.includes(rel):
                    add(Path(path, file.relative_to(base)))
    return sorted(found.values(), key=lambda f: f.display)


# --- auditing ----------------------------------------------------------------------------

_WORKER_STATE: dict[str, Any] = {}


def _engine() -> Callable[..., FileResult]:
    from rules.engine import audit_source

    return audit_source


def build_project_index(root: Path, config: Config, *, rev: str | None = None) -> object | None:
    """The TX007 module index of the tree at `root` (at commit `rev` if given), or None.

    Modules are read lazily, from disk or with `git show`, only when a call is followed.
    """
    try:
        from rules.engine.callgraph import ProjectIndex
    except ImportError:
        return None
    if rev is None:
        return ProjectIndex.from_disk(root, config)
    listing = git(["ls-tree", "-r", "-z", "--name-only", rev], root).stdout
    paths = [p for p in listing.decode("utf-8", "surrogateescape").split("\0") if p]

    def load(path: str) -> bytes | None:
        proc = git(["show", f"{rev}:{path}"], root, check=False)
        return proc.stdout if proc.returncode == 0 else None

    return ProjectIndex(paths, load, max_modules=None, config=config, root=root)


def index_for(
    paths: Sequence[str], root: Path, config: Config, *, rev: str | None = None
) -> object | None:
    """`build_project_index` for auditing `paths`, or None when TX007 is off for all of them
    (nothing would read the index)."""
    return build_project_index(root, config, rev=rev) if follows_calls(config, paths) else None


def audit_bytes(source: bytes, rel: str, config: Config, project: object | None) -> FileResult:
    """Run the engine on one file; an engine crash becomes a file-level error, not a crash."""
    try:
        return _engine()(source, rel, config, project=project)
    except NotImplementedError:
        raise
    except Exception as exc:  # a bug in a rule must not stop the other files
        return FileResult(path=rel, error=f"internal error: {type(exc).__name__}: {exc}")


def _read_source(file: SourceFile) -> bytes | FileResult:
    """The file's bytes, or the result that says why they cannot be audited."""
    try:
        size = file.abs_path.stat().st_size
        if size > MAX_FILE_BYTES:
            return FileResult(path=file.rel, error=f"skipped: larger than {MAX_FILE_BYTES} bytes")
        return file.abs_path.read_bytes()
    except OSError as exc:
        return FileResult(path=file.rel, error=f"cannot read: {exc.strerror or exc}")


def read_and_audit(file: SourceFile, config: Config, project: object | None) -> FileResult:
    """Read one file from disk and audit it."""
    return _audit_tracked(file, config, project)[0]


def _audit_tracked(
    file: SourceFile, config: Config, project: object | None
) -> tuple[FileResult, str | None, Reads]:
    """Read one file from disk and audit it: the result, the SHA-1 of the bytes audited
    (None if unread) and what TX007 read of the module index (for the result cache)."""
    track = getattr(project, "track", None)
    if track is not None:
        track()
    try:
        source = _read_source(file)
        if isinstance(source, FileResult):
            return source, None, None
        result = audit_bytes(source, file.rel, config, project)
    finally:
        reads = project.tracked() if track is not None else None  # type: ignore[union-attr]
    return result, source_digest(source), reads


def _init_worker(config: Config, index_root: Path | None) -> None:
    _WORKER_STATE["config"] = config
    # Each worker builds its own (lazy) module index: the index holds a lock and a cache.
    _WORKER_STATE["project"] = (
        build_project_index(index_root, config) if index_root is not None else None
    )


def _worker(file: SourceFile) -> tuple[FileResult, str | None, Reads]:
    return _audit_tracked(file, _WORKER_STATE["config"], _WORKER_STATE["project"])


def audit_files(
    files: Sequence[SourceFile],
    config: Config,
    *,
    root: Path | None = None,
    jobs: int | None = None,
    cache: ResultCache | None = None,
) -> list[FileResult]:
    """Audit `files` (in a process pool when there are many) with paths for display.

    `root` enables TX007's cross-module resolution over the tree at `root` (no module index
    is built when TX007 is off for every file). With `cache`,
    results still valid there are reused and the fresh ones are stored. Results come back
    in the order of `files`, so output is deterministic.
    """
    results: list[FileResult | None] = [None] * len(files)
    index = index_for([f.rel for f in files], root, config) if root is not None else None
    tree_paths = paths_digest(getattr(index, "paths", frozenset())) if cache is not None else ""
    imports = _scan(files, index, cache, tree_paths, results)
    pending = [i for i, result in enumerate(results) if result is None]
    callee_first = getattr(index, "callee_first", None)
    if callee_first is not None and len(pending) > 1:
        # A module before the files that import it: its audit keeps its summary for them.
        paths = [files[i].rel for i in pending]
        ranked = callee_first(paths, [imports.get(i, set()) for i in pending])
        pending = [pending[k] for k in ranked]
    todo = [files[i] for i in pending]
    workers = jobs if jobs and jobs > 0 else (os.cpu_count() or 1)
    if workers > 1 and len(todo) > PARALLEL_THRESHOLD:
        from concurrent.futures import ProcessPoolExecutor  # ~15 ms: only for a pool

        chunk = max(1, len(todo) // (workers * 8))
        with ProcessPoolExecutor(
            max_workers=min(workers, len(todo)),
            initializer=_init_worker,
            initargs=(config, root if index is not None else None),
        ) as pool:
            fresh = list(pool.map(_worker, todo, chunksize=chunk))
    else:
        fresh = [_audit_tracked(f, config, index) for f in todo]
    for i, (result, digest, reads) in zip(pending, fresh, strict=True):
        results[i] = result
        if cache is not None and digest is not None:
            cache.put(files[i].rel, digest, result, reads, tree_paths)
    if cache is not None:
        cache.save()
    done = [r for r in results if r is not None]
    return [relocate(result, f.display) for result, f in zip(done, files, strict=True)]


def _scan(
    files: Sequence[SourceFile],
    index: object | None,
    cache: ResultCache | None,
    tree_paths: str,
    results: list[FileResult | None],
) -> dict[int, set[str]]:
    """Read each file once: fill `results` with the cache's valid entries, and return what
    each file still to audit imports (`ProjectIndex.imports_of`, for the audit order).
    `index` is the tree's module index (its loader gives the cache the modules' bytes)."""
    imports_of = getattr(index, "imports_of", None)
    if cache is None and imports_of is None:
        return {}
    loader = getattr(index, "load", None)
    now: dict[str, str | None] = {}

    def current(module: str) -> str | None:
        if module not in now:
            source = loader(module) if loader is not None else None
            now[module] = source_digest(source) if source is not None else None
        return now[module]

    imports: dict[int, set[str]] = {}
    for i, file in enumerate(files):
        source = _read_source(file)
        if isinstance(source, FileResult):
            continue  # the audit reads it again and says why it cannot be audited
        if cache is not None:
            results[i] = cache.get(file.rel, source_digest(source), current, tree_paths)
        if results[i] is None and imports_of is not None:
            imports[i] = imports_of(file.rel, source)
    return imports


#: "(app/services/adapter.py:68)": a project-relative location inside a message (TX007).
_MESSAGE_LOCATION = re.compile(r"\((?P<path>[^()\s]+\.py):(?P<line>\d+)\)")


def relocate(result: FileResult, display: str) -> FileResult:
    """`result` with its own and its findings' paths set to `display`.

    Locations inside messages (TX007's callee) are project-relative like `result.path`;
    they get the same prefix so that they read relative to the working directory too.
    """
    prefix = display[: -len(result.path)] if display.endswith(result.path) else ""

    def moved(finding: Finding) -> Finding:
        message = finding.message
        if prefix:
            message = _MESSAGE_LOCATION.sub(lambda m: f"({prefix}{m['path']}:{m['line']})", message)
        return dataclasses.replace(finding, path=display, message=message)

    findings = tuple(moved(f) for f in result.findings)
    return dataclasses.replace(result, path=display, findings=findings)


# --- --fix -------------------------------------------------------------------------------


def _apply_fixes() -> Callable[[str, Sequence[Finding]], str]:
    from rules.engine import apply_fixes

    return apply_fixes


def fix_file(
    file: SourceFile,
    result: FileResult,
    config: Config,
    *,
    wanted: Callable[[Finding], bool],
    project: object | None = None,
) -> tuple[FileResult, int]:
    """Apply the autofixes of `wanted` findings in place; the re-audited result and the count."""
    apply = _apply_fixes()
    fixed = 0
    for _ in range(FIX_ROUNDS):
        fixable = [f for f in result.findings if f.fix is not None and wanted(f)]
        if not fixable:
            break
        raw = file.abs_path.read_bytes()
        encoding = tokenize.detect_encoding(BytesIO(raw).readline)[0]
        text = raw.decode(encoding)
        new_text = apply(text, fixable)
        if new_text == text:
            break
        file.abs_path.write_bytes(new_text.encode(encoding))
        fixed += len(fixable)
        result = relocate(read_and_audit(file, config, project), file.display)
    return result, fixed


# --- git ---------------------------------------------------------------------------------


def git(
    args: Sequence[str], cwd: Path, *, check: bool = True
) -> subprocess.CompletedProcess[bytes]:
    """Run `git` (never through a shell); a failure raises `UsageError` with git's message."""
    try:
        proc = subprocess.run(
            ["git", "-c", "core.quotePath=false", *args],
            cwd=cwd,
            capture_output=True,
            check=False,
        )
    except FileNotFoundError:
        raise UsageError("git is not installed or not on PATH") from None
    if check and proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = message[-1] if message else f"exit status {proc.returncode}"
        raise UsageError(f"git {' '.join(args[:2])}: {detail}")
    return proc


def git_text(args: Sequence[str], cwd: Path) -> str:
    return git(args, cwd).stdout.decode("utf-8", "surrogateescape").strip()


def repo_root(cwd: Path) -> Path:
    proc = git(["rev-parse", "--show-toplevel"], cwd, check=False)
    if proc.returncode != 0:
        raise UsageError(f"{cwd}: not inside a git repository (txaudit diff needs one)")
    return Path(proc.stdout.decode("utf-8", "surrogateescape").strip())


def _commit(rev: str, root: Path) -> str | None:
    proc = git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], root, check=False)
    return proc.stdout.decode().strip() if proc.returncode == 0 else None


DEFAULT_BASES = ("origin/HEAD", "main", "master")


def resolve_base(base: str | None, head: str | None, root: Path) -> tuple[str, str]:
    """(label, sha) of the merge base of `base` (or the first of DEFAULT_BASES) and head."""
    head_sha = _commit(head or "HEAD", root)
    if head is not None and head_sha is None:
        raise UsageError(f"--head {head}: unknown revision")
    candidates = (base,) if base is not None else DEFAULT_BASES
    for candidate in candidates:
        sha = _commit(candidate, root)
        if sha is None:
            continue
        if head_sha is None:  # no commit yet
            return candidate, sha
        proc = git(["merge-base", sha, head_sha], root, check=False)
        merge_base = proc.stdout.decode().strip()
        return candidate, merge_base if proc.returncode == 0 and merge_base else sha
    if base is not None:
        raise UsageError(f"--base {base}: unknown revision")
    raise UsageError("no base revision found (no origin/HEAD, main or master); pass --base REV")


def config_at(rev: str, root: Path) -> Config:
    """The config as of commit `rev` (the bot reads the base commit's); defaults if none."""
    for rel in (*CONFIG_PATHS, "pyproject.toml"):
        proc = git(["show", f"{rev}:{rel}"], root, check=False)
        if proc.returncode != 0:
            continue
        text = proc.stdout.decode("utf-8", "replace")
        if rel == "pyproject.toml" and "txaudit" not in text:
            continue
        return parse_config_text(text, filename=rel)
    return Config()


@dataclass(frozen=True, slots=True)
class ChangedFile:
    """A Python file the diff touches, and which of its lines the diff adds."""

    path: str  # repo-relative
    patch: PatchLines
    untracked: bool = False


def changed_files(
    base_sha: str, head: str | None, root: Path, *, context: int
) -> list[ChangedFile]:
    """The Python files changed between `base_sha` and `head` (default: the working tree).

    For the working tree, untracked files that git does not ignore count as wholly added:
    they are what the next commit of the pull request will most likely contain.
    """
    args = [
        "diff",
        f"--unified={context}",
        "--no-color",
        "--no-ext-diff",
        "--find-renames",
        "--diff-filter=d",
        base_sha,
    ]
    if head is not None:
        args.append(head)
    args += ["--", *(f"*{suffix}" for suffix in PYTHON_SUFFIXES)]
    raw = git(args, root).stdout.decode("utf-8", "surrogateescape")
    try:
        patch_set = PatchSet(raw)
    except UnidiffParseError as exc:
        raise UsageError(f"cannot parse git diff output: {exc}") from None
    changed: dict[str, ChangedFile] = {}
    for patched in patch_set:
        path = patched.path
        if patched.is_removed_file or not path.endswith(PYTHON_SUFFIXES):
            continue
        added: set[int] = set()
        commentable: set[int] = set()
        hunks: list[tuple[int, int]] = []
        for hunk in patched:
            for line in hunk:
                if line.is_added and line.target_line_no is not None:
                    added.add(line.target_line_no)
                    commentable.add(line.target_line_no)
                elif line.is_context and line.target_line_no is not None:
                    commentable.add(line.target_line_no)
            if hunk.target_length > 0:
                hunks.append((hunk.target_start, hunk.target_start + hunk.target_length - 1))
        changed[path] = ChangedFile(
            path, PatchLines(frozenset(added), frozenset(commentable), tuple(hunks))
        )
    if head is None:
        for path in _untracked(root):
            count = _line_count(root / path)
            lines = frozenset(range(1, count + 1))
            hunks_all = ((1, count),) if count else ()
            changed[path] = ChangedFile(path, PatchLines(lines, lines, hunks_all), untracked=True)
    return [changed[p] for p in sorted(changed)]


@dataclass(frozen=True, slots=True)
class DiffAudit:
    """What `txaudit diff` audited: the range, the config and each changed file's result."""

    root: Path
    label: str  # what the base was resolved from ("main", "--base abc123", ...)
    base_sha: str  # the merge base
    head: str | None  # the head revision; None: the working tree
    config: Config
    changed: tuple[ChangedFile, ...]
    results: tuple[FileResult, ...]  # one per changed file, in the same order
    #: The findings to show: on changed lines (by the filter), after --select/--ignore.
    findings: tuple[Finding, ...]


def _untracked(root: Path) -> Iterable[str]:
    out = git(["ls-files", "--others", "--exclude-standard", "-z"], root).stdout
    for item in out.decode("utf-8", "surrogateescape").split("\0"):
        if item.endswith(PYTHON_SUFFIXES):
            yield item


def _line_count(path: Path) -> int:
    try:
        data = path.read_bytes()
    except OSError:
        return 0
    return len(data.splitlines())


def read_at(path: str, head: str | None, root: Path) -> bytes:
    """The content of repo-relative `path` at `head` (None: the working tree)."""
    if head is None:
        return (root / path).read_bytes()
    proc = git(["show", f"{head}:{path}"], root, check=False)
    if proc.returncode != 0:
        raise OSError(f"not in {head}")
    return proc.stdout


def check_config_path(path: str | None) -> Path | None:
    """`--config FILE` as a Path, or a `ConfigError` naming it when it does not exist."""
    if path is None:
        return None
    config_path = Path(path)
    if not config_path.is_file():
        raise ConfigError(f"{path}: config file not found")
    return config_path
