"""Decoding and parsing one file, the way every part of the engine does it.

`decode` applies the PEP 263 cookie (else UTF-8) and rejects NUL bytes; `parse` is CPython's
own parser (see `rules.engine.audit`, steps 1 and 2). Both return a `Problem` (line, column,
message) instead of raising, which the engine reports as TXA02.
Imports nothing from the rest of the engine.
"""

from __future__ import annotations

import ast
import io
import re
import sys
import threading
import tokenize
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

_NEWLINE = re.compile(r"\r\n?|\n")
#: Characters that `str.splitlines` also breaks on, but the parser does not.
_OTHER_BREAKS = re.compile("[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_DEEP_STACK = 512 * 1024 * 1024

T = TypeVar("T")

#: Parses in this process (the audits' and TX007's summaries'); tests read it.
STATS = {"parses": 0}


def split_lines(text: str) -> list[str]:
    """Lines with their endings, split on \\n, \\r\\n and \\r only (like the parser)."""
    if not text:
        return []
    if _OTHER_BREAKS.search(text) is None:  # then str.splitlines splits the same way, faster
        return text.splitlines(keepends=True)
    parts = _NEWLINE.split(text)
    ends = _NEWLINE.findall(text)
    lines = [p + e for p, e in zip(parts, ends, strict=False)]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def count_lines(text: str) -> int:
    """`len(split_lines(text))`, without building the lines."""
    endings = text.count("\n") + text.count("\r") - text.count("\r\n")
    return endings + (0 if not text or text.endswith(("\n", "\r")) else 1)


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    column: int
    message: str
    lines: int = 0


def decode(source: bytes) -> str | Problem:
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(source).readline)
    except SyntaxError as exc:
        return Problem(getattr(exc, "lineno", None) or 1, 1, f"cannot decode: {exc.msg}")
    try:
        text = source.decode(encoding)
    except UnicodeDecodeError as exc:
        line = source.count(b"\n", 0, exc.start) + 1
        column = exc.start - (source.rfind(b"\n", 0, exc.start) + 1) + 1
        shown = "utf-8" if encoding == "utf-8-sig" else encoding
        return Problem(
            line, column, f"cannot decode as {shown}: {exc.reason}", len(source.splitlines())
        )
    except LookupError as exc:
        return Problem(1, 1, f"cannot decode: {exc}")
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        column = nul - (text.rfind("\n", 0, nul) + 1) + 1
        return Problem(line, column, "source contains NUL bytes", count_lines(text))
    return text


def parse(text: str) -> ast.Module | Problem:
    """The file's `ast` tree, or the Problem that TXA02 reports: a syntax error (naming
    the Python version a newer construct needs), or code too deeply nested for CPython."""
    STATS["parses"] += 1
    try:
        return ast.parse(text)
    except SyntaxError as exc:
        message = exc.msg or "invalid syntax"
        if "too many nested" in message or "too complex" in message:
            return Problem(exc.lineno or 1, exc.offset or 1, message)
        return _syntax_problem(exc, text)
    except (RecursionError, MemoryError):
        return Problem(1, 1, "expression too deeply nested to analyse")
    except ValueError as exc:  # e.g. source with NUL bytes
        return Problem(1, 1, str(exc))


#: Constructs of newer Pythons that this Python's parser rejects, by the line they start.
_NEWER_SYNTAX: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"^\s*type\s+[A-Za-z_]\w*\s*[\[=]"), "a `type` statement (PEP 695)", "3.12"),
    (
        re.compile(r"^\s*(?:async\s+)?(?:def|class)\s+[A-Za-z_]\w*\s*\["),
        "type parameters (PEP 695)",
        "3.12",
    ),
    (
        re.compile(r"^\s*except\*?\s+[^(\s:][^:]*,[^:]*:"),
        "`except` with unparenthesised types (PEP 758)",
        "3.14",
    ),
)


def newer_syntax(line: str) -> tuple[str, str] | None:
    """(what, version) when `line` starts a construct that needs a newer Python."""
    running = sys.version_info[:2]
    for pattern, what, version in _NEWER_SYNTAX:
        needed = tuple(int(p) for p in version.split("."))
        if running < needed and pattern.match(line):
            return what, version
    return None


def _syntax_problem(exc: SyntaxError, text: str) -> Problem:
    message = exc.msg or "invalid syntax"
    line = exc.lineno or 1
    lines = split_lines(text)
    newer = newer_syntax(lines[line - 1]) if 0 < line <= len(lines) else None
    if newer is not None:
        what, version = newer
        running = ".".join(map(str, sys.version_info[:2]))
        message = (
            f"{message}: this line uses {what}, Python {version} syntax; txaudit parses with "
            f"the grammar of the Python it runs on ({running}): run it on Python {version} "
            "or newer to audit this file"
        )
    return Problem(line, exc.offset or 1, f"syntax error: {message}")


def deep(fn: Callable[[], T]) -> T:
    """Run `fn` on a thread with a large stack and a high recursion limit (for deeply
    nested code that CPython accepted, when a recursive helper needs the room)."""
    result: list[Any] = []
    error: list[BaseException] = []

    def run() -> None:
        old_limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(old_limit, 60_000))
        try:
            result.append(fn())
        except BaseException as exc:  # re-raised on the calling thread
            error.append(exc)
        finally:
            sys.setrecursionlimit(old_limit)

    old = threading.stack_size()
    threading.stack_size(_DEEP_STACK)
    try:
        thread = threading.Thread(target=run, name="txaudit-deep")
        thread.start()
    finally:
        threading.stack_size(old)
    thread.join()
    if error:
        raise error[0]
    return result[0]  # type: ignore[no-any-return]
