"""The rule base class, rule examples and the report a rule makes.

A rule is one class in one module (``rules/tx001_nested_transaction.py``), laid out like a
Fixit rule: docstring (ruff headings), ``MESSAGE``, ``VALID`` and ``INVALID`` examples, then
visitor hooks. Hooks are methods named ``visit_<Node>`` / ``leave_<Node>`` after CPython
`ast` node classes (``visit_Call``, ``leave_FunctionDef``, ...; `rules.engine.syntax` says
how ``async`` forms and ``else``/``finally`` clauses are read). The engine calls every
enabled rule's hooks from one traversal of the file's `ast` tree, after the shared vocabulary
(``self.ctx``) has been updated for the node, so a hook sees the scope, sessions and imports
that apply at that node.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from rules.engine.config import Config
from rules.engine.model import Fix, Severity
from rules.engine.positions import Span

if TYPE_CHECKING:
    from rules.engine.context import FileContext


@dataclass(frozen=True)
class Valid:
    """Code on which the rule must not fire. `config` is a mapping for `parse_config`."""

    code: str
    config: Mapping[str, Any] | None = None
    path: str = "app/services/example.py"

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", _dedent(self.code))


@dataclass(frozen=True)
class Invalid:
    """Code on which the rule fires exactly on `lines` (and, if given, at `columns`).

    `fixed` is the expected source after the rule's autofixes are applied; giving it is
    what makes a rule count as having an autofix.
    """

    code: str
    lines: tuple[int, ...] | int
    columns: tuple[int, ...] | int | None = None
    fixed: str | None = None
    config: Mapping[str, Any] | None = None
    path: str = "app/services/example.py"
    #: A fragment the message must contain (optional).
    message: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", _dedent(self.code))
        if isinstance(self.lines, int):
            object.__setattr__(self, "lines", (self.lines,))
        if isinstance(self.columns, int):
            object.__setattr__(self, "columns", (self.columns,))
        if self.fixed is not None:
            object.__setattr__(self, "fixed", _dedent(self.fixed))


def _dedent(code: str) -> str:
    return textwrap.dedent(code).lstrip("\n")


@dataclass(frozen=True, slots=True)
class FixInput:
    """What a fix builder gets once positions are known."""

    node: ast.AST
    span: Span
    #: The file's lines, each with its line ending; ``lines[0]`` is line 1.
    lines: Sequence[str]


FixBuilder = Callable[[FixInput], Fix | None]


@dataclass(slots=True)
class Report:
    """A candidate finding, before positions, severities and suppressions."""

    rule: type[Rule]
    node: ast.AST
    message: str
    scope: str
    fix: FixBuilder | None = None


class Rule:
    """Base class of every rule.

    Subclasses set the class attributes below and define ``visit_*`` / ``leave_*`` hooks.
    Inside a hook, ``self.ctx`` is the shared per-file vocabulary
    (`rules.engine.context.FileContext`) and ``self.report(node, ...)`` records a finding
    at ``node``.
    """

    ID: ClassVar[str] = ""
    NAME: ClassVar[str] = ""
    SEVERITY: ClassVar[Severity] = Severity.ERROR
    #: One sentence; may contain ``{placeholders}`` filled from `report(**fields)`.
    MESSAGE: ClassVar[str] = ""
    VALID: ClassVar[Sequence[Valid]] = ()
    INVALID: ClassVar[Sequence[Invalid]] = ()
    #: Words of which at least one must occur in a file (case-insensitively) for the rule to
    #: be able to fire. The engine skips the traversal of a file containing none of the
    #: trigger words of any rule; leave empty when no such word exists.
    TRIGGERS: ClassVar[tuple[str, ...]] = ()
    #: True for TXA00-TXA02: produced by the engine itself, no hooks.
    ENGINE_RULE: ClassVar[bool] = False
    #: True for a rule that reads the file's TX007 module summary (`ctx.summary_builder`):
    #: with a module index, the engine then builds it during the shared walk.
    READS_MODULE_SUMMARY: ClassVar[bool] = False

    def __init__(self, ctx: FileContext, sink: list[Report]) -> None:
        self.ctx = ctx
        self._sink = sink

    @classmethod
    def triggers(cls, config: Config) -> tuple[str, ...]:
        """Trigger words for this configuration (override when they depend on it)."""
        return cls.TRIGGERS

    def report(
        self,
        node: ast.AST,
        message: str | None = None,
        *,
        fix: FixBuilder | None = None,
        in_scope: str | None = None,
        **fields: object,
    ) -> None:
        """Record a finding at `node`, in the current scope unless `in_scope` names it (for
        a finding reported after the walk has left it)."""
        text = message if message is not None else self.MESSAGE.format(**fields)
        scope = in_scope if in_scope is not None else self.ctx.scope.qualname
        self._sink.append(Report(rule=type(self), node=node, message=text, scope=scope, fix=fix))
