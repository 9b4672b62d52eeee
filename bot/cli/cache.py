"""The on-disk result cache of `txaudit check` and `txaudit report` (like ruff's cache).

An entry is one file's `FileResult`, stored under its path with the SHA-1 of its bytes. It is
used again only while all of these are unchanged:

* the file's bytes;
* the engine: the source of the `rules` package, the Python version, `CACHE_FORMAT`;
* the configuration (one cache file per configuration and project root);
* for a file whose TX007 resolution used the module index: the bytes of every module it
  read and the tree's set of Python paths (a new module can change what an import means);
* for a file with an ``until=`` suppression: the day (the suppression may expire).

The cache lives outside the checkout, in `$TXAUDIT_CACHE_DIR`, else `$XDG_CACHE_HOME/txaudit`,
else `~/.cache/txaudit`, so that a pull request cannot ship entries that hide its findings.
It is JSON: nothing in it is executed. A cache that cannot be read is ignored, one that
cannot be written is skipped; neither fails the run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from rules.engine.config import Config
from rules.engine.model import FileResult, Finding, Fix, Severity, Suppression

#: Bump when the entry layout changes.
CACHE_FORMAT = 1
CACHE_DIR_ENV = "TXAUDIT_CACHE_DIR"
#: Result files kept per cache directory (one per project and configuration).
MAX_CACHE_FILES = 32

#: Settings for the exit status and the app's review, which no finding depends on: they are
#: left out of the key, so that `--fail-on` does not start an empty cache.
_NOT_READ_BY_THE_ENGINE: dict[str, Any] = {
    field.name: field.default
    for field in dataclasses.fields(Config)
    if field.name
    in {"fail_on", "on_error", "filter", "comments_max", "comments_suggestions", "source"}
}

#: What a fresh audit used of the module index: path -> SHA-1 (None: absent), or None.
Reads = dict[str, str | None] | None


def default_directory() -> Path:
    """$TXAUDIT_CACHE_DIR, else $XDG_CACHE_HOME/txaudit, else ~/.cache/txaudit."""
    explicit = os.environ.get(CACHE_DIR_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "txaudit"


def _engine_digest() -> str:
    import rules

    digest = hashlib.sha1(f"{CACHE_FORMAT}|{sys.implementation.name}|{sys.version}".encode())
    package = Path(rules.__file__).parent
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def paths_digest(paths: frozenset[str]) -> str:
    """The fingerprint of a tree's set of Python paths."""
    return hashlib.sha1("\n".join(sorted(paths)).encode()).hexdigest()


class ResultCache:
    """The entries of one project root and configuration, loaded once and saved once."""

    def __init__(self, file: Path, *, today: date) -> None:
        self.file = file
        self.today = today.isoformat()
        self.entries: dict[str, dict[str, Any]] = {}
        self._dirty = False
        try:
            loaded = json.loads(file.read_text(encoding="utf-8"))
            if isinstance(loaded, dict) and isinstance(loaded.get("entries"), dict):
                self.entries = loaded["entries"]
        except (OSError, ValueError):
            pass  # no cache yet, or a damaged one: start empty

    @classmethod
    def open(cls, directory: Path, root: Path, config: Config) -> ResultCache:
        audited = dataclasses.replace(config, **_NOT_READ_BY_THE_ENGINE)
        key = hashlib.sha1(
            f"{_engine_digest()}|{root.resolve()}|{audited!r}".encode("utf-8", "surrogateescape")
        ).hexdigest()[:24]
        return cls(directory / f"results-{key}.json", today=config.today or date.today())

    def get(
        self, path: str, digest: str, current: Callable[[str], str | None], tree_paths: str
    ) -> FileResult | None:
        """The stored result of `path` if nothing it depends on changed, else None.
        `current(module)` is the SHA-1 of a module's bytes now (None: absent)."""
        entry = self.entries.get(path)
        if not isinstance(entry, dict) or entry.get("sha1") != digest:
            return None
        try:
            if entry.get("day") not in (None, self.today):
                return None
            reads = entry.get("reads")
            if reads is not None:
                if entry.get("paths") != tree_paths:
                    return None
                if any(current(module) != sha for module, sha in reads.items()):
                    return None
            result = _result_from_json(entry["result"])
        except (KeyError, TypeError, ValueError):
            return None
        return result

    def put(
        self, path: str, digest: str, result: FileResult, reads: Reads, tree_paths: str
    ) -> None:
        """Store a fresh result (results with a file-level error are not stored)."""
        if result.error is not None:
            return
        dated = any(s.until is not None for s in result.suppressions)
        self.entries[path] = {
            "sha1": digest,
            "day": self.today if dated else None,
            "reads": reads,
            "paths": tree_paths if reads is not None else None,
            "result": dataclasses.asdict(result),
        }
        self._dirty = True

    def save(self) -> None:
        """Write the entries atomically; best effort."""
        if not self._dirty:
            return
        import tempfile

        directory = self.file.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
            _mark_cache_directory(directory)
            handle, temp = tempfile.mkstemp(dir=directory, prefix=".results-", suffix=".tmp")
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump({"format": CACHE_FORMAT, "entries": self.entries}, out, default=_enum)
            os.replace(temp, self.file)
            _prune(directory, keep=self.file)
        except OSError:
            with contextlib.suppress(OSError, UnboundLocalError):
                os.unlink(temp)


def _enum(value: object) -> object:
    if isinstance(value, Severity):
        return value.value
    raise TypeError(f"not serialisable: {type(value).__name__}")


def _result_from_json(data: dict[str, Any]) -> FileResult:
    findings = tuple(
        Finding(
            **{
                **f,
                "severity": Severity(f["severity"]),
                "fix": Fix(**f["fix"]) if f.get("fix") else None,
            }
        )
        for f in data["findings"]
    )
    suppressions = tuple(
        Suppression(**{**s, "rule_ids": tuple(s["rule_ids"])}) for s in data["suppressions"]
    )
    return FileResult(**{**data, "findings": findings, "suppressions": suppressions})


def _mark_cache_directory(directory: Path) -> None:
    """A CACHEDIR.TAG (backup tools skip the folder) and a .gitignore of everything."""
    tag = directory / "CACHEDIR.TAG"
    if not tag.exists():
        tag.write_text(
            "Signature: 8a477f597d28d172789f06886806bc55\n# txaudit's result cache\n",
            encoding="utf-8",
        )
    ignore = directory / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n", encoding="utf-8")


def _prune(directory: Path, *, keep: Path) -> None:
    """Delete the least recently written result files past `MAX_CACHE_FILES`."""
    files = sorted(directory.glob("results-*.json"), key=lambda p: p.stat().st_mtime)
    for old in files[: max(0, len(files) - MAX_CACHE_FILES)]:
        if old != keep:
            with contextlib.suppress(OSError):
                old.unlink()
