"""TX007 support: per-module call summaries, the project's module index and call resolution.

All pure code (no network; only `ProjectIndex.from_disk` / `DiskLoader` read the disk):

* `summarize(source, vocab)` reduces one module to a `ModuleSummary` from a single `ast`
  parse (through the engine's parse guard), cached by the SHA-1 of its bytes: per function,
  the parameters it commits, rolls back or begins (with the line), the calls that pass a
  parameter on and its local instance bindings; the module's imports, classes (methods and
  their kinds, bases, `self.x = Foo(...)` in `__init__`) and module-level instances; and the
  call sites that pass an owned session on (used to decide what to prefetch). The audit of
  a file builds the same summary in the engine's shared walk (`SummaryBuilder` is one of
  its objects) and keeps it in the index (`ProjectIndex.add_audited`).
* `ProjectIndex` maps module names to repo-relative paths (`src/` layouts, packages) and
  provides other modules' summaries, loaded lazily through a loader callback (CLI) or
  prefetched level by level (app), under a cap on the number of modules;
  `callee_first` orders a project's files so that a module is audited before its importers.
* `Resolver` resolves a call (imports, re-exports, classes, instances, `self`) to a function
  and parameter, and `Resolver.chain` follows the session through at most `MAX_DEPTH` calls
  to a function that manages the transaction itself. The engine rule
  (`rules/catalog/tx007_callee_manages_transaction.py`) finds the call sites and reports.
"""

from __future__ import annotations

import ast
import asyncio
import hashlib
import os
import re
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cachetools import LRUCache

from rules.engine.bindings import Bindings, parameters, reaching_bindings
from rules.engine.context import call_arguments, function_params, target_names
from rules.engine.parsing import decode, parse
from rules.engine.syntax import (
    Children,
    ExceptStarHandler,
    Step,
    children_reader,
    node_free_fields,
    walk,
)

#: Session methods that manage a transaction, and how a message says it.
MANAGE_ACTIONS: Mapping[str, str] = {
    "commit": "commits it",
    "rollback": "rolls it back",
    "begin": "begins a transaction on it",
}
#: How many calls deep the session is followed from the call site (the callee is level 1).
MAX_DEPTH = 3
ROUTE_METHODS = frozenset(
    {"get", "post", "put", "patch", "delete", "head", "options", "api_route", "websocket"}
)
#: Files larger than this are not read by `ProjectIndex.from_disk` (the app skips them too).
MAX_FILE_BYTES = 1_000_000
_SKIP_DIRS = frozenset({"node_modules", "__pycache__", "site-packages", "venv", "env"})

Dotted = tuple[str, ...]


# --- summaries -----------------------------------------------------------------------------


_FACTORIES = ("get_background_session",)
_DEPENDENCIES = ("get_db_session", "get_session", "get_db")


@dataclass(frozen=True, slots=True)
class Vocab:
    """The configuration a summary depends on (which blocks own a session)."""

    session_factories: tuple[str, ...] = _FACTORIES
    request_session_dependencies: tuple[str, ...] = _DEPENDENCIES

    @classmethod
    def from_config(cls, config: object) -> Vocab:
        """Take the two lists from a `rules.engine.config.Config` (or anything with them)."""
        factories = getattr(config, "session_factories", _FACTORIES)
        dependencies = getattr(config, "request_session_dependencies", _DEPENDENCIES)
        return cls(
            tuple(name.rsplit(".", 1)[-1] for name in factories),
            tuple(name.rsplit(".", 1)[-1] for name in dependencies),
        )


@dataclass(frozen=True, slots=True)
class CallShape:
    """A callee expression reduced to what resolution needs.

    `parts` is the dotted name that is called (`foo`, `m.foo`, `self.adapter.submit`); when
    `ctor` is set the call is `<ctor>(...).<parts[0]>(...)`: a method of an inline instance.
    """

    parts: Dotted
    ctor: Dotted | None = None

    def text(self) -> str:
        """The callee as written (roughly), for messages."""
        if self.ctor is not None:
            return ".".join(self.ctor) + "()." + ".".join(self.parts)
        return ".".join(self.parts)


@dataclass(frozen=True, slots=True)
class ArgRef:
    """Where an argument sits in a call: positional index or keyword."""

    position: int | None = None
    keyword: str | None = None


@dataclass(frozen=True, slots=True)
class Forward:
    """A call inside a function that passes its parameter `param` on."""

    param: str
    shape: CallShape
    arg: ArgRef


@dataclass(frozen=True, slots=True)
class Manage:
    """`param.commit()` / `.rollback()` / `.begin()` inside a function."""

    param: str
    action: str  # "commit" | "rollback" | "begin"
    line: int
    #: For a constructor that stores the parameter (`self.session = session`): the method
    #: that manages `self.<attr>`, and the attribute.
    method: str | None = None
    attr: str | None = None


@dataclass(frozen=True, slots=True)
class Param:
    """A function parameter; `kind` is positional, keyword (keyword-only), star or starstar."""

    name: str
    kind: str


@dataclass(frozen=True, slots=True)
class ImportEntry:
    """What a local name is bound to by an import.

    `import a.b` binds `a` to module `a`; `import a.b as m` binds `m` to module `a.b`
    (`name` None in both); `from ..x import y` is module "x", name "y", level 2.
    """

    module: str
    name: str | None = None
    level: int = 0


@dataclass(frozen=True, slots=True)
class FunctionSummary:
    """What TX007 needs to know about one function or method."""

    qualname: str
    kind: str  # function | method | staticmethod | classmethod
    class_name: str | None
    params: tuple[Param, ...]
    manages: tuple[Manage, ...]
    forwards: tuple[Forward, ...]
    #: Local names bound once to a call of a dotted name (`a = Adapter()`).
    bindings: Mapping[str, Dotted]
    #: Every name the function binds (parameters, assignments, loop and `as` targets).
    local_names: frozenset[str]
    imports: Mapping[str, ImportEntry]


@dataclass(frozen=True, slots=True)
class ClassSummary:
    """A top-level class: methods (name -> kind), bases, `self.x = Foo(...)` in `__init__`."""

    name: str
    bases: tuple[Dotted, ...]
    methods: Mapping[str, str]
    attrs: Mapping[str, Dotted]


@dataclass(frozen=True, slots=True)
class Site:
    """A call inside an owned-session block that passes the session (`name`) on.

    The engine's TX007 rule finds call sites with the shared vocabulary (`rules.engine.context`);
    these are what `ProjectIndex.modules_needed` uses to know what to prefetch.
    """

    shape: CallShape
    arg: ArgRef
    name: str
    #: Qualified name of the enclosing function (None at module level).
    function: str | None


@dataclass(frozen=True, slots=True)
class ModuleSummary:
    """One module's facts for TX007; independent of the module's path."""

    imports: Mapping[str, ImportEntry]
    functions: Mapping[str, FunctionSummary]  # "f", "C.m"
    classes: Mapping[str, ClassSummary]
    #: Module-level names bound to a call of a dotted name (`adapter = Adapter()`).
    instances: Mapping[str, Dotted]
    sites: tuple[Site, ...]


def _dotted(expr: ast.AST | None) -> Dotted | None:
    parts: list[str] = []
    node = expr
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return tuple(reversed(parts))


def call_shape(func: ast.AST) -> CallShape | None:
    dotted = _dotted(func)
    if dotted is not None:
        return CallShape(dotted)
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call):
        ctor = _dotted(func.value.func)
        if ctor is not None:
            return CallShape((func.attr,), ctor)
    return None


def passed_names(call: ast.Call) -> Iterator[tuple[str, ArgRef]]:
    """(name, where) for every argument of `call` that is a bare name."""
    return ((name.id, ref) for name, ref in passed_name_nodes(call))


def passed_name_nodes(call: ast.Call) -> list[tuple[ast.Name, ArgRef]]:
    """(the `ast.Name`, where) for every argument of `call` that is a bare name, in source
    order."""
    if not any(type(a) is ast.Name for a in call.args) and not any(
        type(k.value) is ast.Name for k in call.keywords
    ):
        return []  # most calls pass no bare name
    found: list[tuple[ast.Name, ArgRef]] = []
    position = 0
    known = True
    for arg in call_arguments(call):
        if arg.star == "*":
            known = False
            continue
        if arg.star == "**":
            continue
        if arg.keyword is not None:
            ref: ArgRef | None = ArgRef(keyword=arg.keyword)
        else:
            ref = ArgRef(position=position) if known else None
            position += 1
        if ref is not None and isinstance(arg.value, ast.Name):
            found.append((arg.value, ref))
    return found


def _target_names(expr: ast.AST) -> Iterator[str]:
    return (name.id for name in target_names(expr))


class _Func:
    """A function being summarised."""

    def __init__(
        self,
        qualname: str,
        kind: str,
        class_name: str | None,
        params: tuple[Param, ...],
        is_route: bool,
    ) -> None:
        self.qualname = qualname
        self.kind = kind
        self.class_name = class_name
        self.params = params
        self.param_names = frozenset(p.name for p in params)
        self.is_route = is_route
        self.manages: list[tuple[str, str, ast.Call]] = []
        self.forwards: list[Forward] = []
        self.bindings: dict[str, Dotted] = {}
        self.conflicts: set[str] = set()
        self.local_names: set[str] = set(self.param_names)
        self.imports: dict[str, ImportEntry] = {}
        self.node: ast.FunctionDef | ast.AsyncFunctionDef | None = None
        self._reaching: Bindings | None = None

    def reaching(self, use: ast.Name) -> frozenset[int] | None:
        """The bindings that may be live at the load `use` in this function (None: not
        a load that this function's body evaluates)."""
        if self.node is None:
            return None
        if self._reaching is None:
            self._reaching = reaching_bindings(self.node)
        return self._reaching.get(id(use))

    def is_param(self, use: ast.Name) -> bool:
        """`use` loads a parameter that may still hold the caller's argument there."""
        if use.id not in self.param_names or self.node is None:
            return False
        if use.id not in self.conflicts:  # never rebound so far in source order
            return True
        reaching = self.reaching(use)
        if reaching is None:
            return True
        return any(id(arg) in reaching for arg in parameters(self.node.args) if arg.arg == use.id)

    def bind(self, name: str, value: Dotted | None) -> None:
        """Record an assignment; a name bound twice differently (or a parameter) conflicts."""
        if (
            value is None
            or name in self.param_names
            or (name in self.local_names and self.bindings.get(name) != value)
        ):
            self.conflicts.add(name)
        self.local_names.add(name)
        if name not in self.conflicts and value is not None:
            self.bindings[name] = value


class _Class:
    def __init__(self, name: str, bases: tuple[Dotted, ...], registered: bool) -> None:
        self.name = name
        self.bases = bases
        self.registered = registered
        self.methods: dict[str, str] = {}
        self.attrs: dict[str, Dotted] = {}
        self.attr_conflicts: set[str] = set()
        #: `self.x = <parameter>` in `__init__`, and the first `self.x.commit()` in a method.
        self.param_attrs: dict[str, str] = {}
        self.attr_manages: dict[str, tuple[str, str, ast.Call]] = {}


class _Block:
    """An open session block: a factory's ``as name`` or a route's ``name.begin()``."""

    def __init__(self, name: str, func: _Func | None, binding: frozenset[int] | None) -> None:
        self.name = name
        self.func = func
        #: The binding the name must still have to be this block's session (None: any).
        self.binding = binding


#: (line, column) to (line, column): code the summary does not read.
_Span = tuple[int, int, int, int]


#: What a summary walk of its own (`SummaryBuilder.run`) does not enter: the code that the
#: builder mutes in the shared walk, and fields that never lead to a call, a binding or a
#: block (types, decorators, operators).
_SKIP_FIELDS = frozenset(
    {
        "ctx",
        "op",
        "ops",
        "kind",
        "type_comment",
        "type_ignores",
        "annotation",
        "returns",
        "type_params",
        "decorator_list",
        "format_spec",
        "simple",
        "is_async",
        "level",
    }
)
#: Per node type: fields not worth walking into besides `_SKIP_FIELDS`.
_SKIP_BY_TYPE: Mapping[type[ast.AST], frozenset[str]] = {
    ast.FunctionDef: frozenset({"name", "args"}),
    ast.AsyncFunctionDef: frozenset({"name", "args"}),
    ast.ClassDef: frozenset({"name", "bases", "keywords"}),
    ast.Lambda: frozenset({"args"}),
}
#: Node types whose children are never walked.
_OPAQUE: frozenset[type[ast.AST]] = frozenset(
    {
        ast.Name,
        ast.Constant,
        ast.JoinedStr,
        ast.arguments,
        ast.arg,
        ast.Import,
        ast.ImportFrom,
        ast.Pass,
        ast.Break,
        ast.Continue,
    }
)
_FIELDS: dict[type[ast.AST], tuple[str, ...]] = {}


def _child_fields(kind: type[ast.AST]) -> tuple[str, ...]:
    names = _FIELDS.get(kind)
    if names is None:
        skip = _SKIP_BY_TYPE.get(kind, frozenset()) | node_free_fields(kind)
        names = tuple(f for f in kind._fields if f not in _SKIP_FIELDS and f not in skip)
        _FIELDS[kind] = names
    return names


#: Per node type: (enter hook, leave hook, how `syntax.walk` reads its children).
_Plan = tuple[Callable[..., None] | None, Callable[..., None] | None, Children]
_PLANS: dict[type, _Plan] = {}


_HOOK_NAMES = {ast.AsyncFunctionDef: "FunctionDef", ast.AsyncWith: "With", ast.AsyncFor: "For"}


def _plan(kind: type) -> _Plan:
    names = () if kind in _OPAQUE or not issubclass(kind, ast.AST) else _child_fields(kind)
    hook = _HOOK_NAMES.get(kind, kind.__name__)
    plan = _PLANS[kind] = (
        getattr(SummaryBuilder, f"visit_{hook}", None),
        getattr(SummaryBuilder, f"leave_{hook}", None),
        children_reader(kind, names, clauses=False),
    )
    return plan


class SummaryBuilder:
    """Collects a `ModuleSummary` in one walk of an `ast` tree: on its own (`run`) or as
    one of the objects of the engine's shared walk (`syntax.dispatch`).

    What a ``def``/``class`` header, a lambda's parameters, a variable annotation and an
    f-string hold is not read (`_muted`). `finish` takes the line of each
    commit/rollback/begin from `ast`.
    """

    def __init__(self, module: ast.Module, vocab: Vocab, text: str | None = None) -> None:
        self.module = module
        self.vocab = vocab
        self._factories = frozenset(vocab.session_factories)
        self._deps = frozenset(vocab.request_session_dependencies)
        self._scopes: list[_Func | _Class] = []
        self._blocks: list[_Block] = []
        self._pushed: list[int] = []
        self._mute: _Span | None = None
        self._summary: ModuleSummary | None = None
        self.imports: dict[str, ImportEntry] = {}
        self.functions: list[_Func] = []
        self.classes: dict[str, _Class] = {}
        self.instances: dict[str, Dotted] = {}
        self.instance_conflicts: set[str] = set()
        self.sites: list[Site] = []
        #: id(FunctionDef) -> qualified name, for the engine rule to find its function.
        self.node_qualnames: dict[int, str] = {}

    def run(self) -> ModuleSummary:
        """Walk the module on its own and build its summary. This walk does not enter the
        code that the builder mutes in the shared walk, which makes it faster; the two give
        the same summary (tests/rules/catalog/tx007/test_tx007_batch.py)."""
        walk(self.module, self._step)
        return self.finish()

    def _step(self, kind: type) -> Step:
        enter, leave, children = _PLANS.get(kind) or _plan(kind)
        return (
            () if enter is None else (enter.__get__(self),),
            () if leave is None else (leave.__get__(self),),
            children,
        )

    # code that is not read ---------------------------------------------------------------

    def _mute_span(self, start: ast.expr | ast.stmt, end: tuple[int, int]) -> None:
        """Do not read what lies from `start` up to `end` (unless inside muted code)."""
        line, column = start.lineno, start.col_offset
        if not self._muted(line, column):
            self._mute = (line, column, *end)

    def _muted(self, line: int, column: int) -> bool:
        # The walk goes in source order, so the last muted span is the only one ahead.
        mute = self._mute
        return mute is not None and (mute[0], mute[1]) <= (line, column) < (mute[2], mute[3])

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        self._mute_span(node, (node.end_lineno or node.lineno, node.end_col_offset or 0))

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._mute_span(node, (node.body.lineno, node.body.col_offset))

    def _mute_header(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        """Decorators, bases, the signature: they run in the enclosing scope."""
        first = node.body[0]
        start = node.decorator_list[0] if node.decorator_list else node
        self._mute_span(start, (first.lineno, first.col_offset))

    # scopes ------------------------------------------------------------------------------

    def _func(self) -> _Func | None:
        return self._scopes[-1] if self._scopes and isinstance(self._scopes[-1], _Func) else None

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        bases = tuple(d for base in node.bases if (d := _dotted(base)))
        self._mute_header(node)
        klass = _Class(node.name, bases, registered=not self._scopes)
        if klass.registered:
            self.classes[klass.name] = klass
        elif (func := self._func()) is not None:
            func.bind(node.name, None)
        self._scopes.append(klass)

    def leave_ClassDef(self, original_node: ast.ClassDef) -> None:
        self._scopes.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._mute_header(node)
        name = node.name
        parent = self._scopes[-1] if self._scopes else None
        decorator_names = [
            _dotted(d.func if isinstance(d, ast.Call) else d) for d in node.decorator_list
        ]
        kind, class_name = "function", None
        if isinstance(parent, _Class):
            kind = "method"
            if ("staticmethod",) in decorator_names:
                kind = "staticmethod"
            elif ("classmethod",) in decorator_names:
                kind = "classmethod"
            parent.methods[name] = kind
            if parent.registered:
                qualname, class_name = f"{parent.name}.{name}", parent.name
            else:  # a class inside a function: not resolvable by name
                qualname = f"<locals>.{parent.name}.{name}"
        elif parent is None:
            qualname = name
        else:
            parent.bind(name, None)
            qualname = f"{parent.qualname}.<locals>.{name}"
        args = node.args
        plist: list[Param] = [Param(p.arg, "positional") for p in (*args.posonlyargs, *args.args)]
        if args.vararg is not None:
            plist.append(Param(args.vararg.arg, "star"))
        plist.extend(Param(p.arg, "keyword") for p in args.kwonlyargs)
        if args.kwarg is not None:
            plist.append(Param(args.kwarg.arg, "starstar"))
        is_route = any(
            d is not None and len(d) >= 2 and d[-1] in ROUTE_METHODS for d in decorator_names
        ) or any(
            self._is_session_dependency(default) or self._annotated_dependency(p.annotation)
            for p, default in function_params(args)
            if p is not args.vararg and p is not args.kwarg
        )
        func = _Func(qualname, kind, class_name, tuple(plist), is_route)
        func.node = node
        self.node_qualnames[id(node)] = qualname
        self._scopes.append(func)

    def _annotated_dependency(self, annotation: ast.expr | None) -> bool:
        """`Annotated[AsyncSession, Depends(get_db)]` (as `rules.engine.context` reads it)."""
        expr = annotation
        if not isinstance(expr, ast.Subscript) or (_dotted(expr.value) or ("",))[-1] != "Annotated":
            return False
        inner = expr.slice
        elements = inner.elts if isinstance(inner, ast.Tuple) else [inner]
        return any(
            not isinstance(element, ast.Slice) and self._is_session_dependency(element)
            for element in elements
        )

    def _is_session_dependency(self, default: ast.expr | None) -> bool:
        if not isinstance(default, ast.Call) or not (default.args or default.keywords):
            return False
        called = _dotted(default.func)
        dependency = _dotted(call_arguments(default)[0].value)
        return bool(
            called and called[-1] == "Depends" and dependency and dependency[-1] in self._deps
        )

    def leave_FunctionDef(self, original_node: ast.FunctionDef) -> None:
        func = self._scopes.pop()
        assert isinstance(func, _Func)
        self.functions.append(func)

    # imports -----------------------------------------------------------------------------

    def _import_table(self) -> dict[str, ImportEntry]:
        func = self._func()
        return func.imports if func is not None else self.imports

    def visit_Import(self, node: ast.Import) -> None:
        table = self._import_table()
        for alias in node.names:
            if alias.asname is not None:
                table[alias.asname] = ImportEntry(alias.name)
            else:
                root = alias.name.split(".", 1)[0]
                table[root] = ImportEntry(root)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if any(alias.name == "*" for alias in node.names):
            return
        table = self._import_table()
        module = node.module or ""
        for alias in node.names:
            bound = alias.asname if alias.asname is not None else alias.name
            table[bound] = ImportEntry(module, alias.name, node.level)

    # bindings ----------------------------------------------------------------------------

    def _assign(self, target: ast.AST, value: ast.AST | None) -> None:
        called = _dotted(value.func) if isinstance(value, ast.Call) else None
        func = self._func()
        if func is None:
            if not self._scopes:  # module level: `adapter = Adapter()` singletons
                for name in _target_names(target):
                    single = isinstance(target, ast.Name) and called is not None
                    if (
                        single
                        and self.instances.get(name, called) == called
                        and name not in self.instance_conflicts
                    ):
                        assert called is not None
                        self.instances[name] = called
                    else:
                        self.instances.pop(name, None)
                        self.instance_conflicts.add(name)
            return
        if isinstance(target, ast.Name):
            func.bind(target.id, called)
            return
        for name in _target_names(target):
            func.bind(name, None)
        if (
            isinstance(target, ast.Attribute)
            and isinstance(target.value, ast.Name)
            and target.value.id == "self"
            and func.qualname.endswith(".__init__")
            and len(self._scopes) >= 2
            and isinstance(owner := self._scopes[-2], _Class)
        ):
            attr = target.attr
            if isinstance(value, ast.Name) and value.id in func.param_names:
                owner.param_attrs[attr] = value.id
            if called is None or owner.attrs.get(attr, called) != called:
                owner.attr_conflicts.add(attr)
            else:
                owner.attrs[attr] = called

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._assign(target, node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        annotation = node.annotation
        self._mute_span(
            annotation, (annotation.end_lineno or annotation.lineno, annotation.end_col_offset or 0)
        )
        self._assign(node.target, node.value)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._assign(node.target, None)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        if not self._muted(node.lineno, node.col_offset):
            self._assign(node.target, node.value)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self._assign(node.target, None)

    def visit_comprehension(self, node: ast.comprehension) -> None:
        if not self._muted(node.target.lineno, node.target.col_offset):
            self._assign(node.target, None)

    def visit_ExceptHandler(self, node: ast.ExceptHandler | ExceptStarHandler) -> None:
        if node.name is not None:
            self._assign(ast.Name(id=node.name), None)

    visit_ExceptStarHandler = visit_ExceptHandler

    # blocks ------------------------------------------------------------------------------

    def _is_factory(self, called: Dotted) -> bool:
        if called[-1] in self._factories:
            return True
        if len(called) == 1:
            func = self._func()
            entry = (func.imports.get(called[0]) if func else None) or self.imports.get(called[0])
            return entry is not None and entry.name in self._factories
        return False

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        func = self._func()
        pushed = 0
        for item in node.items:
            call = item.context_expr
            bound = item.optional_vars
            if bound is not None and func is not None:
                self._assign(bound, None)
            if not isinstance(call, ast.Call):
                continue
            callee = call.func
            if (
                isinstance(callee, ast.Attribute)
                and callee.attr == "begin"
                and isinstance(callee.value, ast.Name)
                and func is not None
                and func.is_route
            ):
                binding = func.reaching(callee.value)
                self._blocks.append(_Block(callee.value.id, func, binding))
                pushed += 1
            elif (
                isinstance(bound, ast.Name)
                and (called := _dotted(callee))
                and self._is_factory(called)
            ):
                self._blocks.append(_Block(bound.id, func, frozenset({id(item)})))
                pushed += 1
        self._pushed.append(pushed)

    def leave_With(self, original_node: ast.With) -> None:
        for _ in range(self._pushed.pop()):
            self._blocks.pop()

    # calls -------------------------------------------------------------------------------

    def visit_Call(self, node: ast.Call) -> None:
        if self._mute is not None and self._muted(node.lineno, node.col_offset):
            return
        func = self._func()
        callee = node.func
        if (
            isinstance(callee, ast.Attribute)
            and callee.attr in MANAGE_ACTIONS
            and isinstance(callee.value, ast.Name)
        ):
            key = (callee.value.id, callee.attr)
            if func is not None and func.is_param(callee.value):
                func.manages.append((key[0], key[1], node))
        elif (
            isinstance(callee, ast.Attribute)
            and callee.attr in MANAGE_ACTIONS
            and isinstance(callee.value, ast.Attribute)
            and isinstance(callee.value.value, ast.Name)
            and callee.value.value.id == "self"
        ):
            attr = callee.value.attr
            owner = self._scopes[-2] if len(self._scopes) >= 2 else None
            if func is not None and isinstance(owner, _Class) and owner.registered:
                owner.attr_manages.setdefault(attr, (func.qualname, callee.attr, node))
        if not node.args and not node.keywords:
            return
        passed = passed_name_nodes(node)
        if not passed:
            return
        shape = call_shape(callee)
        if shape is None:
            return
        if func is not None:
            for use, ref in passed:
                if func.is_param(use):
                    func.forwards.append(Forward(use.id, shape, ref))
        seen: set[str] = set()
        for block in self._blocks:
            if block.func is not func or block.name in seen:
                continue
            for use, ref in passed:
                if use.id == block.name and self._still_bound(block, use):
                    seen.add(use.id)
                    self.sites.append(Site(shape, ref, use.id, func.qualname if func else None))
                    break

    @staticmethod
    def _still_bound(block: _Block, use: ast.Name) -> bool:
        """`use` may still hold the block's session (unless rebound on every path)."""
        if block.func is None or block.binding is None:
            return True
        reaching = block.func.reaching(use)
        return reaching is None or not reaching.isdisjoint(block.binding)

    # result ------------------------------------------------------------------------------

    def finish(self) -> ModuleSummary:
        """Build the summary (once), with the line of every commit/rollback/begin."""
        if self._summary is None:
            self._summary = self._build()
        return self._summary

    def _build(self) -> ModuleSummary:
        functions: dict[str, FunctionSummary] = {}
        for f in self.functions:
            rebound = f.conflicts & f.param_names
            manages: dict[str, Manage] = {}
            for param, action, call in f.manages:  # recorded only while not rebound
                if param not in manages:
                    manages[param] = Manage(param, action, call.lineno)
            owner = self.classes.get(f.class_name) if f.class_name else None
            if owner is not None and f.qualname == f"{owner.name}.__init__":
                for attr, param in owner.param_attrs.items():
                    if attr in owner.attr_manages and param not in rebound | manages.keys():
                        method, action, call = owner.attr_manages[attr]
                        line = call.lineno
                        manages[param] = Manage(param, action, line, method, attr)
            functions[f.qualname] = FunctionSummary(
                qualname=f.qualname,
                kind=f.kind,
                class_name=f.class_name,
                params=f.params,
                manages=tuple(manages.values()),
                forwards=tuple(fw for fw in f.forwards if fw.param not in rebound),
                bindings={k: v for k, v in f.bindings.items() if k not in f.conflicts},
                local_names=frozenset(f.local_names),
                imports=dict(f.imports),
            )
        classes = {
            name: ClassSummary(
                name,
                k.bases,
                dict(k.methods),
                {a: v for a, v in k.attrs.items() if a not in k.attr_conflicts},
            )
            for name, k in self.classes.items()
        }
        return ModuleSummary(
            dict(self.imports), functions, classes, dict(self.instances), tuple(self.sites)
        )


_CACHE: LRUCache[tuple[bytes, Vocab], ModuleSummary | None] = LRUCache(maxsize=4096)
_CACHE_LOCK = threading.Lock()
#: How many summaries were computed (not served from the cache); tests and benchmarks read it.
STATS = {"computed": 0}


def summarize_tree(module: ast.Module, vocab: Vocab, text: str | None = None) -> ModuleSummary:
    """Summarise an already parsed module (`text`, its source, makes lines cheaper)."""
    STATS["computed"] += 1
    return SummaryBuilder(module, vocab, text).run()


def parse_source(source: bytes) -> tuple[ast.Module, str] | None:
    """Parse a module the way the engine does (decoding, CPython pre-check against
    pathological nesting): (tree, text), or None when it cannot be analysed."""
    text = decode(source)
    if not isinstance(text, str):
        return None
    parsed = parse(text)
    return (parsed, text) if isinstance(parsed, ast.Module) else None


def summarize(source: bytes, vocab: Vocab = Vocab()) -> ModuleSummary | None:
    """The summary of a module's bytes (None if it does not parse), cached by the SHA-1 of
    the bytes (and the vocabulary)."""
    key = (hashlib.sha1(source).digest(), vocab)
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
    result: ModuleSummary | None = None
    try:
        parsed = parse_source(source)
        if parsed is not None:
            result = summarize_tree(parsed[0], vocab, parsed[1])
    except (RecursionError, MemoryError):
        result = None
    with _CACHE_LOCK:
        _CACHE[key] = result
    return result


def remember_summary(source: bytes, vocab: Vocab, summary: ModuleSummary | None) -> None:
    """Cache a summary computed elsewhere (the app computes them in worker processes), so
    that `summarize` of the same bytes returns it without parsing."""
    with _CACHE_LOCK:
        _CACHE[(hashlib.sha1(source).digest(), vocab)] = summary


def clear_cache() -> None:
    """Forget cached summaries (tests)."""
    with _CACHE_LOCK:
        _CACHE.clear()
    STATS["computed"] = 0


# --- the project index ---------------------------------------------------------------------


Loader = Callable[[str], "bytes | None"]
AsyncFetcher = Callable[[str], Awaitable["bytes | None"]]


#: ``import a.b as c, d`` / ``from ..a import (b as c, d)``: dots, module, names / modules.
_IMPORT_LINE = re.compile(
    rb"^[ \t]*(?:from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]*(\([^)]*\)|[^\r\n;#]+)"
    rb"|import[ \t]+([^\r\n;#]+))",
    re.MULTILINE,
)


class DiskLoader:
    """`load(path)` for `ProjectIndex`: the file's bytes under `root` (picklable)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __call__(self, path: str) -> bytes | None:
        file = self.root / path
        try:
            if file.stat().st_size > MAX_FILE_BYTES:
                return None
            return file.read_bytes()
        except OSError:
            return None


class ProjectIndex:
    """The repository's Python modules, for following calls across files (TX007).

    `paths` are all repo-relative `.py` paths ("/"-separated). Sources come from `add_source`
    (already in memory) or the optional synchronous `load(path) -> bytes | None`. Without a
    loader, a module that resolution needs but does not have is recorded in `missing`, which
    is how the app learns what to fetch (`modules_needed`, `prefetch`).

    At most `max_modules` modules are loaded for resolution (None: no limit; modules given
    with `add_source` do not count); past that, resolution stops following calls into new
    modules, `limit_hit` becomes True and the modules not followed are in `skipped`.
    """

    def __init__(
        self,
        paths: Iterable[str],
        load: Loader | None = None,
        *,
        max_modules: int | None = 100,
        config: object = None,
        root: Path | None = None,
    ) -> None:
        self.paths: frozenset[str] = frozenset(
            p.replace("\\", "/").strip("/") for p in paths if p.endswith(".py")
        )
        self.load = load
        self.max_modules = max_modules
        self.vocab = Vocab.from_config(config) if config is not None else Vocab()
        self.root = root.resolve() if root is not None else None
        self.limit_hit = False
        self.skipped: set[str] = set()
        self.missing: set[str] = set()
        self.loaded: set[str] = set()
        self._summaries: dict[str, ModuleSummary | None] = {}
        #: path -> SHA-1 (hex) of the bytes its summary was made from
        self._digests: dict[str, str] = {}
        #: What resolution read since `track()`: path -> digest (None: absent, unreadable).
        self._read: dict[str, str | None] | None = None
        self._used = False
        self._lock = threading.Lock()
        self._packages = {
            p.rsplit("/", 1)[0] if "/" in p else "" for p in self.paths if p.endswith("__init__.py")
        }
        #: dotted module name -> [(root prefix, path)]
        self._by_name: dict[str, list[tuple[str, str]]] = {}
        self._root_of: dict[str, str] = {}
        for path in sorted(self.paths):
            parts = path[:-3].split("/")
            if parts[-1] == "__init__":
                parts = parts[:-1]
            for i in range(len(parts)):
                root_dir = "/".join(parts[:i])
                if not self._is_root(root_dir, parts[i]):
                    continue
                self._by_name.setdefault(".".join(parts[i:]), []).append((root_dir, path))
                # the longest valid root wins: src/app/x.py is app.x, not src.app.x
                self._root_of[path] = root_dir

    def _is_root(self, root: str, first: str) -> bool:
        """Whether `root` can be an import root: the repo root, a `src` folder, or a folder
        that is not a package itself but holds one."""
        if root == "":
            return True
        if root.split("/")[-1] in ("src", "lib", "python"):
            return True
        return root not in self._packages and f"{root}/{first}" in self._packages

    @classmethod
    def from_disk(
        cls, root: Path, config: object = None, *, max_modules: int | None = None
    ) -> ProjectIndex:
        """Index every `.py` file under `root`, read lazily from disk.

        Paths are relative to `root`: build it with the root the CLI makes its paths
        relative to. No module cap by default: reading the disk is cheap; the cap is for the
        app's fetches.
        """
        root = Path(root)
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in _SKIP_DIRS]
            rel = Path(dirpath).relative_to(root).as_posix()
            prefix = "" if rel == "." else rel + "/"
            found.extend(prefix + f for f in filenames if f.endswith(".py"))

        return cls(found, DiskLoader(root), max_modules=max_modules, config=config, root=root)

    def __getstate__(self) -> dict[str, object]:
        """Picklable (the app hands the index to engine worker processes)."""
        state = dict(self.__dict__)
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # names <-> paths ---------------------------------------------------------------------

    def normalize(self, path: str) -> str:
        """The index's form of a path given by the engine ("./a.py", absolute under root)."""
        path = path.replace("\\", "/")
        while path.startswith("./"):
            path = path[2:]
        if path in self.paths or self.root is None:
            return path
        try:
            return Path(path).resolve().relative_to(self.root).as_posix()
        except (ValueError, OSError):
            return path

    def module_name(self, path: str) -> str | None:
        """`app.services.x` for `app/services/x.py` or `src/app/services/x.py`."""
        root = self._root_of.get(path)
        if root is None:
            return None
        rel = path[len(root) + 1 :] if root else path
        parts = rel[:-3].split("/")
        if parts[-1] == "__init__":
            parts = parts[:-1]
        return ".".join(parts)

    def path_for_module(self, name: str, importer: str | None = None) -> str | None:
        """The file of module `name`, preferring the importer's import root; None if absent
        or ambiguous."""
        if self._read is not None:
            self._used = True
        return self._find(name, importer)

    def _find(self, name: str, importer: str | None) -> str | None:
        candidates = self._by_name.get(name)
        if not candidates:
            return None
        if len(candidates) == 1:
            return candidates[0][1]
        if importer is not None:
            mine = self._root_of.get(importer)
            same = [path for root, path in candidates if root == mine]
            if len(same) == 1:
                return same[0]
        top = [path for root, path in candidates if root == ""]
        return top[0] if len(top) == 1 else None

    def callee_first(self, paths: Sequence[str], sources: Sequence[bytes | None]) -> list[int]:
        """The positions of `paths` in an order where a module comes before the modules of
        `paths` that import it (cycles are cut where they close). Auditing in this order lets
        each audit keep its module's summary (`add_audited`) before any caller needs it.
        Imports are read from the bytes with a regular expression: an approximation that can
        only cost time, never change a finding."""
        position = {self.normalize(path): i for i, path in enumerate(paths)}
        imports: list[list[int]] = []
        for path, source in zip(paths, sources, strict=True):
            importer = self.normalize(path)
            found = self._imported_paths(importer, source) if source else set()
            imports.append(sorted(position[p] for p in found if p in position))
        order: list[int] = []
        state = [0] * len(paths)  # 0 not seen, 1 on the stack, 2 placed
        for start in range(len(paths)):
            if state[start]:
                continue
            stack = [(start, iter(imports[start]))]
            state[start] = 1
            while stack:
                node, pending = stack[-1]
                nxt = next((i for i in pending if not state[i]), None)
                if nxt is None:
                    stack.pop()
                    state[node] = 2
                    order.append(node)
                else:
                    state[nxt] = 1
                    stack.append((nxt, iter(imports[nxt])))
        return order

    def _imported_paths(self, importer: str, source: bytes) -> set[str]:
        found: set[str] = set()
        own = self.module_name(importer)
        package = (own or "").split(".")
        if not self.is_package(importer):
            package = package[:-1]
        for match in _IMPORT_LINE.finditer(source):
            dots, module, names, plain = match.groups()
            if plain is not None:
                modules = [n.split()[0] for n in plain.decode("ascii", "replace").split(",")]
                found.update(p for m in modules if m and (p := self._find(m, importer)))
                continue
            base = module.decode("ascii", "replace")
            if dots:
                level = len(dots)
                if own is None or level - 1 > len(package):
                    continue
                parts = package[: len(package) - (level - 1)]
                base = ".".join([*parts, *([base] if base else [])])
            listed = names.decode("ascii", "replace").strip("()").replace("\\", " ")
            for name in (n.split()[0] for n in listed.split(",") if n.split()):
                if (path := self._find(f"{base}.{name}" if base else name, importer)) is not None:
                    found.add(path)
            if base and (path := self._find(base, importer)) is not None:
                found.add(path)
        return found

    def is_package(self, path: str) -> bool:
        return path.endswith("/__init__.py") or path == "__init__.py"

    # sources -----------------------------------------------------------------------------

    def add_source(self, path: str, source: bytes | None) -> None:
        """Provide a module's bytes (audited files, or what the app fetched); not counted
        against `max_modules`."""
        path = self.normalize(path)
        with self._lock:
            self.missing.discard(path)
        self._summaries[path] = self._summarize(path, source)

    def add_audited(self, path: str, source: bytes, summary: ModuleSummary) -> None:
        """Keep the summary that the audit of a module's bytes built in its walk, so that
        resolving a later file's calls into it does not parse it again."""
        remember_summary(source, self.vocab, summary)
        path = self.normalize(path)
        if path in self._summaries:  # given with `add_source`, or already loaded
            return
        with self._lock:
            self.missing.discard(path)
        self._digests[path] = hashlib.sha1(source).hexdigest()
        self._summaries[path] = summary

    def _summarize(self, path: str, source: bytes | None) -> ModuleSummary | None:
        """The summary of a module's bytes, remembering their digest (`tracked`)."""
        if source is None:
            return None
        self._digests[path] = hashlib.sha1(source).hexdigest()
        return summarize(source, self.vocab)

    def has(self, path: str) -> bool:
        return path in self._summaries

    def track(self) -> None:
        """Start recording the modules that resolution reads (`tracked`)."""
        self._read, self._used = {}, False

    def tracked(self) -> dict[str, str | None] | None:
        """The modules read since `track()`, path -> SHA-1 of the bytes used (None: not in
        the tree or unreadable), and stop recording. None when resolution used nothing of
        the index. Any use of it depends on the tree's set of paths as well."""
        read, self._read = self._read, None
        return read if read or self._used else None

    def _record(self, path: str) -> None:
        if self._read is not None:
            self._read[path] = self._digests.get(path)

    def summary(self, path: str) -> ModuleSummary | None:
        """A module's summary, loading it if allowed; None if absent, unparsable, not yet
        fetched (recorded in `missing`) or past the module cap (recorded in `skipped`)."""
        if path in self._summaries:
            self._record(path)
            return self._summaries[path]
        if path not in self.paths:
            self._record(path)
            return None
        with self._lock:
            if self.max_modules is not None and len(self.loaded) >= self.max_modules:
                self.limit_hit = True
                self.skipped.add(path)
                return None
            if self.load is None:
                self.missing.add(path)
                return None
            self.loaded.add(path)
        result = self._summarize(path, self.load(path))
        self._summaries[path] = result
        self._record(path)
        return result

    def modules_needed(self, path: str, source: bytes | None = None) -> set[str]:
        """Paths of the modules that resolving `path`'s call sites needs and the index does
        not have yet. Empty when everything needed is in memory (or the cap was reached)."""
        path = self.normalize(path)
        if source is not None and path not in self._summaries:
            self.add_source(path, source)
        summary = self._summaries.get(path)
        if summary is None or not summary.sites:
            return set()
        before = set(self.missing)
        self.missing.clear()
        callee_violations(summary, path, self)
        needed = set(self.missing)
        self.missing |= before
        return needed

    def _summarize_all(self, sources: Sequence[bytes | None]) -> list[ModuleSummary | None]:
        return [summarize(s, self.vocab) if s is not None else None for s in sources]

    @classmethod
    async def prefetched(
        cls,
        paths: Iterable[str],
        sources: Mapping[str, bytes],
        fetch: AsyncFetcher,
        config: object = None,
        *,
        concurrency: int = 8,
    ) -> ProjectIndex:
        """The app's index for one audit: every `.py` path of the head tree, the audited
        files' `sources`, and the modules their calls lead to fetched with `fetch(path)`
        (level by level, concurrently, at most `config.max_callee_modules`)."""
        cap = getattr(config, "max_callee_modules", 100)
        index = cls(paths, None, max_modules=cap, config=config)

        def add_all() -> None:
            for path, source in sources.items():
                index.add_source(path, source)

        await asyncio.to_thread(add_all)  # parsing is CPU work: keep the event loop free
        await index.prefetch(list(sources), fetch, concurrency=concurrency)
        return index

    def limit_note(self) -> str | None:
        """One sentence for the audit summary when the module cap cut TX007's search."""
        if not self.limit_hit:
            return None
        more = len(self.skipped)
        return (
            f"TX007 followed calls into {len(self.loaded)} modules (max_callee_modules); "
            f"{more} more {'was' if more == 1 else 'were'} not read, so calls into "
            f"{'it were' if more == 1 else 'them were'} not checked."
        )

    async def prefetch(
        self, paths: Iterable[str], fetch: AsyncFetcher, *, concurrency: int = 8
    ) -> None:
        """Fetch, level by level and concurrently, every module that TX007 needs to follow the
        calls made by `paths` (already given with `add_source`). Stops at `max_modules`."""
        start = [self.normalize(p) for p in paths]
        semaphore = asyncio.Semaphore(concurrency)

        async def one(path: str) -> tuple[str, bytes | None]:
            async with semaphore:
                return path, await fetch(path)

        for _ in range(4 * (MAX_DEPTH + 2)):  # levels, including re-export hops
            needed: set[str] = set()
            for path in start:
                needed |= self.modules_needed(path)
            needed -= set(self._summaries)
            if not needed:
                return
            room = None if self.max_modules is None else self.max_modules - len(self.loaded)
            batch = sorted(needed)
            if room is not None and len(batch) > room:
                self.limit_hit = True
                self.skipped.update(batch[max(room, 0) :])
                batch = batch[: max(room, 0)]
            if not batch:
                return
            self.loaded.update(batch)
            fetched = await asyncio.gather(*(one(p) for p in batch))
            sources = [source for _, source in fetched]
            summaries = await asyncio.to_thread(self._summarize_all, sources)
            for (path, _), summary in zip(fetched, summaries, strict=True):
                self._summaries[path] = summary
                self.missing.discard(path)


# --- resolution ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Ref:
    """A resolved name: module, function, class, or instance of a class."""

    kind: str  # module | function | class | instance
    path: str | None  # file of the module / definition
    name: str  # module name, function qualname, class name
    cls: tuple[str, str] | None = None  # for instance: (path, class name)


@dataclass(frozen=True, slots=True)
class Target:
    """A function or method a call resolves to, and the parameter that gets the session."""

    path: str
    qualname: str
    param: str


@dataclass(frozen=True, slots=True)
class Chain:
    """How a call site leads to a transaction being managed."""

    hops: tuple[Target, ...]  # the callee first, the function that manages it last
    action: str
    line: int


class Resolver:
    """Resolves calls of one audited module, in memory and through an optional index."""

    def __init__(self, summary: ModuleSummary, path: str, index: ProjectIndex | None) -> None:
        self.summary = summary
        self.path = path
        self.index = index
        self._memo: dict[tuple[str, str, str, int], Chain | None] = {}

    # modules -----------------------------------------------------------------------------

    def _module(self, path: str) -> ModuleSummary | None:
        if path == self.path:
            return self.summary
        return self.index.summary(path) if self.index is not None else None

    def _module_ref(self, name: str, importer: str) -> _Ref | None:
        if self.index is None:
            return None
        path = self.index.path_for_module(name, importer)
        return _Ref("module", path, name)

    def _absolute(self, entry: ImportEntry, importer: str) -> str | None:
        if entry.level == 0:
            return entry.module
        if self.index is None:
            return None
        own = self.index.module_name(importer)
        if own is None:
            return None
        package = own.split(".") if self.index.is_package(importer) else own.split(".")[:-1]
        if entry.level - 1 > len(package):
            return None
        base = package[: len(package) - (entry.level - 1)]
        return ".".join([*base, *([entry.module] if entry.module else [])])

    # names -------------------------------------------------------------------------------

    def _name(
        self, path: str, name: str, func: FunctionSummary | None, seen: frozenset[str]
    ) -> _Ref | None:
        """What `name` means in module `path` (in function `func` when given)."""
        if func is not None:
            if name in func.imports:
                return self._import(path, func.imports[name], seen)
            if name in func.local_names:
                return None
        module = self._module(path)
        if module is None:
            return None
        if name in module.functions:
            return _Ref("function", path, name)
        if name in module.classes:
            return _Ref("class", path, name)
        if name in module.instances:
            klass = self._parts(path, module.instances[name], None, seen)
            if klass is not None and klass.kind == "class":
                return _Ref("instance", klass.path, klass.name, (klass.path or "", klass.name))
            return None
        if name in module.imports:
            return self._import(path, module.imports[name], seen)
        return None

    def _import(self, path: str, entry: ImportEntry, seen: frozenset[str]) -> _Ref | None:
        module = self._absolute(entry, path)
        if module is None:
            return None
        if entry.name is None:
            return self._module_ref(module, path)
        ref = self._module_ref(module, path)
        if ref is None:
            return None
        found = self._attr(ref, entry.name, seen)
        if found is not None:
            return found
        return self._module_ref(f"{module}.{entry.name}", path)

    def _attr(self, ref: _Ref, name: str, seen: frozenset[str]) -> _Ref | None:
        if ref.kind == "module":
            if ref.path is not None:
                key = f"{ref.path}:{name}"
                if key in seen or len(seen) > 12:
                    return None
                found = self._name(ref.path, name, None, seen | {key})
                if found is not None:
                    return found
            return self._module_ref(
                f"{ref.name}.{name}", self.path if ref.path is None else ref.path
            )
        if ref.kind in ("class", "instance"):
            return None  # methods are handled by `_method`
        return None

    def _parts(
        self,
        path: str,
        parts: Dotted,
        func: FunctionSummary | None,
        seen: frozenset[str] = frozenset(),
    ) -> _Ref | None:
        ref = self._name(path, parts[0], func, seen)
        for part in parts[1:]:
            if ref is None or ref.kind != "module":
                return None
            ref = self._attr(ref, part, seen)
        if ref is not None and ref.kind == "module" and ref.path is None:
            return None
        return ref

    def _method(
        self, path: str, klass: str, name: str, depth: int = 0
    ) -> tuple[str, ClassSummary, str] | None:
        """(path, class, kind) of method `name` on class `klass` in `path`, walking bases."""
        module = self._module(path)
        if module is None or klass not in module.classes or depth > 5:
            return None
        summary = module.classes[klass]
        if name in summary.methods:
            return path, summary, summary.methods[name]
        for base in summary.bases:
            ref = self._parts(path, base, None)
            if ref is not None and ref.kind == "class" and ref.path is not None:
                found = self._method(ref.path, ref.name, name, depth + 1)
                if found is not None:
                    return found
        return None

    # calls -------------------------------------------------------------------------------

    def resolve(
        self, path: str, shape: CallShape, func: FunctionSummary | None, arg: ArgRef
    ) -> Target | None:
        """The function a call in `path` (inside `func`) reaches, and the parameter that
        receives the argument at `arg`; None when anything is uncertain."""
        bound: tuple[str, str, str] | None = None  # (path, class, method) on an instance
        plain: _Ref | None = None
        unbound: tuple[str, str, str] | None = None  # (path, class, method) via the class
        parts = shape.parts
        if shape.ctor is not None:
            klass = self._parts(path, shape.ctor, func)
            if klass is None or klass.kind != "class" or klass.path is None or len(parts) != 1:
                return None
            bound = (klass.path, klass.name, parts[0])
        elif (
            func is not None
            and func.class_name is not None
            and parts[0] in ("self", "cls")
            and parts[0] in {p.name for p in func.params[:1]}
        ):
            if len(parts) == 2 and parts[0] == "self":
                bound = (path, func.class_name, parts[1])
            elif len(parts) == 2:
                unbound = (path, func.class_name, parts[1])
            elif len(parts) == 3 and parts[0] == "self":
                module = self._module(path)
                owner = module.classes.get(func.class_name) if module else None
                if owner is None or parts[1] not in owner.attrs:
                    return None
                klass = self._parts(path, owner.attrs[parts[1]], None)
                if klass is None or klass.kind != "class" or klass.path is None:
                    return None
                bound = (klass.path, klass.name, parts[2])
            else:
                return None
        elif func is not None and parts[0] in func.bindings and len(parts) == 2:
            klass = self._parts(path, func.bindings[parts[0]], func)
            if klass is None or klass.kind != "class" or klass.path is None:
                return None
            bound = (klass.path, klass.name, parts[1])
        else:
            ref = self._parts(path, parts, func)
            if ref is None and len(parts) >= 2:
                owner_ref = self._parts(path, parts[:-1], func)
                if owner_ref is not None and owner_ref.kind == "class" and owner_ref.path:
                    unbound = (owner_ref.path, owner_ref.name, parts[-1])
                elif owner_ref is not None and owner_ref.kind == "instance" and owner_ref.cls:
                    bound = (owner_ref.cls[0], owner_ref.cls[1], parts[-1])
                else:
                    return None
            elif ref is None:
                return None
            elif ref.kind == "function":
                plain = ref
            elif ref.kind == "class" and ref.path is not None:
                bound = (ref.path, ref.name, "__init__")  # the constructor
            else:
                return None
        if plain is not None:
            assert plain.path is not None
            module = self._module(plain.path)
            target = module.functions.get(plain.name) if module else None
            return self._map(plain.path, target, 0, arg)
        via_instance = bound is not None
        where = bound or unbound
        assert where is not None
        found = self._method(*where)
        if found is None:
            return None
        method_path, klass_summary, kind = found
        module = self._module(method_path)
        target = module.functions.get(f"{klass_summary.name}.{where[2]}") if module else None
        if kind == "staticmethod":
            skip = 0
        elif kind == "classmethod":
            skip = 1
        else:
            skip = 1 if via_instance else 0
        return self._map(method_path, target, skip, arg)

    @staticmethod
    def _map(path: str, target: FunctionSummary | None, skip: int, arg: ArgRef) -> Target | None:
        if target is None:
            return None
        if arg.keyword is not None:
            for param in target.params[skip:]:
                if param.name == arg.keyword and param.kind in ("positional", "keyword"):
                    return Target(path, target.qualname, param.name)
            return None
        positional = [p for p in target.params if p.kind == "positional"]
        index = (arg.position or 0) + skip
        if index < len(positional):
            return Target(path, target.qualname, positional[index].name)
        return None

    def chain(self, target: Target, depth: int = 1) -> Chain | None:
        """How `target` (reached at `depth`) manages the session it receives, if it does."""
        key = (target.path, target.qualname, target.param, depth)
        if key in self._memo:
            return self._memo[key]
        self._memo[key] = None  # cycle guard
        module = self._module(target.path)
        func = module.functions.get(target.qualname) if module else None
        result: Chain | None = None
        if func is not None:
            for manage in func.manages:
                if manage.param == target.param:
                    hops: tuple[Target, ...] = (target,)
                    if manage.method is not None:  # stored by the constructor
                        hops += (Target(target.path, manage.method, f"self.{manage.attr}"),)
                    result = Chain(hops, manage.action, manage.line)
                    break
            if result is None and depth < MAX_DEPTH:
                for forward in func.forwards:
                    if forward.param != target.param:
                        continue
                    nxt = self.resolve(target.path, forward.shape, func, forward.arg)
                    if nxt is None:
                        continue
                    sub = self.chain(nxt, depth + 1)
                    if sub is not None:
                        result = Chain((target, *sub.hops), sub.action, sub.line)
                        break
        self._memo[key] = result
        return result


def describe(name: str, chain: Chain) -> str:
    """The TX007 message: one sentence naming the callee, and the file and line where the
    session is committed, rolled back or begun."""
    hops = list(chain.hops)
    verb = MANAGE_ACTIONS[chain.action]
    if hops[-1].param.startswith("self.") and len(hops) >= 2:
        # `C(session)` keeps it as `self.x`; a method of C manages it
        last = hops.pop()
        keeper = hops[-1].qualname.removesuffix(".__init__")
        where = f"`{keeper}`, which keeps it as `{last.param}` and `{last.qualname}` "
        where += f"({last.path}:{chain.line})"
    else:
        last = hops[-1]
        where = f"`{last.qualname}` ({last.path}:{chain.line})"
    if len(hops) == 1:
        route = f"to {where}"
    else:
        via = ", ".join(f"`{hop.qualname}`" for hop in hops[1:-1])
        route = f"to `{hops[0].qualname}`, which passes it on"
        route += f" through {via}" if via else ""
        route += f" to {where}"
    return (
        f"Passes `{name}` {route}, which {verb}; "
        "the block that owns the session must own its transaction."
    )


def callee_violations(
    summary: ModuleSummary,
    path: str,
    index: ProjectIndex | None = None,
    sites: Sequence[Site] | None = None,
) -> list[tuple[Site, Chain]]:
    """The call sites of a module (all of them unless `sites` is given) whose callee
    manages the session, with the chain that leads there."""
    if index is not None:
        path = index.normalize(path)
    resolver = Resolver(summary, path, index)
    result: list[tuple[Site, Chain]] = []
    for site in summary.sites if sites is None else sites:
        func = summary.functions.get(site.function) if site.function else None
        target = resolver.resolve(path, site.shape, func, site.arg)
        chain = resolver.chain(target) if target is not None else None
        if chain is not None:
            result.append((site, chain))
    return result


RULE_ID = "TX007"


def quick_reject(source: bytes, vocab: Vocab) -> bool:
    """True when a module cannot contain a TX007 call site (no factory name, no `begin`)."""
    if b"begin" in source:
        return False
    return not any(name.encode() in source for name in vocab.session_factories)
