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
  name each block binds (``as fetch_session``) - the *owned* sessions;
- *borrowed* sessions: ``ctx.is_borrowed(name)`` (session-typed or session-named params);
- route endpoints: ``ctx.is_route()``;
- open ``with X.begin():`` blocks: ``scope.begin_blocks``;
- whether we are in an ``except``/``finally`` body (``scope.handler_depth``) and inside
  engine configuration arguments (``ctx.in_engine_config``).

No libcst metadata providers are used (they cost several times the parse); everything is
tracked by hand in the one pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import libcst as cst

from legacy_rules.engine.config import Config

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
#: Methods that run a statement (ORM002).
EXECUTE_METHODS = frozenset({"execute", "exec_driver_sql", "executemany"})
COMMIT_METHODS = frozenset({"commit", "rollback"})


@dataclass(eq=False)
class FactoryBlock:
    """One ``with F() as X:`` item whose ``F`` is a session factory."""

    with_node: cst.With
    item: cst.WithItem
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
    with_node: cst.With
    call: cst.Call


@dataclass(eq=False)
class Scope:
    """A module, class or function body."""

    kind: str  # "module" | "class" | "function"
    name: str
    qualname: str
    node: cst.CSTNode
    parent: Scope | None
    #: name -> qualified import origin ("sqlalchemy.text"), or None for a local binding.
    bindings: dict[str, str | None] = field(default_factory=dict)
    #: name -> every value assigned to it in this scope (None for a non-assignment binding:
    #: parameter, loop target, import, def, with-as...).
    assigned: dict[str, list[cst.BaseExpression | None]] = field(default_factory=dict)
    is_route: bool = False
    borrowed: dict[str, cst.Param] = field(default_factory=dict)
    blocks: list[FactoryBlock] = field(default_factory=list)
    open_blocks: list[FactoryBlock] = field(default_factory=list)
    begin_blocks: list[BeginBlock] = field(default_factory=list)
    handler_depth: int = 0
    branches: list[tuple[int, int]] = field(default_factory=list)


def dotted_name(expr: cst.BaseExpression) -> str | None:
    """``a.b.c`` for a Name/Attribute chain, else None."""
    parts: list[str] = []
    node: cst.BaseExpression = expr
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if not isinstance(node, cst.Name):
        return None
    parts.append(node.value)
    return ".".join(reversed(parts))


def last_name(expr: cst.BaseExpression) -> str | None:
    """The last component of a Name/Attribute (``c`` in ``a().b.c``), else None."""
    if isinstance(expr, cst.Name):
        return expr.value
    if isinstance(expr, cst.Attribute):
        return expr.attr.value
    return None


def receiver_call(node: cst.Call) -> tuple[str, str] | None:
    """(receiver, method) for ``receiver.method(...)`` where the receiver is a plain name."""
    func = node.func
    if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name):
        return func.value.value, func.attr.value
    return None


def _module_name(node: cst.Attribute | cst.Name | None, relative: int) -> str:
    name = dotted_name(node) if node is not None else ""
    return "." * relative + (name or "")


class FileContext:
    """The vocabulary of one file; see the module docstring."""

    def __init__(
        self, config: Config, path: str, module: cst.Module, project: object | None
    ) -> None:
        self.config = config
        self.path = path
        self.module = module
        self.project = project
        self.factories = frozenset(f.rsplit(".", 1)[-1] for f in config.session_factories)
        self.session_param_names = frozenset(config.session_param_names)
        self.request_dependencies = frozenset(
            d.rsplit(".", 1)[-1] for d in config.request_session_dependencies
        )
        self.scope = Scope(
            kind="module", name="<module>", qualname="<module>", node=module, parent=None
        )
        self.module_scope = self.scope
        self._engine_config: list[cst.Call] = []
        self._block_map: dict[int, list[FactoryBlock]] = {}
        self._if_stack: list[cst.If] = []
        self._item_owner: dict[int, cst.With] = {}
        #: Set when the file opens a session factory or touches SQL (FileResult.relevant).
        self.relevant = False

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

    def is_borrowed(self, name: str) -> bool:
        """`name` is a borrowed-session parameter of the current function (not rebound by a
        session-factory block)."""
        fn = self.function
        return fn is not None and name in fn.borrowed and self.owned_block(name) is None

    def owned_block(self, name: str) -> FactoryBlock | None:
        """The innermost open factory block of the current scope that binds `name`."""
        for block in reversed(self.scope.open_blocks):
            if block.name == name:
                return block
        return None

    def blocks_of(self, with_node: cst.With) -> list[FactoryBlock]:
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

    def qualified_name(self, expr: cst.BaseExpression) -> str | None:
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

    def is_factory_call(self, expr: cst.BaseExpression) -> bool:
        """`expr` is a call of a configured session factory (bare, aliased or attribute)."""
        if not isinstance(expr, cst.Call):
            return False
        func = expr.func
        if isinstance(func, cst.Name):
            found, origin = self.resolve(func.value)
            if found and origin is not None:
                return origin.rsplit(".", 1)[-1] in self.factories
            return func.value in self.factories
        if isinstance(func, cst.Attribute):
            return func.attr.value in self.factories
        return False

    def with_of_item(self, expr: cst.BaseExpression) -> cst.With | None:
        """The ``with`` statement of which `expr` is an item (``with expr:``), if any."""
        return self._item_owner.get(id(expr))

    def statement_of_call(self, call: cst.Call) -> cst.CSTNode:
        """What to report for a call: its ``with`` statement when it is the only item of
        one (so the finding spans the block), else the call itself."""
        owner = self._item_owner.get(id(call))
        if owner is not None and len(owner.items) == 1:
            return owner
        return call

    def is_sql_text_call(self, call: cst.Call) -> bool:
        """A call of SQLAlchemy's ``text()``, resolved through imports."""
        return self.qualified_name(call.func) in SQL_TEXT_FUNCTIONS

    def is_session_annotation(self, expr: cst.BaseExpression | None) -> bool:
        """AsyncSession / Session, bare or qualified, Optional[...], X | None, Annotated."""
        return _is_session_annotation(expr)

    # --- scope and binding tracking -------------------------------------------------

    def bind(
        self, name: str, value: cst.BaseExpression | None = None, origin: str | None = None
    ) -> None:
        self.scope.bindings[name] = origin
        self.scope.assigned.setdefault(name, []).append(value)

    def _bind_target(self, target: cst.BaseExpression, value: cst.BaseExpression | None) -> None:
        if isinstance(target, cst.Name):
            self.bind(target.value, value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self._bind_target(element.value, None)
        elif isinstance(target, cst.StarredElement):
            self._bind_target(target.value, None)

    def _push(self, kind: str, name: str, node: cst.CSTNode) -> Scope:
        parent = self.scope
        qual = name if parent.kind == "module" else f"{parent.qualname}.{name}"
        self.scope = Scope(kind=kind, name=name, qualname=qual, node=node, parent=parent)
        return self.scope

    def _pop(self) -> None:
        assert self.scope.parent is not None
        self.scope = self.scope.parent

    # --- hooks (called by the engine around the rules' hooks) -----------------------

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            full = dotted_name(alias.name) or ""
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self.bind(alias.asname.name.value, None, full)
            else:
                root = full.split(".", 1)[0]
                self.bind(root, None, root)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if isinstance(node.names, cst.ImportStar):
            return
        module = _module_name(node.module, len(node.relative))
        for alias in node.names:
            imported = dotted_name(alias.name) or ""
            local = imported
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                local = alias.asname.name.value
            sep = "" if module.endswith(".") else "."
            self.bind(local, None, f"{module}{sep}{imported}" if module else imported)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.bind(node.name.value)
        scope = self._push("function", node.name.value, node)
        params = node.params
        all_params = [*params.posonly_params, *params.params, *params.kwonly_params]
        for extra in (params.star_arg, params.star_kwarg):
            if isinstance(extra, cst.Param):
                all_params.append(extra)
        route = any(_is_route_decorator(d.decorator) for d in node.decorators)
        for param in all_params:
            pname = param.name.value
            self.bind(pname)
            if param.annotation is not None:
                if _is_session_annotation(param.annotation.annotation):
                    scope.borrowed[pname] = param
                if self._annotation_depends(param.annotation.annotation):
                    route = True
            elif pname in self.session_param_names:
                scope.borrowed[pname] = param
            if param.default is not None and self._is_request_depends(param.default):
                route = True
        scope.is_route = route

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._pop()

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.bind(node.name.value)
        self._push("class", node.name.value, node)

    def leave_ClassDef(self, node: cst.ClassDef) -> None:
        self._pop()

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._bind_target(target.target, node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._bind_target(node.target, node.value)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if isinstance(node.target, cst.Name):
            # `q += " AND x"` keeps a string a string; anything else makes it unknown.
            value = node.value if isinstance(node.operator, cst.AddAssign) else None
            self.scope.assigned.setdefault(node.target.value, []).append(value)

    def visit_For(self, node: cst.For) -> None:
        self._bind_target(node.target, None)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self._bind_target(node.target, node.value)

    def visit_ExceptHandler(self, node: cst.ExceptHandler) -> None:
        if node.name is not None and isinstance(node.name.name, cst.Name):
            self.bind(node.name.name.value)
        self.scope.handler_depth += 1

    def leave_ExceptHandler(self, node: cst.ExceptHandler) -> None:
        self.scope.handler_depth -= 1

    def visit_ExceptStarHandler(self, node: cst.ExceptStarHandler) -> None:
        self.scope.handler_depth += 1

    def leave_ExceptStarHandler(self, node: cst.ExceptStarHandler) -> None:
        self.scope.handler_depth -= 1

    def visit_Finally(self, node: cst.Finally) -> None:
        self.scope.handler_depth += 1

    def leave_Finally(self, node: cst.Finally) -> None:
        self.scope.handler_depth -= 1

    def visit_If(self, node: cst.If) -> None:
        branches = self.scope.branches
        if branches:
            owner_id, _ = branches[-1]
            # An `elif` is the orelse of the enclosing If: it is that If's second branch.
            if (
                self._if_stack
                and self._if_stack[-1].orelse is node
                and id(self._if_stack[-1]) == owner_id
            ):
                branches[-1] = (owner_id, 1)
        branches.append((id(node), 0))
        self._if_stack.append(node)

    def leave_If(self, node: cst.If) -> None:
        self.scope.branches.pop()
        self._if_stack.pop()

    def visit_Else(self, node: cst.Else) -> None:
        branches = self.scope.branches
        if branches and self._if_stack and self._if_stack[-1].orelse is node:
            branches[-1] = (branches[-1][0], 1)

    def visit_With(self, node: cst.With) -> None:
        scope = self.scope
        blocks: list[FactoryBlock] = []
        for item in node.items:
            self._item_owner[id(item.item)] = node
            if item.asname is not None:
                self._bind_target(item.asname.name, None)
            call = item.item
            if self.is_factory_call(call):
                name = None
                if item.asname is not None and isinstance(item.asname.name, cst.Name):
                    name = item.asname.name.value
                block = FactoryBlock(
                    with_node=node,
                    item=item,
                    name=name,
                    in_handler=scope.handler_depth > 0,
                    branches=tuple(scope.branches),
                )
                blocks.append(block)
                scope.blocks.append(block)
                scope.open_blocks.append(block)
            elif isinstance(call, cst.Call):
                rc = receiver_call(call)
                if rc is not None and rc[1] == BEGIN:
                    scope.begin_blocks.append(BeginBlock(name=rc[0], with_node=node, call=call))
        if blocks:
            self.relevant = True
            self._block_map[id(node)] = blocks

    def leave_With(self, node: cst.With) -> None:
        scope = self.scope
        while scope.open_blocks and scope.open_blocks[-1].with_node is node:
            scope.open_blocks.pop()
        while scope.begin_blocks and scope.begin_blocks[-1].with_node is node:
            scope.begin_blocks.pop()

    def visit_Call(self, node: cst.Call) -> None:
        name = last_name(node.func)
        if name in ENGINE_CONFIG_CALLS:
            self._engine_config.append(node)
        elif name in _RELEVANT_METHODS and isinstance(node.func, cst.Attribute):
            self.relevant = True

    def leave_Call(self, node: cst.Call) -> None:
        if self._engine_config and self._engine_config[-1] is node:
            self._engine_config.pop()

    # --- helpers --------------------------------------------------------------------

    def _is_request_depends(self, expr: cst.BaseExpression) -> bool:
        if not isinstance(expr, cst.Call) or last_name(expr.func) != "Depends" or not expr.args:
            return False
        dep = last_name(expr.args[0].value)
        return dep in self.request_dependencies

    def _annotation_depends(self, expr: cst.BaseExpression) -> bool:
        """``Annotated[AsyncSession, Depends(get_db)]``."""
        if isinstance(expr, cst.Subscript) and last_name(expr.value) == "Annotated":
            for element in expr.slice:
                if isinstance(element.slice, cst.Index) and self._is_request_depends(
                    element.slice.value
                ):
                    return True
        return False


_RELEVANT_METHODS = frozenset(
    {"begin", "commit", "rollback", "execute", "exec_driver_sql", "executemany"}
)


def _is_route_decorator(expr: cst.BaseExpression) -> bool:
    if isinstance(expr, cst.Call):
        expr = expr.func
    return isinstance(expr, cst.Attribute) and expr.attr.value in ROUTE_METHODS


def _is_none(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "None"


def _subscript_elements(expr: cst.Subscript) -> Iterator[cst.BaseExpression]:
    for element in expr.slice:
        if isinstance(element.slice, cst.Index):
            yield element.slice.value


def _is_session_annotation(expr: cst.BaseExpression | None) -> bool:
    if expr is None:
        return False
    if isinstance(expr, (cst.Name, cst.Attribute)):
        return last_name(expr) in SESSION_TYPES
    if isinstance(expr, cst.SimpleString):
        inner = expr.value.strip("'\"")
        parts = [p.strip() for p in inner.replace("Optional[", "").rstrip("]").split("|")]
        parts = [p for p in parts if p and p != "None"]
        return len(parts) == 1 and parts[0].rsplit(".", 1)[-1] in SESSION_TYPES
    if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.BitOr):
        left, right = expr.left, expr.right
        if _is_none(right):
            return _is_session_annotation(left)
        if _is_none(left):
            return _is_session_annotation(right)
        return False
    if isinstance(expr, cst.Subscript):
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
