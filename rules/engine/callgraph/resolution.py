"""TX007's call resolution: from a call site to the function that manages the session.

`Resolver` resolves a call (imports, re-exports, classes, instances, `self`) to a function
and parameter, and `Resolver.chain` follows the session through at most `MAX_DEPTH` calls to
a function that manages the transaction itself. Other modules' summaries come from a
`ModuleIndex` (`rules.engine.callgraph.index.ProjectIndex`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from rules.engine.callgraph.summaries import (
    MANAGE_ACTIONS,
    ArgRef,
    CallShape,
    ClassSummary,
    Dotted,
    FunctionSummary,
    ImportEntry,
    ModuleSummary,
    Site,
)

#: How many calls deep the session is followed from the call site (the callee is level 1).
MAX_DEPTH = 3


class ModuleIndex(Protocol):
    """What resolution asks of the project index (`index.ProjectIndex`)."""

    def normalize(self, path: str) -> str: ...
    def path_for_module(self, name: str, importer: str | None = None) -> str | None: ...
    def absolute_module(self, module: str, level: int, importer: str) -> str | None: ...
    def summary(self, path: str) -> ModuleSummary | None: ...


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

    def __init__(self, summary: ModuleSummary, path: str, index: ModuleIndex | None) -> None:
        self.summary = summary
        self.path = path
        self.index = index
        self._memo: dict[tuple[str, str, str, int], Chain | None] = {}

    @classmethod
    def for_module(cls, summary: ModuleSummary, path: str, index: ModuleIndex | None) -> Resolver:
        """The resolver of the module at `path` (as the index spells paths, if there is one)."""
        return cls(summary, index.normalize(path) if index is not None else path, index)

    def site_chain(self, site: Site) -> Chain | None:
        """How the call `site` of this module leads to a function that manages the session
        it passes, or None."""
        func = self.summary.functions.get(site.function) if site.function else None
        target = self.resolve(self.path, site.shape, func, site.arg)
        return self.chain(target) if target is not None else None

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
        return self.index.absolute_module(entry.module, entry.level, importer)

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
    index: ModuleIndex | None = None,
    sites: Sequence[Site] | None = None,
) -> list[tuple[Site, Chain]]:
    """The call sites of a module (all of them unless `sites` is given) whose callee
    manages the session, with the chain that leads there."""
    resolver = Resolver.for_module(summary, path, index)
    result: list[tuple[Site, Chain]] = []
    for site in summary.sites if sites is None else sites:
        chain = resolver.site_chain(site)
        if chain is not None:
            result.append((site, chain))
    return result
