"""The one walk over a CPython `ast` tree that the context and every rule share.

`dispatch(tree, objects)` calls each object's ``visit_<Node>`` hooks before a node's
children and its ``leave_<Node>`` hooks after them. Hook names are `ast` class names, with
four readings that keep rules short and close to the code as written:

- ``async def``, ``async with`` and ``async for`` call the hooks of ``FunctionDef``,
  ``With`` and ``For`` (``node`` is still the `ast.AsyncWith` ...; test for both types when
  the difference matters); ``try: ... except*`` calls those of ``Try``.
- `ast` has no node for an ``else:`` or ``finally:`` clause, nor a separate type for an
  ``except*`` handler: the walk adds `Else`, `Finally` and `ExceptStarHandler` nodes around
  those bodies, so that a rule can tell when it is inside one.

Children are visited in source order where `ast`'s field order is not (decorators before
the ``def``, for instance). Operators and load/store contexts are not visited.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Children",
    "Else",
    "ExceptStarHandler",
    "Finally",
    "RuleHooks",
    "Step",
    "child_nodes",
    "children_reader",
    "dispatch",
    "hooks_of",
    "is_function",
    "is_with",
    "walk",
]


class Else(ast.stmt):
    """The ``else:`` body of an ``if``/``for``/``while``/``try`` (`owner`)."""

    _fields = ("body",)
    body: list[ast.stmt]
    owner: ast.AST


class Finally(ast.stmt):
    """The ``finally:`` body of a ``try``."""

    _fields = ("body",)
    body: list[ast.stmt]


class ExceptStarHandler(ast.excepthandler):
    """An ``except*`` handler (`handler` is the `ast.ExceptHandler` it stands for)."""

    _fields = ("type", "body")
    type: ast.expr | None
    name: str | None
    body: list[ast.stmt]
    handler: ast.ExceptHandler


@dataclass(frozen=True)
class RuleHooks:
    """The visit/leave hook names a rule class defines, by `ast` node class name."""

    visit: Mapping[str, str] = field(default_factory=dict)
    leave: Mapping[str, str] = field(default_factory=dict)


_HOOKS: dict[type, RuleHooks] = {}


def hooks_of(cls: type) -> RuleHooks:
    """The hooks of a rule (or context) class, computed once per class."""
    hooks = _HOOKS.get(cls)
    if hooks is None:
        visit: dict[str, str] = {}
        leave: dict[str, str] = {}
        for attr in dir(cls):
            if attr.startswith("visit_"):
                visit[attr[6:]] = attr
            elif attr.startswith("leave_"):
                leave[attr[6:]] = attr
        hooks = RuleHooks(visit=visit, leave=leave)
        _HOOKS[cls] = hooks
    return hooks


FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
WITHS = (ast.With, ast.AsyncWith)


def is_function(node: object) -> bool:
    return isinstance(node, FUNCTIONS)


def is_with(node: object) -> bool:
    return isinstance(node, WITHS)


_HOOK_NAME: dict[type, str] = {
    ast.AsyncFunctionDef: "FunctionDef",
    ast.AsyncWith: "With",
    ast.AsyncFor: "For",
    ast.TryStar: "Try",
}
_SKIP_FIELDS = frozenset({"ctx", "op", "ops", "type_comment", "type_ignores", "kind"})
_FIELD_ORDER: dict[type, tuple[str, ...]] = {
    ast.FunctionDef: ("decorator_list", "args", "returns", "body"),
    ast.AsyncFunctionDef: ("decorator_list", "args", "returns", "body"),
    ast.ClassDef: ("decorator_list", "bases", "keywords", "body"),
}
#: Fields that hold names, numbers or flags, never nodes (not walked).
_SCALAR_FIELDS: dict[type, frozenset[str]] = {
    ast.Constant: frozenset({"value"}),
    ast.Name: frozenset({"id"}),
    ast.Attribute: frozenset({"attr"}),
    ast.FunctionDef: frozenset({"name"}),
    ast.AsyncFunctionDef: frozenset({"name"}),
    ast.ClassDef: frozenset({"name"}),
    ast.alias: frozenset({"name", "asname"}),
    ast.arg: frozenset({"arg"}),
    ast.keyword: frozenset({"arg"}),
    ast.ImportFrom: frozenset({"module", "level"}),
    ast.Global: frozenset({"names"}),
    ast.Nonlocal: frozenset({"names"}),
    ast.ExceptHandler: frozenset({"name"}),
    ast.FormattedValue: frozenset({"conversion"}),
    ast.AnnAssign: frozenset({"simple"}),
    ast.comprehension: frozenset({"is_async"}),
    ast.MatchSingleton: frozenset({"value"}),
    ast.MatchStar: frozenset({"name"}),
    ast.MatchAs: frozenset({"name"}),
    ast.MatchMapping: frozenset({"rest"}),
    ast.MatchClass: frozenset({"kwd_attrs"}),
}
#: Node types with a list field that may hold None (`{**d}`'s key, a keyword-only
#: argument without a default): their children are filtered.
_SPARSE = frozenset({ast.Dict, ast.arguments})
#: The node types of Python 3.11's grammar (plus the clause nodes above), whose other fields
#: hold a node, None or a list of nodes. Types of newer grammars take the checked path.
_KNOWN = frozenset(
    getattr(ast, name)
    for name in (
        "AnnAssign Assert Assign AsyncFor AsyncFunctionDef AsyncWith Attribute AugAssign Await "
        "BinOp BoolOp Call ClassDef Compare Constant Delete DictComp ExceptHandler Expr For "
        "FormattedValue FunctionDef GeneratorExp Global If IfExp Import ImportFrom JoinedStr "
        "Lambda List ListComp Match MatchAs MatchClass MatchMapping MatchOr MatchSequence "
        "MatchSingleton MatchStar MatchValue Module Name NamedExpr Nonlocal Raise Return Set "
        "SetComp Slice Starred Subscript Try TryStar Tuple UnaryOp While With Yield YieldFrom "
        "alias arg comprehension keyword match_case withitem"
    ).split()
) | {Else, Finally, ExceptStarHandler}
_FIELDS: dict[type, tuple[str, ...]] = {}


def node_free_fields(node_type: type) -> frozenset[str]:
    """Fields of `node_type` that hold names, numbers or flags, never a node."""
    return _SCALAR_FIELDS.get(node_type, frozenset())


def only_node_fields(node_type: type) -> bool:
    """Whether every field of `node_type` outside `node_free_fields` (and `ctx`, `op`...)
    holds a node, None or a list of nodes, so its children need no type check."""
    return node_type in _KNOWN and node_type not in _SPARSE


def _fields_of(node_type: type) -> tuple[str, ...]:
    names = _FIELDS.get(node_type)
    if names is None:
        scalar = _SCALAR_FIELDS.get(node_type, frozenset())
        names = _FIELD_ORDER.get(node_type) or tuple(
            f
            for f in getattr(node_type, "_fields", ())
            if f not in _SKIP_FIELDS and f not in scalar
        )
        if "type_params" in names:  # Python 3.12+: visit them before the signature
            names = ("type_params", *(n for n in names if n != "type_params"))
        _FIELDS[node_type] = names
    return names


def _clause(cls: type[Else] | type[Finally], body: list[ast.stmt], owner: ast.AST) -> ast.stmt:
    node: Else | Finally = cls()
    node.body = body
    if isinstance(node, Else):
        node.owner = owner
    first, last = body[0], body[-1]
    node.lineno, node.col_offset = first.lineno, first.col_offset
    node.end_lineno, node.end_col_offset = last.end_lineno, last.end_col_offset
    return node


def _star(handler: ast.ExceptHandler) -> ExceptStarHandler:
    node = ExceptStarHandler()
    node.type, node.name, node.body, node.handler = (
        handler.type,
        handler.name,
        handler.body,
        handler,
    )
    node.lineno, node.col_offset = handler.lineno, handler.col_offset
    node.end_lineno, node.end_col_offset = handler.end_lineno, handler.end_col_offset
    return node


def _children(node: ast.AST, names: tuple[str, ...]) -> list[Any]:
    """The child nodes of `node` in visit order, with the clause nodes added."""
    node_type = type(node)
    if node_type in (ast.If, ast.For, ast.AsyncFor, ast.While):
        out: list[Any] = []
        for name in names:
            value = getattr(node, name)
            if name == "orelse":
                if value:
                    out.append(_clause(Else, value, node))
            elif isinstance(value, list):
                out.extend(value)
            else:
                out.append(value)
        return out
    if node_type in (ast.Try, ast.TryStar):
        assert isinstance(node, ast.Try | ast.TryStar)
        out = list(node.body)
        if node_type is ast.TryStar:
            out.extend(_star(h) for h in node.handlers)  # type: ignore[arg-type]
        else:
            out.extend(node.handlers)
        if node.orelse:
            out.append(_clause(Else, node.orelse, node))
        if node.finalbody:
            out.append(_clause(Finally, node.finalbody, node))
        return out
    return field_children(node, names, checked=not only_node_fields(node_type))


def child_nodes(node: ast.AST) -> list[Any]:
    """The child nodes of `node`, in the order the shared walk visits them (without the
    clause nodes it adds)."""
    return field_children(node, _fields_of(type(node)), checked=True)


def field_children(node: ast.AST, names: tuple[str, ...], *, checked: bool) -> list[Any]:
    """The nodes in the fields `names` of `node`, in order. Unless `checked`, the fields
    are known to hold a node, None or a list of nodes (`only_node_fields`), and no value is
    type-checked."""
    out: list[Any] = []
    if checked:
        for name in names:
            value = getattr(node, name, None)
            if isinstance(value, ast.AST):
                out.append(value)
            elif type(value) is list:
                out.extend(v for v in value if isinstance(v, ast.AST))
        return out
    for name in names:
        value = getattr(node, name)
        if type(value) is list:
            out.extend(value)
        elif value is not None:
            out.append(value)
    return out


Handler = Callable[[Any], object]
#: How `walk` reads a node type's children: (`_ONE`, field name), (`_MANY`, an
#: `attrgetter` of the fields in reverse order) or (`_CALL`, a function that returns them
#: in visit order); None when there are none to walk.
Children = tuple[int, Any] | None
#: A node type's (enter hooks, leave hooks in call order, `Children`) for `walk`.
Step = tuple[tuple[Handler, ...], tuple[Handler, ...], Children]
_ONE, _MANY, _CALL = 1, 2, 3
_CLAUSE_OWNERS = frozenset({ast.If, ast.For, ast.AsyncFor, ast.While, ast.Try, ast.TryStar})
_READERS: dict[tuple[type, tuple[str, ...], bool], Children] = {}
_Plan = tuple[tuple[tuple[int, str], ...], tuple[tuple[int, str], ...]]
_PLANS: dict[tuple[type, tuple[type, ...]], _Plan] = {}


def children_reader(node_type: type, names: tuple[str, ...], *, clauses: bool) -> Children:
    """How `walk` reads the children of a `node_type` node from its fields `names` (in
    visit order); `clauses` adds the `Else`, `Finally` and `ExceptStarHandler` nodes."""
    key = (node_type, names, clauses)
    if key in _READERS:
        return _READERS[key]
    reader: Children
    if not names:
        reader = None
    elif clauses and node_type in _CLAUSE_OWNERS:
        reader = (_CALL, lambda node: _children(node, names))
    elif not only_node_fields(node_type):
        reader = (_CALL, lambda node: field_children(node, names, checked=True))
    elif len(names) == 1:
        reader = (_ONE, names[0])
    else:
        reader = (_MANY, operator.attrgetter(*reversed(names)))
    _READERS[key] = reader
    return reader


def walk(root: ast.AST, step_for: Callable[[type], Step]) -> None:
    """Walk `root` depth first, in visit order. `step_for(node_type)`, asked once per node
    type, gives the hooks to call when entering and when leaving a node of that type and
    how to read its children. Iterative, so deep trees cannot overflow the stack."""
    steps: dict[type, Step] = {}
    stack: list[Any] = [root]
    push, extend = stack.append, stack.extend
    leave_marker: list[Any] = []  # the marker object for "leave the next node"
    while stack:
        node = stack.pop()
        if node is leave_marker:
            left = stack.pop()
            for hook in steps[type(left)][1]:
                hook(left)
            continue
        node_type = type(node)
        step = steps.get(node_type)
        if step is None:
            step = steps[node_type] = step_for(node_type)
        enter, leave, children = step
        for hook in enter:
            hook(node)
        if leave:
            push(node)
            push(leave_marker)
        if children is None:
            continue
        # Children go on the stack last first, so that the first is walked first.
        how, read = children
        if how == _MANY:
            for value in read(node):
                if type(value) is list:
                    if value:
                        extend(reversed(value))
                elif value is not None:
                    push(value)
        elif how == _ONE:
            value = getattr(node, read)
            if type(value) is list:
                if value:
                    extend(reversed(value))
            elif value is not None:
                push(value)
        else:
            found = read(node)
            if found:
                found.reverse()
                extend(found)


def _hook_plan(node_type: type, kinds: tuple[type, ...]) -> _Plan:
    """(object index, method name) of the visit hooks, in order, and of the leave hooks, in
    reverse order, of a node type for objects of these classes (computed once)."""
    key = (node_type, kinds)
    plan = _PLANS.get(key)
    if plan is None:
        name = _HOOK_NAME.get(node_type, node_type.__name__)
        hooks = [hooks_of(kind) for kind in kinds]
        visit = tuple((i, h.visit[name]) for i, h in enumerate(hooks) if name in h.visit)
        leave = tuple(
            (i, h.leave[name]) for i, h in reversed(list(enumerate(hooks))) if name in h.leave
        )
        plan = _PLANS[key] = (visit, leave)
    return plan


def dispatch(root: ast.AST, objects: Sequence[object]) -> None:
    """Walk `root` once, calling each object's ``visit_<Node>`` hooks (in the order of
    `objects`) before a node's children and its ``leave_<Node>`` hooks (in reverse order)
    after them. Put the `FileContext` first so that it is up to date for the others."""
    kinds = tuple(type(o) for o in objects)

    def step_for(node_type: type) -> Step:
        visit_names, leave_names = _hook_plan(node_type, kinds)
        return (
            tuple(getattr(objects[i], attr) for i, attr in visit_names),
            tuple(getattr(objects[i], attr) for i, attr in leave_names),
            children_reader(node_type, _fields_of(node_type), clauses=True),
        )

    walk(root, step_for)
