"""The shared per-file vocabulary (RULES.md "Vocabulary"), computed once per file.

`FileContext` is updated by the engine's single traversal *before* the rules' ``visit_*``
hooks of a node and *after* their ``leave_*`` hooks, so while a rule looks at a node the
context describes exactly the code around it:

- ``ctx.scope``: the innermost module/class/function `Scope` (its ``qualname`` is what
  findings carry as ``scope``); every function and class gets its own scope;
- name resolution through imports: ``ctx.qualified_name(expr)`` ("sqlalchemy.text" for
  ``sa.text`` after ``import sqlalchemy as sa``), shadowed by local definitions;
- session factories: ``ctx.is_factory_call(expr)`` and the `FactoryBlock`s each scope
  opens (``scope.blocks``, ``scope.open_blocks``, ``ctx.blocks_of(with_node)``), with the
  name each block binds (``as fetch_session``) - the *owned* sessions
  (``ctx.owned_block(name, use)``);
- *borrowed* sessions: ``ctx.is_borrowed(name, use)`` (session-typed or session-named
  params);
- name bindings: a name means the binding that is live where it is used. Pass the
  `ast.Name` of the use: a parameter or ``as`` name rebound on every path to it
  (``session = ...``, ``for session in``, ``async with other() as session``, a walrus) is
  no longer borrowed or owned there; rebound on some paths only, it still is, since on the
  others it is still that session (`rules.engine.bindings`, computed on demand per scope);
- route endpoints: ``ctx.is_route()``;
- open ``with X.begin():`` blocks: ``scope.begin_blocks``, ``ctx.begin_block_of(use)``;
- whether we are in an ``except``/``finally`` body (``scope.handler_depth``) and inside
  engine configuration arguments (``ctx.in_engine_config``).

Everything else is tracked by hand in the one pass over CPython's `ast` tree
(`rules.engine.syntax.dispatch`); only a scope whose rules ask about a binding is read a
second time, by `rules.engine.bindings`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from rules.engine.bindings import BindingsMemo
from rules.engine.config import Config
from rules.engine.parsing import split_lines
from rules.engine.positions import source_segment
from rules.engine.syntax import Else, ExceptStarHandler, Finally

ROUTE_METHODS = frozenset(
    {"get", "post", "put", "patch", "delete", "head", "options", "api_route", "websocket"}
)
SESSION_TYPES = frozenset({"AsyncSession", "Session"})
#: Calls whose arguments are engine configuration (the ORM guide's single exception).
ENGINE_CONFIG_CALLS = frozenset(
    {
        "create_engine",
        "create_async_engine",
        "sessionmaker",
        "async_sessionmaker",
        "execution_options",
    }
)
BEGIN = "begin"
#: Import-resolved names of SQLAlchemy's text() (SQLModel re-exports it).
SQL_TEXT_FUNCTIONS = frozenset(
    {
        "sqlalchemy.text",
        "sqlalchemy.sql.text",
        "sqlalchemy.sql.expression.text",
        "sqlalchemy.sql._elements_constructors.text",
        "sqlmodel.text",
        "sqlmodel.sql.expression.text",
    }
)
_SQL_TEXT_NAMES = frozenset(name.rsplit(".", 1)[-1] for name in SQL_TEXT_FUNCTIONS)
#: Methods that run a statement (ORM002).
EXECUTE_METHODS = frozenset({"execute", "exec_driver_sql", "executemany"})
COMMIT_METHODS = frozenset({"commit", "rollback"})

WithNode = ast.With | ast.AsyncWith
FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(eq=False)
class FactoryBlock:
    """One ``with F() as X:`` item whose ``F`` is a session factory."""

    with_node: WithNode
    item: ast.withitem
    #: The bound (owned) session name, or None for ``async with F():``.
    name: str | None
    #: Opened inside an ``except`` handler or ``finally`` clause of its function.
    in_handler: bool
    #: ((id of If node, branch), ...) from the function body down to the block.
    branches: tuple[tuple[int, int], ...]


@dataclass(eq=False)
class BeginBlock:
    """An open ``with X.begin():`` block."""

    name: str
    with_node: WithNode
    call: ast.Call


@dataclass(eq=False)
class Scope:
    """A module, class or function body."""

    kind: str  # "module" | "class" | "function"
    name: str
    qualname: str
    node: ast.AST
    parent: Scope | None
    #: name -> qualified import origin ("sqlalchemy.text"), or None for a local binding.
    bindings: dict[str, str | None] = field(default_factory=dict)
    #: name -> every value assigned to it in this scope (None for a non-assignment binding:
    #: parameter, loop target, import, def, with-as...).
    assigned: dict[str, list[ast.expr | None]] = field(default_factory=dict)
    is_route: bool = False
    borrowed: dict[str, ast.arg] = field(default_factory=dict)
    blocks: list[FactoryBlock] = field(default_factory=list)
    open_blocks: list[FactoryBlock] = field(default_factory=list)
    begin_blocks: list[BeginBlock] = field(default_factory=list)
    handler_depth: int = 0
    branches: list[tuple[int, int]] = field(default_factory=list)


class Arg(NamedTuple):
    """One argument of a call as written: ``keyword=value``, ``*value``, ``**value``."""

    keyword: str | None
    star: str  # "", "*" or "**"
    value: ast.expr


def call_arguments(call: ast.Call) -> list[Arg]:
    """The arguments of `call` in source order (`ast` keeps keywords apart)."""
    out = [
        Arg(None, "*", a.value) if isinstance(a, ast.Starred) else Arg(None, "", a)
        for a in call.args
    ]
    if call.keywords:
        kws = [Arg(k.arg, "" if k.arg is not None else "**", k.value) for k in call.keywords]
        if out and _position(kws[0].value) < _position(out[-1].value):
            out = sorted(out + kws, key=lambda a: _position(a.value))
        else:
            out.extend(kws)
    return out


def _position(node: ast.expr) -> tuple[int, int]:
    return node.lineno, node.col_offset


def dotted_parts(expr: ast.AST | None) -> tuple[str, ...] | None:
    """``("a", "b", "c")`` for a Name/Attribute chain ``a.b.c``, else None."""
    parts: list[str] = []
    node = expr
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return tuple(reversed(parts))


def dotted_name(expr: ast.AST) -> str | None:
    """``a.b.c`` for a Name/Attribute chain, else None."""
    parts = dotted_parts(expr)
    return ".".join(parts) if parts is not None else None


def last_name(expr: ast.AST | None) -> str | None:
    """The last component of a Name/Attribute (``c`` in ``a().b.c``), else None."""
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute):
        return expr.attr
    return None


def receiver_call(node: ast.Call) -> tuple[str, str] | None:
    """(receiver, method) for ``receiver.method(...)`` where the receiver is a plain name."""
    func = node.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return func.value.id, func.attr
    return None


def receiver_of(node: ast.Call) -> ast.Name | None:
    """The `ast.Name` of ``receiver`` in ``receiver.method(...)``, if a plain name."""
    func = node.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return func.value
    return None


def target_names(target: ast.AST) -> Iterator[ast.Name]:
    """The names an assignment target binds (``a``, ``a, (b, *c)``)."""
    stack = [target]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Name):
            yield node
        elif isinstance(node, ast.Tuple | ast.List):
            stack.extend(reversed(node.elts))
        elif isinstance(node, ast.Starred):
            stack.append(node.value)


def function_params(args: ast.arguments) -> list[tuple[ast.arg, ast.expr | None]]:
    """Every parameter of a signature with its default, in source order."""
    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
    defaults.extend(args.defaults)
    out: list[tuple[ast.arg, ast.expr | None]] = list(zip(positional, defaults, strict=True))
    if args.vararg is not None:
        out.append((args.vararg, None))
    out.extend(zip(args.kwonlyargs, args.kw_defaults, strict=True))
    if args.kwarg is not None:
        out.append((args.kwarg, None))
    return out


class FileContext:
    """The vocabulary of one file; see the module docstring."""

    def __init__(
        self,
        config: Config,
        path: str,
        module: ast.Module,
        project: object | None,
        text: str = "",
    ) -> None:
        self.config = config
        self.path = path
        self.module = module
        self.text = text
        self._lines: list[str] | None = None
        self.project = project
        #: Which bindings reach each name use of a scope (`rules.engine.bindings`), on demand.
        self.bindings = BindingsMemo()
        self.factories = frozenset(f.rsplit(".", 1)[-1] for f in config.session_factories)
        self.session_param_names = frozenset(config.session_param_names)
        self.request_dependencies = frozenset(
            d.rsplit(".", 1)[-1] for d in config.request_session_dependencies
        )
        self.scope = Scope(
            kind="module", name="<module>", qualname="<module>", node=module, parent=None
        )
        self.module_scope = self.scope
        self._engine_config: list[ast.Call] = []
        self._block_map: dict[int, list[FactoryBlock]] = {}
        self._if_stack: list[ast.If] = []
        self._item_owner: dict[int, WithNode] = {}
        #: Set when the file opens a session factory or touches SQL (FileResult.relevant).
        self.relevant = False
        #: The TX007 summary builder walking with the rules (`callgraph.SummaryBuilder`), when
        #: the audit has a module index and a rule reads the summary; else None.
        self.summary_builder: object | None = None

    # --- queries for rules ----------------------------------------------------------

    @property
    def in_engine_config(self) -> bool:
        """Inside the arguments of create_engine / sessionmaker / execution_options."""
        return bool(self._engine_config)

    def is_route(self) -> bool:
        """The innermost function is a route endpoint."""
        fn = self.function
        return fn is not None and fn.is_route

    @property
    def function(self) -> Scope | None:
        """The innermost function scope, if the current scope is a function."""
        return self.scope if self.scope.kind == "function" else None

    def is_borrowed(self, name: str, use: ast.Name | None = None) -> bool:
        """`name` is a borrowed-session parameter of the current function, and (at `use`)
        may still be bound to the caller's session: no ``name = ...``, ``for name in``,
        ``with ... as name``, walrus... has rebound it on every path to there."""
        fn = self.function
        if fn is None or name not in fn.borrowed:
            return False
        reaching = self.reaching_at(use)
        if reaching is not None:
            return id(fn.borrowed[name]) in reaching
        return self.owned_block(name) is None

    def owned_block(self, name: str, use: ast.Name | None = None) -> FactoryBlock | None:
        """The innermost open factory block of the current scope that binds `name`, when
        (at `use`) the name may still hold that block's session: it has not been rebound
        on every path since the block bound it."""
        for block in reversed(self.scope.open_blocks):
            if block.name == name:
                reaching = self.reaching_at(use)
                if reaching is not None and id(block.item) not in reaching:
                    return None
                return block
        return None

    def reaching_at(self, use: ast.Name | None) -> frozenset[int] | None:
        """The ids of the bindings that may be live at the name load `use` (None when not
        known: no `use`, or a use that the current scope's body does not evaluate)."""
        if use is None:
            return None
        return self.bindings.of(self.scope.node).get(id(use))

    def same_binding(self, first: ast.Name, second: ast.Name) -> bool:
        """Two loads of one name that may be bound to the same object (one binding can
        reach both)."""
        if first.id != second.id:
            return False
        a, b = self.reaching_at(first), self.reaching_at(second)
        return a is None or b is None or not a.isdisjoint(b)

    def begin_block_of(
        self, use: ast.Name, *, besides: ast.Call | None = None
    ) -> BeginBlock | None:
        """An open ``with X.begin():`` of the current scope on the session that `use` may
        hold (the same name, and one binding reaches both), other than the block of the call
        `besides`."""
        for block in self.scope.begin_blocks:
            if block.name != use.id or block.call is besides:
                continue
            outer = receiver_of(block.call)
            if outer is None or self.same_binding(outer, use):
                return block
        return None

    def blocks_of(self, with_node: ast.AST) -> list[FactoryBlock]:
        """The factory blocks a ``with`` statement opens (empty if none)."""
        return self._block_map.get(id(with_node), [])

    def resolve(self, name: str) -> tuple[bool, str | None]:
        """(found, import origin) for a bare name, following Python's scoping rules
        (class bodies are not visible from nested functions)."""
        scope: Scope | None = self.scope
        first = True
        while scope is not None:
            if (first or scope.kind != "class") and name in scope.bindings:
                return True, scope.bindings[name]
            first = False
            scope = scope.parent
        return False, None

    def qualified_name(self, expr: ast.AST) -> str | None:
        """The import-resolved dotted name of a Name/Attribute chain, or None when its root
        is not an import (a local definition, a parameter, a call result...)."""
        dotted = dotted_name(expr)
        if dotted is None:
            return None
        root, _, rest = dotted.partition(".")
        found, origin = self.resolve(root)
        if not found or origin is None:
            return None
        return f"{origin}.{rest}" if rest else origin

    def is_factory_call(self, expr: ast.AST) -> bool:
        """`expr` is a call of a configured session factory (bare, aliased or attribute)."""
        if not isinstance(expr, ast.Call):
            return False
        func = expr.func
        if isinstance(func, ast.Name):
            found, origin = self.resolve(func.id)
            if found and origin is not None:
                return origin.rsplit(".", 1)[-1] in self.factories
            return func.id in self.factories
        if isinstance(func, ast.Attribute):
            return func.attr in self.factories
        return False

    def with_of_item(self, expr: ast.AST) -> WithNode | None:
        """The ``with`` statement of which `expr` is an item (``with expr:``), if any."""
        return self._item_owner.get(id(expr))

    def statement_of_call(self, call: ast.Call) -> ast.AST:
        """What to report for a call: its ``with`` statement when it is the only item of
        one (so the finding spans the block), else the call itself."""
        owner = self._item_owner.get(id(call))
        if owner is not None and len(owner.items) == 1:
            return owner
        return call

    def is_sql_text_call(self, call: ast.Call) -> bool:
        """A call of SQLAlchemy's ``text()``, resolved through imports."""
        func = call.func
        # An import alias renames only the root of a chain: `x.y.f` can only be `....f`.
        if isinstance(func, ast.Attribute) and func.attr not in _SQL_TEXT_NAMES:
            return False
        return self.qualified_name(func) in SQL_TEXT_FUNCTIONS

    def is_session_annotation(self, expr: ast.AST | None) -> bool:
        """AsyncSession / Session, bare or qualified, Optional[...], X | None, Annotated."""
        return _is_session_annotation(expr)

    def source_of(self, node: ast.AST) -> str:
        """The source text of `node` as written."""
        if self._lines is None:
            self._lines = split_lines(self.text)
        return source_segment(node, self._lines)

    # --- scope and binding tracking -------------------------------------------------

    def bind(self, name: str, value: ast.expr | None = None, origin: str | None = None) -> None:
        self.scope.bindings[name] = origin
        self.scope.assigned.setdefault(name, []).append(value)

    def _bind_target(self, target: ast.AST, value: ast.expr | None) -> None:
        if isinstance(target, ast.Name):
            self.bind(target.id, value)
        else:
            for name in target_names(target):
                self.bind(name.id, None)

    def _push(self, kind: str, name: str, node: ast.AST) -> Scope:
        parent = self.scope
        qual = name if parent.kind == "module" else f"{parent.qualname}.{name}"
        self.scope = Scope(kind=kind, name=name, qualname=qual, node=node, parent=parent)
        return self.scope

    def _pop(self) -> None:
        assert self.scope.parent is not None
        self.scope = self.scope.parent

    # --- hooks (called by the engine around the rules' hooks) -----------------------

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname is not None:
                self.bind(alias.asname, None, alias.name)
            else:
                root = alias.name.split(".", 1)[0]
                self.bind(root, None, root)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if any(alias.name == "*" for alias in node.names):
            return
        module = "." * node.level + (node.module or "")
        for alias in node.names:
            imported = alias.name
            local = alias.asname if alias.asname is not None else imported
            sep = "" if module.endswith(".") else "."
            self.bind(local, None, f"{module}{sep}{imported}" if module else imported)

    def visit_FunctionDef(self, node: FunctionNode) -> None:
        self.bind(node.name)
        scope = self._push("function", node.name, node)
        route = any(_is_route_decorator(d) for d in node.decorator_list)
        for param, default in function_params(node.args):
            pname = param.arg
            self.bind(pname)
            if param.annotation is not None:
                if _is_session_annotation(param.annotation):
                    scope.borrowed[pname] = param
                if self._annotation_depends(param.annotation):
                    route = True
            elif pname in self.session_param_names:
                scope.borrowed[pname] = param
            if default is not None and self._is_request_depends(default):
                route = True
        scope.is_route = route

    def leave_FunctionDef(self, node: FunctionNode) -> None:
        self._pop()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.bind(node.name)
        self._push("class", node.name, node)

    def leave_ClassDef(self, node: ast.ClassDef) -> None:
        self._pop()

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._bind_target(target, node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self._bind_target(node.target, node.value)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):
            # `q += " AND x"` keeps a string a string; anything else makes it unknown.
            value = node.value if isinstance(node.op, ast.Add) else None
            self.scope.assigned.setdefault(node.target.id, []).append(value)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self._bind_target(node.target, None)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self._bind_target(node.target, node.value)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name is not None:
            self.bind(node.name)
        self.scope.handler_depth += 1

    def leave_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        self.scope.handler_depth -= 1

    def visit_ExceptStarHandler(self, node: ExceptStarHandler) -> None:
        self.scope.handler_depth += 1

    def leave_ExceptStarHandler(self, node: ExceptStarHandler) -> None:
        self.scope.handler_depth -= 1

    def visit_Finally(self, node: Finally) -> None:
        self.scope.handler_depth += 1

    def leave_Finally(self, node: Finally) -> None:
        self.scope.handler_depth -= 1

    def visit_If(self, node: ast.If) -> None:
        self.scope.branches.append((id(node), 0))
        self._if_stack.append(node)

    def leave_If(self, node: ast.If) -> None:
        self.scope.branches.pop()
        self._if_stack.pop()

    def visit_Else(self, node: Else) -> None:
        # An `elif` is an `if` inside the enclosing one's `else`: its second branch too.
        branches = self.scope.branches
        if branches and self._if_stack and self._if_stack[-1] is node.owner:
            branches[-1] = (branches[-1][0], 1)

    def visit_With(self, node: WithNode) -> None:
        scope = self.scope
        blocks: list[FactoryBlock] = []
        for item in node.items:
            call = item.context_expr
            self._item_owner[id(call)] = node
            if item.optional_vars is not None:
                self._bind_target(item.optional_vars, None)
            if self.is_factory_call(call):
                bound = item.optional_vars
                block = FactoryBlock(
                    with_node=node,
                    item=item,
                    name=bound.id if isinstance(bound, ast.Name) else None,
                    in_handler=scope.handler_depth > 0,
                    branches=tuple(scope.branches),
                )
                blocks.append(block)
                scope.blocks.append(block)
                scope.open_blocks.append(block)
            elif isinstance(call, ast.Call):
                rc = receiver_call(call)
                if rc is not None and rc[1] == BEGIN:
                    scope.begin_blocks.append(BeginBlock(name=rc[0], with_node=node, call=call))
        if blocks:
            self.relevant = True
            self._block_map[id(node)] = blocks

    def leave_With(self, node: WithNode) -> None:
        scope = self.scope
        while scope.open_blocks and scope.open_blocks[-1].with_node is node:
            scope.open_blocks.pop()
        while scope.begin_blocks and scope.begin_blocks[-1].with_node is node:
            scope.begin_blocks.pop()

    def visit_Call(self, node: ast.Call) -> None:
        name = last_name(node.func)
        if name in ENGINE_CONFIG_CALLS:
            self._engine_config.append(node)
        elif name in _RELEVANT_METHODS and isinstance(node.func, ast.Attribute):
            self.relevant = True

    def leave_Call(self, node: ast.Call) -> None:
        if self._engine_config and self._engine_config[-1] is node:
            self._engine_config.pop()

    # --- helpers --------------------------------------------------------------------

    def _is_request_depends(self, expr: ast.AST) -> bool:
        if not isinstance(expr, ast.Call) or last_name(expr.func) != "Depends":
            return False
        if not expr.args and not expr.keywords:
            return False
        return last_name(call_arguments(expr)[0].value) in self.request_dependencies

    def _annotation_depends(self, expr: ast.AST) -> bool:
        """``Annotated[AsyncSession, Depends(get_db)]``."""
        if isinstance(expr, ast.Subscript) and last_name(expr.value) == "Annotated":
            return any(self._is_request_depends(e) for e in _subscript_elements(expr))
        return False


_RELEVANT_METHODS = frozenset(
    {"begin", "commit", "rollback", "execute", "exec_driver_sql", "executemany"}
)


def _is_route_decorator(expr: ast.AST) -> bool:
    if isinstance(expr, ast.Call):
        expr = expr.func
    return isinstance(expr, ast.Attribute) and expr.attr in ROUTE_METHODS


def _is_none(expr: ast.AST) -> bool:
    return isinstance(expr, ast.Constant) and expr.value is None


def _subscript_elements(expr: ast.Subscript) -> Iterator[ast.expr]:
    inner = expr.slice
    elements = inner.elts if isinstance(inner, ast.Tuple) else [inner]
    for element in elements:
        if not isinstance(element, ast.Slice):
            yield element


def _is_session_annotation(expr: ast.AST | None) -> bool:
    if expr is None:
        return False
    if isinstance(expr, ast.Name | ast.Attribute):
        return last_name(expr) in SESSION_TYPES
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        inner = expr.value.strip("'\"")
        parts = [p.strip() for p in inner.replace("Optional[", "").rstrip("]").split("|")]
        parts = [p for p in parts if p and p != "None"]
        return len(parts) == 1 and parts[0].rsplit(".", 1)[-1] in SESSION_TYPES
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.BitOr):
        left, right = expr.left, expr.right
        if _is_none(right):
            return _is_session_annotation(left)
        if _is_none(left):
            return _is_session_annotation(right)
        return False
    if isinstance(expr, ast.Subscript):
        outer = last_name(expr.value)
        elements = list(_subscript_elements(expr))
        if outer == "Optional" and len(elements) == 1:
            return _is_session_annotation(elements[0])
        if outer == "Union":
            rest = [e for e in elements if not _is_none(e)]
            return len(rest) == 1 and _is_session_annotation(rest[0])
        if outer == "Annotated" and elements:
            return _is_session_annotation(elements[0])
    return False
