"""Decoding and parsing one file, the way every part of the engine does it.

`decode` applies the PEP 263 cookie (else UTF-8) and rejects NUL bytes; `parse` guards
libcst with CPython's own parser (see `legacy_rules.engine.audit`, steps 1 to 3). Both return a
`Problem` (line, column, message) instead of raising, which the engine reports as TXA02.
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

import libcst as cst

_CHAIN_LIMIT = 4000
_BOOL_WORDS = re.compile(r"\b(?:and|or)\b")
_ADJACENT_STRINGS = re.compile(r"""["']\s+[rbfuRBFU]{0,2}["']""")
_BRACKETS = re.compile(r"[()\[\]{}]")
_MAX_BRACKET_DEPTH = 200
_NEWLINE = re.compile(r"\r\n?|\n")
_DEEP_STACK = 512 * 1024 * 1024

T = TypeVar("T")

#: libcst parses in this process (the audits' and TX007's summaries'); tests read it.
STATS = {"parses": 0}


def split_lines(text: str) -> list[str]:
    """Lines with their endings, split on \\n, \\r\\n and \\r only (like the parser)."""
    if not text:
        return []
    parts = _NEWLINE.split(text)
    ends = _NEWLINE.findall(text)
    lines = [p + e for p, e in zip(parts, ends, strict=False)]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


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
        return Problem(line, column, "source contains NUL bytes", len(split_lines(text)))
    return text


def _cpython_check(text: str) -> SyntaxError | Problem | None:
    """None when CPython parses the file and it is safe for libcst; a Problem when it is
    too deeply nested; the SyntaxError when CPython rejects it."""
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        message = exc.msg or "invalid syntax"
        if "too many nested" in message or "too complex" in message:
            return Problem(exc.lineno or 1, exc.offset or 1, message)
        return exc
    except (RecursionError, MemoryError):
        return Problem(1, 1, "expression too deeply nested to analyse")
    except ValueError as exc:  # e.g. source with NUL bytes
        return Problem(1, 1, str(exc))
    if (
        len(_BOOL_WORDS.findall(text)) >= _CHAIN_LIMIT
        or len(_ADJACENT_STRINGS.findall(text)) >= _CHAIN_LIMIT
    ):
        for node in ast.walk(tree):
            if isinstance(node, ast.BoolOp) and len(node.values) >= _CHAIN_LIMIT:
                return Problem(
                    node.lineno, node.col_offset + 1, "boolean expression too long to analyse"
                )
            if isinstance(node, ast.Constant | ast.JoinedStr) and node.end_lineno is not None:
                segment = ast.get_source_segment(text, node) or ""
                if len(_ADJACENT_STRINGS.findall(segment)) >= _CHAIN_LIMIT:
                    return Problem(
                        node.lineno, node.col_offset + 1, "string concatenation too long to analyse"
                    )
    return None


def _bracket_depth(text: str) -> int:
    depth = deepest = 0
    for match in _BRACKETS.finditer(text):
        if match.group() in "([{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth = max(depth - 1, 0)
    return deepest


def parse(text: str) -> cst.Module | Problem:
    checked = _cpython_check(text)
    if isinstance(checked, Problem):
        return checked
    if checked is None:
        STATS["parses"] += 1
        try:
            return cst.parse_module(text)
        except cst.ParserSyntaxError as exc:
            return _libcst_problem(exc)
        except Exception as exc:  # e.g. CSTValidationError for identifiers libcst rejects
            return Problem(1, 1, f"cannot parse: {exc}")
    # CPython 3.11 rejects the file. It may be newer syntax that libcst knows; try libcst on
    # a big stack unless the nesting alone is out of reach.
    cpython_error = checked
    if (
        _bracket_depth(text) > _MAX_BRACKET_DEPTH
        or len(_BOOL_WORDS.findall(text)) >= _CHAIN_LIMIT
        or len(_ADJACENT_STRINGS.findall(text)) >= _CHAIN_LIMIT
    ):
        return _syntax_problem(cpython_error)
    STATS["parses"] += 1
    try:
        return deep(lambda: cst.parse_module(text))
    except Exception:  # libcst rejects it too: CPython's message is the more precise one
        return _syntax_problem(cpython_error)


def _syntax_problem(exc: SyntaxError) -> Problem:
    message = exc.msg or "invalid syntax"
    return Problem(exc.lineno or 1, exc.offset or 1, f"syntax error: {message}")


_LIBCST_AT = re.compile(r"error at (\d+):(\d+)")


def _libcst_problem(exc: cst.ParserSyntaxError) -> Problem:
    message = exc.message
    match = _LIBCST_AT.search(message)
    if match:
        line, column = int(match.group(1)), int(match.group(2))
    else:
        line, column = exc.raw_line, exc.raw_column + 1
    message = message.removeprefix("parser error: ")
    return Problem(max(line, 1), max(column, 1), f"syntax error: {message}")


def deep(fn: Callable[[], T]) -> T:
    """Run `fn` on a thread with a large stack and a high recursion limit (for deeply
    nested code that CPython accepted; libcst's recursive code needs the room)."""
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
