"""TX007's module summaries: one module reduced to what resolving a call into it needs.

`summarize(source, vocab)` parses a module (through the engine's parse guard) and walks it
once with `SummaryBuilder`, cached by the SHA-1 of its bytes: per function, the parameters it
commits, rolls back or begins (with the line), the calls that pass a parameter on and its
local instance bindings; the module's imports, classes (methods and their kinds, bases,
`self.x = Foo(...)` in `__init__`) and module-level instances; and the call sites that pass
an owned session on. The audit of a file builds the same summary in the engine's shared walk
(`SummaryBuilder` is one of its objects).
"""

from __future__ import annotations

import ast
import hashlib
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from cachetools import LRUCache

from rules.engine.bindings import BindingsMemo, parameters
from rules.engine.context import call_arguments, dotted_parts, function_params, target_names
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
ROUTE_METHODS = frozenset(
    {"get", "post", "put", "patch", "delete", "head", "options", "api_route", "websocket"}
)

Dotted = tuple[str, ...]


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


def call_shape(func: ast.AST) -> CallShape | None:
    dotted = dotted_parts(func)
    if dotted is not None:
        return CallShape(dotted)
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call):
        ctor = dotted_parts(func.value.func)
        if ctor is not None:
            return CallShape((func.attr,), ctor)
    return None


def passed_name_nodes(call: ast.Call) -> list[tuple[ast.Name, ArgRef]]:
    """(the `ast.Name`, where) for every argument of `call` that is a bare name, in source
    order."""
    if ast.Name not in map(type, call.args) and not (
        call.keywords and ast.Name in [type(k.value) for k in call.keywords]
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
        bindings: BindingsMemo,
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
        self._bindings = bindings

    def reaching(self, use: ast.Name) -> frozenset[int] | None:
        """The bindings that may be live at the load `use` in this function (None: not
        a load that this function's body evaluates)."""
        if self.node is None:
            return None
        return self._bindings.of(self.node).get(id(use))

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

    def __init__(
        self,
        module: ast.Module,
        vocab: Vocab,
        text: str | None = None,
        bindings: BindingsMemo | None = None,
    ) -> None:
        self.module = module
        #: Shared with the file's context in the engine's walk (both need the same).
        self._bindings = bindings if bindings is not None else BindingsMemo()
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
        bases = tuple(d for base in node.bases if (d := dotted_parts(base)))
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
            dotted_parts(d.func if isinstance(d, ast.Call) else d) for d in node.decorator_list
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
        func = _Func(qualname, kind, class_name, tuple(plist), is_route, self._bindings)
        func.node = node
        self.node_qualnames[id(node)] = qualname
        self._scopes.append(func)

    def _annotated_dependency(self, annotation: ast.expr | None) -> bool:
        """`Annotated[AsyncSession, Depends(get_db)]` (as `rules.engine.context` reads it)."""
        expr = annotation
        if (
            not isinstance(expr, ast.Subscript)
            or (dotted_parts(expr.value) or ("",))[-1] != "Annotated"
        ):
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
        called = dotted_parts(default.func)
        dependency = dotted_parts(call_arguments(default)[0].value)
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
        called = dotted_parts(value.func) if isinstance(value, ast.Call) else None
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
                and (called := dotted_parts(callee))
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


def source_digest(source: bytes) -> str:
    """The SHA-1 (hex) by which the index records the bytes of a module it read, and the
    CLI's result cache checks them."""
    return hashlib.sha1(source).hexdigest()


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
