"""Line/column positions for the few nodes that are reported, without PositionProvider.

libcst's PositionProvider records a range for every node of the file (about 1.5x the parse
time on real code). Findings need the positions of a handful of nodes, so this replays the
module's code generation with a state that only counts characters, notes the syntactic
start and end of the wanted nodes, and stops as soon as the last one has been seen.
Ranges match PositionProvider's (syntactic positions: no leading lines, indentation or
parentheses), except that a compound statement ends where its last simple statement ends.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import libcst as cst
from libcst._nodes.internal import CodegenState

from legacy_rules.engine.rule import Span

_NEWLINE = re.compile(r"\r\n?|\n")


class _Done(Exception):
    pass


class _PositionState(CodegenState):
    def __init__(self, module: cst.Module, wanted: set[int]) -> None:
        super().__init__(
            default_indent=module.default_indent, default_newline=module.default_newline
        )
        self.wanted = wanted
        self.remaining = len(wanted)
        self.found: dict[int, tuple[int, int, int, int]] = {}
        self._counted = 0
        self._line = 1
        self._col = 0

    def _position(self) -> tuple[int, int]:
        tokens = self.tokens
        if self._counted < len(tokens):
            chunk = "".join(tokens[self._counted :])
            self._counted = len(tokens)
            if "\r" in chunk:
                parts = _NEWLINE.split(chunk)
                if len(parts) > 1:
                    self._line += len(parts) - 1
                    self._col = len(parts[-1])
                else:
                    self._col += len(chunk)
            else:
                newlines = chunk.count("\n")
                if newlines:
                    self._line += newlines
                    self._col = len(chunk) - chunk.rfind("\n") - 1
                else:
                    self._col += len(chunk)
        return self._line, self._col

    @contextmanager
    def record_syntactic_position(
        self,
        node: cst.CSTNode,
        *,
        start_node: cst.CSTNode | None = None,
        end_node: cst.CSTNode | None = None,
    ) -> Iterator[None]:
        key = id(node)
        if key not in self.wanted or key in self.found:
            yield
            return
        line, col = self._position()
        yield
        end_line, end_col = self._position()
        self.found[key] = (line, col, end_line, end_col)
        self.remaining -= 1
        if self.remaining <= 0:
            raise _Done


def last_simple_statement(node: cst.CSTNode) -> cst.CSTNode:
    """The last simple statement (or one-line suite) inside a compound statement."""
    current = node
    for _ in range(10_000):
        if isinstance(current, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
            return current
        nxt: cst.CSTNode | None = None
        if isinstance(current, cst.Try | cst.TryStar):
            if current.finalbody is not None:
                nxt = current.finalbody
            elif current.orelse is not None:
                nxt = current.orelse
            elif current.handlers:
                nxt = current.handlers[-1]
            else:
                nxt = current.body
        elif isinstance(current, cst.If | cst.For | cst.While):
            nxt = current.orelse if current.orelse is not None else current.body
        elif isinstance(current, cst.Match):
            nxt = current.cases[-1] if current.cases else None
        elif isinstance(current, cst.IndentedBlock):
            nxt = current.body[-1] if current.body else None
        else:
            body = getattr(current, "body", None)
            if isinstance(body, cst.CSTNode):
                nxt = body
        if nxt is None:
            return current
        current = nxt
    return current


def resolve_spans(module: cst.Module, nodes: Iterable[cst.CSTNode]) -> dict[int, Span]:
    """id(node) -> Span for each node (nodes that cannot be located are left out)."""
    nodes = list(nodes)
    ends: dict[int, cst.CSTNode] = {}
    wanted: set[int] = set()
    for node in nodes:
        wanted.add(id(node))
        if isinstance(node, cst.BaseCompoundStatement):
            leaf = last_simple_statement(node)
            ends[id(node)] = leaf
            wanted.add(id(leaf))
    state = _PositionState(module, wanted)
    try:
        module._codegen(state)
    except _Done:
        pass
    spans: dict[int, Span] = {}
    for node in nodes:
        found = state.found.get(id(node))
        if found is None:
            continue
        line, col, end_line, end_col = found
        last = ends.get(id(node))
        if last is not None and id(last) in state.found:
            _, _, end_line, end_col = state.found[id(last)]
        spans[id(node)] = Span(line, col + 1, end_line, end_col + 1)
    return spans
