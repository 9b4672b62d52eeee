"""Line/column positions of reported nodes, from CPython's `ast` offsets.

`ast` gives 1-based lines and 0-based column offsets in UTF-8 *bytes*; findings carry
1-based *character* columns (what editors, SARIF and GitHub count). A compound statement
(``async with ...:``) ends where the last statement of its body ends, as `ast` says.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Span:
    """A resolved source range (1-based lines, 1-based columns, end exclusive)."""

    line: int
    column: int
    end_line: int
    end_column: int


def char_column(line: str, byte_offset: int) -> int:
    """The 0-based character index of a UTF-8 byte offset in `line`."""
    if byte_offset <= 0 or line.isascii():
        return max(byte_offset, 0)
    return len(line.encode("utf-8")[:byte_offset].decode("utf-8", errors="ignore"))


def byte_offset(line: str, column: int) -> int:
    """The UTF-8 byte offset of 0-based character index `column` in `line`."""
    return column if line.isascii() else len(line[:column].encode("utf-8"))


def span_of(node: ast.AST, lines: Sequence[str]) -> Span | None:
    """The span of `node` (None when it has no position)."""
    line = getattr(node, "lineno", None)
    if line is None:
        return None
    end_line = getattr(node, "end_lineno", None) or line
    col = getattr(node, "col_offset", 0)
    end_col = getattr(node, "end_col_offset", None)
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    end_text = lines[end_line - 1] if 0 < end_line <= len(lines) else ""
    start = char_column(text, col)
    end = char_column(end_text, end_col) if end_col is not None else start
    return Span(line, start + 1, end_line, end + 1)


def resolve_spans(nodes: Iterable[ast.AST], lines: Sequence[str]) -> dict[int, Span]:
    """id(node) -> Span for each node (nodes without a position are left out)."""
    spans: dict[int, Span] = {}
    for node in nodes:
        span = span_of(node, lines)
        if span is not None:
            spans[id(node)] = span
    return spans


def source_segment(node: ast.AST, lines: Sequence[str]) -> str:
    """The source text of `node` ("" when it has no position)."""
    span = span_of(node, lines)
    if span is None:
        return ""
    if span.line == span.end_line:
        return lines[span.line - 1][span.column - 1 : span.end_column - 1]
    first = lines[span.line - 1][span.column - 1 :]
    middle = lines[span.line : span.end_line - 1]
    last = lines[span.end_line - 1][: span.end_column - 1] if span.end_line <= len(lines) else ""
    return first + "".join(middle) + last
