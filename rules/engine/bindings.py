"""Which binding of a name is live where the name is used (reaching definitions).

`reaching_bindings(scope_node)` reads one function (or module, or class) body in execution
order and returns, for each name *used* in it, the bindings that may have given the name its
value there: a parameter, a ``with ... as`` item, an assignment, a ``for`` target, a walrus,
an ``except ... as``, an import, a nested ``def``... Rules ask it whether a use may still be
the caller's session (the parameter's binding is among those that reach it) or the session
that a factory block opened (that block's binding is among them).

Paths are followed the way Python runs them: both branches of an ``if`` (a branch that ends
in ``return``/``raise`` does not flow on), zero or more iterations of a loop (``while True:``
at least one), a ``break`` to after the loop (past its ``else:``), an exception anywhere in
a ``try`` body, each ``case``. Nested functions, classes, lambdas and comprehensions are
their own scopes: their bodies are not read here, except for what runs in this scope
(defaults, decorators, a comprehension's first iterable).
Expressions are walked without recursion, so a very long expression cannot overflow.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from rules.engine.syntax import child_nodes

__all__ = ["Bindings", "BindingsMemo", "parameters", "reaching_bindings"]

#: name -> ids of the binding nodes that may be live.
State = dict[str, frozenset[int]]
#: id of an `ast.Name` that loads a name -> ids of the bindings that may be live there.
Bindings = dict[int, frozenset[int]]

_EXITS = (ast.Return, ast.Raise)


def reaching_bindings(scope: ast.AST) -> Bindings:
    """For every name load in `scope`'s own body, the bindings that may reach it.

    A function's parameters are bindings whose id is that of their `ast.arg` node."""
    reader = _Reader()
    state: State = {}
    if isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
        for arg in parameters(scope.args):
            state[arg.arg] = frozenset({id(arg)})
    body = getattr(scope, "body", None)
    if isinstance(body, list):
        reader.block(body, state)
    return reader.uses


class BindingsMemo:
    """`reaching_bindings` of each scope of one file, worked out once: the file's context
    and the TX007 summary builder ask about the same functions in the same walk."""

    def __init__(self) -> None:
        self._by_scope: dict[int, Bindings] = {}

    def of(self, scope: ast.AST) -> Bindings:
        """`reaching_bindings(scope)`; the tree must outlive the memo (ids are keys)."""
        found = self._by_scope.get(id(scope))
        if found is None:
            found = self._by_scope[id(scope)] = reaching_bindings(scope)
        return found


def _merge(states: Iterable[State | None]) -> State | None:
    """The state after paths that join (None: no path gets here)."""
    live = [s for s in states if s is not None]
    if not live:
        return None
    merged: dict[str, set[int]] = {}
    for state in live:
        for name, ids in state.items():
            merged.setdefault(name, set()).update(ids)
    return {name: frozenset(ids) for name, ids in merged.items()}


class _Reader:
    def __init__(self) -> None:
        self.uses: Bindings = {}
        #: Per enclosing loop: the states at its ``break``s and at its ``continue``s.
        self._loops: list[tuple[list[State], list[State]]] = []

    # --- statements ---------------------------------------------------------------------

    def block(self, body: Sequence[ast.stmt], state: State) -> State | None:
        """Run `body` from `state`; the state after it, or None when it never falls
        through (it ends in return/raise/break/continue)."""
        current: State | None = state
        for statement in body:
            if current is None:
                return None
            current = self.statement(statement, current)
        return current

    def statement(self, node: ast.stmt, state: State) -> State | None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            state = self.expressions(_header_expressions(node), state)
            return _bind(state, node.name, node)
        if isinstance(node, ast.Assign):
            state = self.expressions([node.value], state)
            for target in node.targets:
                state = self.target(target, node, state)
            return state
        if isinstance(node, ast.AnnAssign):
            if node.value is None:
                return state
            state = self.expressions([node.value], state)
            return self.target(node.target, node, state)
        if isinstance(node, ast.AugAssign):
            state = self.expressions([node.target, node.value], state)
            return self.target(node.target, node, state)
        if isinstance(node, ast.For | ast.AsyncFor):
            state = self.expressions([node.iter], state)
            return self.loop(node, state, self.target(node.target, node, state), endless=False)
        if isinstance(node, ast.While):
            state = self.expressions([node.test], state)
            endless = isinstance(node.test, ast.Constant) and bool(node.test.value)
            return self.loop(node, state, state, endless=endless)
        if isinstance(node, ast.Break | ast.Continue):
            if self._loops:
                self._loops[-1][0 if isinstance(node, ast.Break) else 1].append(state)
            return None
        if isinstance(node, ast.If):
            state = self.expressions([node.test], state)
            return _merge((self.block(node.body, state), self.block(node.orelse, state)))
        if isinstance(node, ast.With | ast.AsyncWith):
            for item in node.items:
                state = self.expressions([item.context_expr], state)
                if item.optional_vars is not None:
                    state = self.target(item.optional_vars, item, state)
            return self.block(node.body, state)
        if isinstance(node, ast.Try | ast.TryStar):
            return self.try_statement(node, state)
        if isinstance(node, ast.Match):
            state = self.expressions([node.subject], state)
            ends: list[State | None] = [state]
            for case in node.cases:
                inside = state
                for name in _pattern_names(case.pattern):
                    inside = _bind(inside, name, case)
                if case.guard is not None:
                    inside = self.expressions([case.guard], inside)
                ends.append(self.block(case.body, inside))
            return _merge(ends)
        if isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name != "*":
                    local = alias.asname or alias.name.split(".", 1)[0]
                    state = _bind(state, local, node)
            return state
        if isinstance(node, ast.Global | ast.Nonlocal):
            for name in node.names:
                state = _bind(state, name, node)
            return state
        if isinstance(node, ast.Delete):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    state = {**state, target.id: frozenset()}
                else:
                    state = self.expressions([target], state)
            return state
        state = self.expressions(_own_expressions(node), state)
        return None if isinstance(node, _EXITS) else state

    def loop(
        self, node: ast.For | ast.AsyncFor | ast.While, before: State, inside: State, endless: bool
    ) -> State | None:
        """A loop that runs its body zero or more times (``while True:`` at least once, and
        only a ``break`` leaves it); ``else:`` runs when it ends without ``break``."""
        self._loops.append(([], []))
        after_body = self.block(node.body, inside)
        breaks, continues = self._loops.pop()
        iterated = _merge((after_body, *continues))
        ended = None if endless else _merge((before, iterated))
        if ended is not None and node.orelse:
            ended = self.block(node.orelse, ended)
        return _merge((ended, *breaks))

    def try_statement(self, node: ast.Try | ast.TryStar, state: State) -> State | None:
        after_body = self.block(node.body, state)
        # An exception can come from anywhere in the body: before or after its bindings.
        raised = _merge((state, after_body))
        assert raised is not None
        ends: list[State | None] = []
        for handler in node.handlers:
            inside = raised
            if handler.type is not None:
                inside = self.expressions([handler.type], inside)
            if handler.name is not None:
                inside = _bind(inside, handler.name, handler)
            ends.append(self.block(handler.body, inside))
        ends.append(self.block(node.orelse, after_body) if after_body is not None else None)
        joined = _merge(ends)
        if not node.finalbody:
            return joined
        # `finally` also runs on the way out of an exception nothing handled.
        widest = _merge((raised, joined))
        assert widest is not None
        self.block(node.finalbody, widest)
        return self.block(node.finalbody, joined) if joined is not None else None

    def target(self, target: ast.AST, binder: ast.AST, state: State) -> State:
        """Bind the names of an assignment target; loads inside it (``a[i] = ...``) too."""
        if isinstance(target, ast.Name):
            return _bind(state, target.id, binder)
        if isinstance(target, ast.Tuple | ast.List):
            for element in target.elts:
                state = self.target(element, binder, state)
            return state
        if isinstance(target, ast.Starred):
            return self.target(target.value, binder, state)
        return self.expressions([target], state)  # attribute or subscript: its parts load

    # --- expressions --------------------------------------------------------------------

    def expressions(self, roots: Iterable[ast.AST], state: State) -> State:
        """Record every name load under `roots`, in evaluation order; the state after
        them (a walrus binds in this scope)."""
        stack: list[Any] = list(reversed(list(roots)))
        bind_marker: list[Any] = []
        # Between these markers, operands that may not run (`a and (b := c)`, `x if t else y`).
        maybe_enter: list[Any] = []
        maybe_exit: list[Any] = []
        maybe = 0
        copied = False
        while stack:
            node = stack.pop()
            if node is bind_marker:
                walrus = stack.pop()
                if not copied:
                    state, copied = dict(state), True
                name, binding = walrus.target.id, frozenset({id(walrus)})
                state[name] = state.get(name, frozenset()) | binding if maybe else binding
                continue
            if node is maybe_enter or node is maybe_exit:
                maybe += 1 if node is maybe_enter else -1
                continue
            node_type = type(node)  # the commonest kinds first, without a list of children
            if node_type is ast.Name:
                if type(node.ctx) is ast.Load:
                    self.use(node, state.get(node.id, frozenset()))
                continue
            if node_type is ast.Constant:
                continue
            if node_type is ast.Attribute:
                stack.append(node.value)
                continue
            if isinstance(node, ast.BoolOp):
                stack.extend((maybe_exit, *reversed(node.values[1:]), maybe_enter, node.values[0]))
                continue
            if isinstance(node, ast.IfExp):
                stack.extend((maybe_exit, node.orelse, node.body, maybe_enter, node.test))
                continue
            if isinstance(node, ast.NamedExpr):
                stack.append(node)
                stack.append(bind_marker)
                stack.append(node.value)
                continue
            if isinstance(node, ast.Lambda):
                self.expressions(_defaults(node.args), state)
                inner = dict(state)
                for arg in parameters(node.args):
                    inner[arg.arg] = frozenset({id(node)})
                self.expressions([node.body], inner)
                continue
            if isinstance(node, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
                self.comprehension(node, state)
                continue
            stack.extend(reversed(_own_expressions(node)))
        return state

    def comprehension(
        self, node: ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp, state: State
    ) -> None:
        """The first iterable runs here; the rest in the comprehension's own scope."""
        inner = dict(state)
        for index, generator in enumerate(node.generators):
            self.expressions([generator.iter], state if index == 0 else inner)
            for name in ast.walk(generator.target):
                if isinstance(name, ast.Name):
                    inner[name.id] = frozenset({id(node)})
            for condition in generator.ifs:
                self.expressions([condition], inner)
        parts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        self.expressions(parts, inner)

    def use(self, name: ast.Name, bindings: frozenset[int]) -> None:
        # A `finally` body is read twice (on the normal and the exceptional way out).
        known = self.uses.get(id(name))
        self.uses[id(name)] = bindings if known is None else known | bindings


def _bind(state: State, name: str, binder: ast.AST) -> State:
    return {**state, name: frozenset({id(binder)})}


def parameters(args: ast.arguments) -> Iterator[ast.arg]:
    """Every parameter of a signature (the bindings a call gives the function's body)."""
    for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg):
        if arg is not None:
            yield arg


def _defaults(args: ast.arguments) -> list[ast.expr]:
    """The default values of a signature, evaluated where the ``def`` or lambda stands."""
    return [d for d in (*args.defaults, *args.kw_defaults) if d is not None]


def _header_expressions(
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef,
) -> list[ast.expr]:
    """What a ``def``/``class`` statement evaluates where it stands."""
    out: list[ast.expr] = list(node.decorator_list)
    if isinstance(node, ast.ClassDef):
        out.extend(node.bases)
        out.extend(k.value for k in node.keywords)
    else:
        out.extend(_defaults(node.args))
    return out


def _own_expressions(node: ast.AST) -> list[ast.AST]:
    """The expressions directly under `node` in evaluation order, a keyword argument's
    value included."""
    return [
        child.value if isinstance(child, ast.keyword) else child
        for child in child_nodes(node)
        if isinstance(child, ast.expr | ast.keyword)
    ]


def _pattern_names(pattern: ast.pattern) -> Iterator[str]:
    for node in ast.walk(pattern):
        if isinstance(node, ast.MatchAs | ast.MatchStar) and node.name is not None:
            yield node.name
        elif isinstance(node, ast.MatchMapping) and node.rest is not None:
            yield node.rest
