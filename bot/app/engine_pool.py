"""The rule engine's worker processes: audits and TX007 summaries off the event loop.

`EngineRunner` sends each file to the least loaded worker process and keeps the results
by (blob, path, config). A worker parses each file it is given (CPython's `ast.parse`, about
a quarter of an audit) and keeps no tree between calls; it keeps the TX007 index of the
audit it serves, which is pickled once per audit (`_SharedIndex`).
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import itertools
import logging
import multiprocessing
import os
import pickle
import signal
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import cachetools

from rules.engine.config import Config
from rules.engine.model import FileResult

logger = logging.getLogger(__name__)


#: Engine results kept by (blob sha, path, config): a re-audit of the same head parses nothing.
#: Bounded by (approximate) size, since one result can hold thousands of findings.
RESULT_CACHE_BYTES = 32 * 1024 * 1024
#: Batches per engine worker in one audit (the TX007 index travels once per batch).
BATCHES_PER_WORKER = 2
#: Added to the engine worker processes' niceness (lower priority than the event loop).
WORKER_NICENESS = 10


class AuditFailure(Exception):
    """An audit step failed; `str()` says what went wrong in words."""


def _engine_audit(source: bytes, path: str, config: Config, project: object | None) -> FileResult:
    from rules.engine import audit_source

    return audit_source(source, path, config, project=project)


def _engine_audit_many(
    items: Sequence[tuple[bytes, str]], config: Config, project: object | None
) -> list[FileResult]:
    """Several files in one worker call (the TX007 index travels once per batch, not once
    per file, and is unpickled once per audit in each worker: `_SharedIndex`)."""
    if isinstance(project, _SharedIndex):
        project = project.load()
    return [_engine_audit(source, path, config, project) for source, path in items]


#: In a worker process: the TX007 index of the audit it last served, by that audit's token.
_WORKER_INDEX: dict[str, object] = {}
_TOKENS = itertools.count()
#: What this worker process did besides parses and summaries (`_worker_stats`).
_STATS = {"index_loads": 0}


@dataclass(frozen=True)
class _SharedIndex:
    """A TX007 index pickled once for all the batches of one audit. With the summaries of
    every changed file it is several MB for a 1,000-file pull request; pickled per batch
    it cost seconds of CPU on both sides (bench_app, docs/PERFORMANCE.md)."""

    token: str
    data: bytes

    def load(self) -> object:
        index = _WORKER_INDEX.get(self.token)
        if index is None:
            _WORKER_INDEX.clear()  # one audit's index at a time
            index = _WORKER_INDEX[self.token] = pickle.loads(self.data)
            _STATS["index_loads"] += 1
        return index


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic collector while a module is parsed and summarised: the tree's
    objects form no cycles, and collections during the parse cost ~20% of it (as in
    `rules.engine.audit.audit_source`)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _summarize(source: bytes, vocab: object) -> object:
    """A module's TX007 summary (computed in a worker process)."""
    from rules.engine.callgraph import summarize

    with _gc_paused():
        return summarize(source, vocab)  # type: ignore[arg-type]


def _prime_summary(source: bytes, vocab: object, summary: object) -> None:
    """Cache a summary computed in a worker in this process, so that
    `ProjectIndex.add_source` and `prefetch` do not parse the module again on the event loop."""
    from rules.engine import callgraph

    callgraph.remember_summary(source, vocab, summary)  # type: ignore[arg-type]


def _worker_stats() -> dict[str, int]:
    """What one worker process did: parses, summaries computed, TX007 indexes unpickled."""
    from rules.engine import callgraph, parsing

    return {
        "pid": os.getpid(),
        "parses": parsing.STATS["parses"],
        "summaries": callgraph.STATS["computed"],
        "index_loads": _STATS["index_loads"],
        "libcst_loaded": int("libcst" in sys.modules),
    }


def _init_worker() -> None:
    """Worker start: lower the priority, import the engine and libcst once per worker."""
    try:
        # The workers do the audits' CPU work; on a busy host the scheduler lets the event
        # loop, which answers webhooks within GitHub's deadline, run first.
        os.nice(WORKER_NICENESS)
    except OSError:  # not permitted here: the workers keep the server's priority
        pass
    # A stop signal sent to the whole process group (a deploy, Ctrl-C) is for the process
    # that owns the pool: it drains its audits and then closes the pool. A worker that died
    # of the signal first would fail a running audit as if the user's code had crashed it.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The engine, and libcst for TX001's fixes (~0.14 s): at start-up, not in the first audit.
    import libcst  # noqa: F401

    import rules.engine.audit  # noqa: F401


def _no_op() -> None:
    """A task that makes the pool start a worker."""


class _Worker:
    """One engine worker process (a pool of one, so that a crash fails only the files sent
    to it), and the bytes of the sources sent to it and not answered yet."""

    def __init__(self, executor: Executor | None) -> None:
        self.executor = executor
        self.pending = 0


class EngineRunner:
    """Runs `rules.engine.audit.audit_source` in worker processes and caches the results.

    Each worker is a pool of one process; each call goes to the worker with the fewest bytes
    in flight. `workers=0` runs the engine in a thread instead (tests, tiny hosts); an
    injected `executor` runs everything there.
    """

    def __init__(self, workers: int, *, executor: Executor | None = None) -> None:
        self._workers = workers
        self._owns_executor = executor is None
        self._in_process = executor is None and workers <= 0
        self._slots = [_Worker(executor) for _ in range(workers if self._owns_pools else 1)]
        self._results: cachetools.LRUCache[tuple[str, str, str], FileResult] = cachetools.LRUCache(
            maxsize=RESULT_CACHE_BYTES, getsizeof=_result_size
        )
        self.runs = 0  # engine invocations (cache misses), for logs and tests

    @property
    def _owns_pools(self) -> bool:
        return self._owns_executor and self._workers > 0

    def _pool(self, index: int = 0) -> Executor | None:
        """Worker `index`'s pool (started if needed); None: the engine runs in a thread."""
        worker = self._slots[index]
        if worker.executor is None and self._owns_pools:
            method = "forkserver" if sys.platform.startswith("linux") else "spawn"
            worker.executor = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context(method),
                initializer=_init_worker,
            )
        return worker.executor

    async def _call(self, index: int, size: int, fn: Any, *args: Any) -> Any:
        """`fn(*args)` in worker `index`, counting `size` bytes as pending there meanwhile.
        A dead worker process (BrokenProcessPool) resets that worker only, and re-raises."""
        worker = self._slots[index]
        executor = self._pool(index)
        worker.pending += size
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, partial(fn, *args))
        except BrokenProcessPool:
            self._reset(index, executor)
            raise
        finally:
            worker.pending -= size

    def _least_loaded(self, extra: Sequence[int] | None = None) -> int:
        loads = [w.pending + (extra[k] if extra else 0) for k, w in enumerate(self._slots)]
        return loads.index(min(loads))

    async def audit(
        self,
        source: bytes,
        path: str,
        config: Config,
        *,
        blob_sha: str,
        config_key: str,
        project: object | None = None,
    ) -> FileResult:
        key = (blob_sha, path, config_key)
        cached = self._results.get(key)
        if cached is not None:
            return cached
        self.runs += 1
        index = self._least_loaded()
        try:
            [result] = await self._call(
                index, len(source), _engine_audit_many, [(source, path)], config, project
            )
        except BrokenProcessPool:
            raise AuditFailure(
                f"the rule engine's worker process died while auditing {path}"
            ) from None
        self._remember(key, result)
        return result

    async def audit_many(
        self,
        items: Sequence[tuple[bytes, str, str]],
        config: Config,
        *,
        config_key: str,
        project: object | None = None,
    ) -> list[FileResult]:
        """`audit` for (source, path, blob sha) items, spread over the workers by bytes; a
        few batches per worker (the TX007 index is pickled once per batch, not per file)."""
        results: list[FileResult | None] = [
            self._results.get((sha, path, config_key)) for _, path, sha in items
        ]
        todo = [i for i, result in enumerate(results) if result is None]
        if todo:
            self.runs += len(todo)
            groups = self._route(items, todo)
            batches = [(i, c) for i, group in enumerate(groups) for c in _batches(group, items)]
            if project is not None and not self._in_process and len(batches) > 1:
                token = f"{os.getpid()}-{next(_TOKENS)}"
                data = await asyncio.get_running_loop().run_in_executor(
                    None, partial(pickle.dumps, project, pickle.HIGHEST_PROTOCOL)
                )
                project = _SharedIndex(token, data)

            async def run(index: int, chunk: list[int]) -> None:
                try:
                    done = await self._call(
                        index,
                        sum(len(items[i][0]) for i in chunk),
                        _engine_audit_many,
                        [(items[i][0], items[i][1]) for i in chunk],
                        config,
                        project,
                    )
                except BrokenProcessPool:
                    paths = ", ".join(items[i][1] for i in chunk[:3])
                    more = f" and {len(chunk) - 3} more" if len(chunk) > 3 else ""
                    raise AuditFailure(
                        f"the rule engine's worker process died while auditing {paths}{more}"
                    ) from None
                for i, result in zip(chunk, done, strict=True):
                    results[i] = result
                    self._remember((items[i][2], items[i][1], config_key), result)

            await asyncio.gather(*(run(index, chunk) for index, chunk in batches))
        return [result for result in results if result is not None]

    def _route(
        self, items: Sequence[tuple[bytes, str, str]], todo: Sequence[int]
    ) -> list[list[int]]:
        """Item indices per worker: largest first, each to the worker with the least work
        (pending and given here)."""
        groups: list[list[int]] = [[] for _ in self._slots]
        given = [0] * len(self._slots)
        for i in sorted(todo, key=lambda i: -len(items[i][0])):
            index = self._least_loaded(given)
            groups[index].append(i)
            given[index] += len(items[i][0])
        return groups

    def _remember(self, key: tuple[str, str, str], result: FileResult) -> None:
        try:
            self._results[key] = result
        except ValueError:  # larger than the whole cache: not kept
            pass

    async def summarize(self, source: bytes, vocab: object) -> None:
        """Compute a module's TX007 summary off the event loop (cached by
        `rules.engine.callgraph.summarize` in this process)."""
        try:
            summary = await self._call(self._least_loaded(), len(source), _summarize, source, vocab)
        except BrokenProcessPool:
            raise AuditFailure(
                "the rule engine's worker process died while reading the changed files"
            ) from None
        if not self._in_process:
            _prime_summary(source, vocab, summary)

    async def worker_stats(self) -> list[dict[str, int]]:
        """`_worker_stats` of each worker (of this process with `workers=0`)."""
        calls = (self._call(index, 0, _worker_stats) for index in range(len(self._slots)))
        return list(await asyncio.gather(*calls))

    @property
    def started(self) -> bool:
        """Whether the worker processes have been started."""
        return all(worker.executor is not None for worker in self._slots)

    def start(self) -> None:
        """Start the worker processes now (server start-up), so that the first audit does
        not wait for them and for the engine's import."""
        if self._owns_pools:
            for index in range(len(self._slots)):
                pool = self._pool(index)
                if pool is not None:
                    pool.submit(_no_op)

    def _reset(self, index: int, executor: Executor | None) -> None:
        """Forget worker `index`'s broken pool (once, whichever call saw it broken first)."""
        worker = self._slots[index]
        if self._owns_pools and executor is not None and worker.executor is executor:
            executor.shutdown(wait=False, cancel_futures=True)
            worker.executor = None

    def close(self) -> None:
        if self._owns_pools:
            for worker in self._slots:
                if worker.executor is not None:
                    worker.executor.shutdown(wait=True, cancel_futures=True)
                    worker.executor = None


def _batches(group: list[int], items: Sequence[tuple[bytes, str, str]]) -> list[list[int]]:
    """A worker's items in at most `BATCHES_PER_WORKER` batches of about equal bytes."""
    count = min(len(group), BATCHES_PER_WORKER)
    by_size = sorted(group, key=lambda i: -len(items[i][0]))
    return [by_size[k::count] for k in range(count)]


def _result_size(result: FileResult) -> int:
    """Approximate bytes of an engine result (for the cache bound)."""
    size = 256 + len(result.error or "")
    for finding in result.findings:
        fix = getattr(finding, "fix", None)
        size += 512 + len(finding.message) + len(finding.snippet)
        size += len(getattr(fix, "replacement", "") or "")
    return size + 256 * len(result.suppressions)


def config_key(config: Config) -> str:
    """A short digest that is equal for equal configurations."""
    return hashlib.sha256(repr(config).encode()).hexdigest()[:16]
