"""TX007's project index: module names to repo-relative paths, and the modules' summaries.

`ProjectIndex` maps module names to paths (`src/` layouts, packages) and provides other
modules' summaries, loaded lazily through a loader callback (CLI, `DiskLoader`) or prefetched
level by level (app), under a cap on the number of modules; `add_audited` keeps the summary
an audit built, and `callee_first` orders a project's files so that a module is audited
before the modules that import it.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path

from rules.engine.callgraph.resolution import MAX_DEPTH, callee_violations
from rules.engine.callgraph.summaries import (
    ModuleSummary,
    Vocab,
    remember_summary,
    source_digest,
    summarize,
)

#: Files larger than this are not read by `ProjectIndex.from_disk` (the app skips them too).
MAX_FILE_BYTES = 1_000_000
_SKIP_DIRS = frozenset({"node_modules", "__pycache__", "site-packages", "venv", "env"})


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

    def callee_first(self, paths: Sequence[str], imports: Sequence[Collection[str]]) -> list[int]:
        """The positions of `paths` in an order where a module comes before the modules of
        `paths` that import it (`imports[i]`: what `paths[i]` imports, from `imports_of`;
        cycles are cut where they close). Auditing in this order lets each audit keep its
        module's summary (`add_audited`) before any caller needs it."""
        position = {self.normalize(path): i for i, path in enumerate(paths)}
        edges = [sorted(position[p] for p in found if p in position) for found in imports]
        order: list[int] = []
        state = [0] * len(paths)  # 0 not seen, 1 on the stack, 2 placed
        for start in range(len(paths)):
            if state[start]:
                continue
            stack = [(start, iter(edges[start]))]
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
                    stack.append((nxt, iter(edges[nxt])))
        return order

    def absolute_module(self, module: str, level: int, importer: str) -> str | None:
        """The absolute name of ``from <level dots><module> import ...`` in `importer`; None
        when a relative import leaves the packages of the tree."""
        if level == 0:
            return module
        own = self.module_name(importer)
        if own is None:
            return None
        package = own.split(".") if self.is_package(importer) else own.split(".")[:-1]
        if level - 1 > len(package):
            return None
        base = package[: len(package) - (level - 1)]
        return ".".join([*base, *([module] if module else [])])

    def imports_of(self, path: str, source: bytes | None) -> set[str]:
        """The paths of the tree's modules that the module `path` imports, read from its
        bytes with a regular expression: an approximation, for `callee_first` only, where it
        can cost time but never change a finding."""
        if not source:
            return set()
        importer = self.normalize(path)
        found: set[str] = set()
        for match in _IMPORT_LINE.finditer(source):
            dots, module, names, plain = match.groups()
            if plain is not None:
                modules = [n.split()[0] for n in plain.decode("ascii", "replace").split(",")]
                found.update(p for m in modules if m and (p := self._find(m, importer)))
                continue
            base = self.absolute_module(module.decode("ascii", "replace"), len(dots), importer)
            if base is None:
                continue
            listed = names.decode("ascii", "replace").strip("()").replace("\\", " ")
            for name in (n.split()[0] for n in listed.split(",") if n.split()):
                if (hit := self._find(f"{base}.{name}" if base else name, importer)) is not None:
                    found.add(hit)
            if base and (hit := self._find(base, importer)) is not None:
                found.add(hit)
        return found

    def is_package(self, path: str) -> bool:
        return path.endswith("/__init__.py") or path == "__init__.py"

    # sources -----------------------------------------------------------------------------

    def add_source(self, path: str, source: bytes | None) -> None:
        """Provide a module's bytes (audited files, or what the app fetched); not counted
        against `max_modules`."""
        self._add(self.normalize(path), source)

    def add_audited(self, path: str, source: bytes, summary: ModuleSummary) -> None:
        """Keep the summary that the audit of a module's bytes built in its walk, so that
        resolving a later file's calls into it does not parse it again."""
        remember_summary(source, self.vocab, summary)
        path = self.normalize(path)
        if path not in self._summaries:  # else given with `add_source`, or already loaded
            self._add(path, source, summary)

    def _add(self, path: str, source: bytes | None, summary: ModuleSummary | None = None) -> None:
        with self._lock:
            self.missing.discard(path)
        self._summaries[path] = self._summarize(path, source, summary)

    def _summarize(
        self, path: str, source: bytes | None, summary: ModuleSummary | None = None
    ) -> ModuleSummary | None:
        """The summary of a module's bytes (`summary` if an audit built it), remembering
        their digest (`tracked`)."""
        if source is None:
            return None
        self._digests[path] = source_digest(source)
        return summary if summary is not None else summarize(source, self.vocab)

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
        import asyncio  # here: the CLI never calls this, and loading asyncio costs it ~15 ms

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
        import asyncio  # the app's path, like `prefetched`

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
