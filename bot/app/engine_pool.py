"""The rule engine's worker processes: audits and TX007 summaries off the event loop.

`EngineRunner` sends each file to a worker process, keeps the results by (blob, path,
config), and routes a changed file's audit to the worker that kept its parsed tree.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from functools import partial
from typing import Any

import cachetools

import rules.engine.callgraph  # loads libcst at startup, not in the first audit's intake
from rules.engine.config import Config
from rules.engine.model import FileResult

logger = logging.getLogger(__name__)


#: Engine results kept by (blob sha, path, config): a re-audit of the same head parses nothing.
#: Bounded by (approximate) size, since one result can hold thousands of findings.
RESULT_CACHE_BYTES = 32 * 1024 * 1024
#: Batches per engine worker in one audit: the TX007 index is pickled once per batch.
BATCHES_PER_WORKER = 2
#: Seconds at most that a worker keeps objects frozen (`_thaw`) while it keeps trees.
THAW_INTERVAL = 60.0
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
    """Several files in one worker call: the TX007 index is pickled once per batch, not once
    per file (for a 1,000-file pull request the index is over 1 MB)."""
    results = [_engine_audit(source, path, config, project) for source, path in items]
    _thaw()
    return results


#: Set in engine worker processes by `_init_worker`: only they freeze kept trees
#: (`gc.freeze` is process-wide; with `workers=0` the server's own heap is never frozen).
_IN_WORKER = False
#: When this worker first froze objects since it last thawed them (monotonic seconds).
_frozen_since: float | None = None


def _freeze() -> None:
    """Put every object tracked so far, a tree just kept among them, out of the cyclic
    collector's sight: its passes would walk every kept tree again and again (~1.7 s of
    worker CPU in 12 for a 1,000-file pull request). Trees form no cycles; refcounting
    still frees one when its audit drops it."""
    global _frozen_since
    if _IN_WORKER:
        gc.freeze()
        if _frozen_since is None:
            _frozen_since = time.monotonic()


def _thaw() -> None:
    """After an audit batch: the frozen objects go back under the collector once the worker
    keeps no tree for an audit to come, or after `THAW_INTERVAL` seconds frozen (trees that
    no audit takes, from an audit that failed or was cancelled, must not keep whatever
    cyclic garbage was frozen with them from being collected)."""
    global _frozen_since
    if _frozen_since is None:
        return
    if (
        rules.engine.callgraph.kept_trees()[0] == 0
        or time.monotonic() - _frozen_since > THAW_INTERVAL
    ):
        gc.unfreeze()
        _frozen_since = None


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


def _summarize(source: bytes, vocab: object, share_tree: bool = False) -> tuple[object, bool]:
    """A module's TX007 summary, and whether this worker now keeps its parsed tree for the
    file's audit (`share_tree`: a changed file; `rules.engine.callgraph.take_tree`)."""
    from rules.engine.callgraph import summarize_sharing

    with _gc_paused():
        summary, kept = summarize_sharing(source, vocab, share_tree=share_tree)  # type: ignore[arg-type]
        if kept:
            _freeze()
    return summary, kept


def _prime_summary(source: bytes, vocab: object, summary: object) -> None:
    """Cache a summary computed in a worker in this process, so that
    `ProjectIndex.add_source` and `prefetch` do not parse the module again on the event loop."""
    from rules.engine import callgraph

    callgraph.remember_summary(source, vocab, summary)  # type: ignore[arg-type]


def _worker_stats() -> dict[str, int]:
    """What one worker process did: libcst parses, summaries computed, trees kept, objects
    frozen (`_freeze`)."""
    from rules.engine import callgraph, parsing

    trees, chars = callgraph.kept_trees()
    return {
        "pid": os.getpid(),
        "parses": parsing.STATS["parses"],
        "summaries": callgraph.STATS["computed"],
        "trees": trees,
        "tree_chars": chars,
        "frozen": gc.get_freeze_count(),
    }


def _init_worker() -> None:
    """Worker start: lower the priority, import libcst once per worker (not per file)."""
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
    import rules.engine.audit  # noqa: F401

    global _IN_WORKER
    _IN_WORKER = True


def _no_op() -> None:
    """A task that makes the pool start a worker."""


def _source_key(source: bytes) -> bytes:
    return hashlib.sha1(source).digest()


class _Worker:
    """One engine worker process (a pool of one), and what the runner knows about it: the
    bytes of the sources sent to it and not answered yet, and the changed files whose parsed
    trees it keeps for their audits (SHA-1 of the source -> bytes; bounded like the worker's
    own cache, `rules.engine.callgraph.TREE_CACHE_CHARS`, in bytes, so it forgets first)."""

    def __init__(self, executor: Executor | None) -> None:
        self.executor = executor
        self.pending = 0
        self.trees: cachetools.LRUCache[bytes, int] = cachetools.LRUCache(
            maxsize=rules.engine.callgraph.TREE_CACHE_CHARS, getsizeof=_identity
        )

    @property
    def load(self) -> int:
        """Bytes of work sent to it or waiting for it: the sources in flight, and the files
        whose trees it keeps (their audits will come to this worker)."""
        return self.pending + int(self.trees.currsize)


def _identity(size: int) -> int:
    return size


class EngineRunner:
    """Runs `rules.engine.audit.audit_source` in worker processes and caches the results.

    Each worker is a pool of one process, and the runner chooses the process of each call:
    a changed file's TX007 summary goes to the least loaded worker, which keeps the parsed
    tree, and the file's audit goes to that worker and uses the tree (one parse per file).
    `workers=0` runs the engine in a thread instead (tests, tiny hosts); an injected
    `executor` runs everything there (trees are not kept: it may have several processes).
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
        loads = [w.load + (extra[k] if extra else 0) for k, w in enumerate(self._slots)]
        return loads.index(min(loads))

    def _holder(self, key: bytes, *, take: bool) -> int | None:
        """The worker that keeps the tree of the source with this key; with `take`, forgotten
        here as well (the audit about to be sent there takes the tree)."""
        for index, worker in enumerate(self._slots):
            if key in worker.trees:
                if take:
                    del worker.trees[key]
                return index
        return None

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
        index = self._holder(_source_key(source), take=True)
        if index is None:
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
        """`audit` for (source, path, blob sha) items: each file in the worker that keeps its
        tree, the others spread by bytes; a few batches per worker (the TX007 index is
        pickled once per batch, not once per file)."""
        results: list[FileResult | None] = [
            self._results.get((sha, path, config_key)) for _, path, sha in items
        ]
        # Every item's kept tree is taken by its audit now (or, with a cached result, never).
        holders = [self._holder(_source_key(source), take=True) for source, _, _ in items]
        todo = [i for i, result in enumerate(results) if result is None]
        if todo:
            self.runs += len(todo)
            groups = self._route(items, todo, holders)

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

            await asyncio.gather(
                *(
                    run(index, chunk)
                    for index, group in enumerate(groups)
                    for chunk in _batches(group, items)
                )
            )
        return [result for result in results if result is not None]

    def _route(
        self,
        items: Sequence[tuple[bytes, str, str]],
        todo: Sequence[int],
        holders: Sequence[int | None],
    ) -> list[list[int]]:
        """Item indices per worker: a file whose tree a worker keeps goes there; the others,
        largest first, to the worker with the least work (pending, kept and given here)."""
        groups: list[list[int]] = [[] for _ in self._slots]
        given = [0] * len(self._slots)
        free: list[int] = []
        for i in todo:
            holder = holders[i]
            if holder is None:
                free.append(i)
            else:
                groups[holder].append(i)
                given[holder] += len(items[i][0])
        for i in sorted(free, key=lambda i: -len(items[i][0])):
            index = self._least_loaded(given)
            groups[index].append(i)
            given[index] += len(items[i][0])
        return groups

    def _remember(self, key: tuple[str, str, str], result: FileResult) -> None:
        try:
            self._results[key] = result
        except ValueError:  # larger than the whole cache: not kept
            pass

    async def summarize(self, source: bytes, vocab: object, *, keep_tree: bool = False) -> None:
        """Compute a module's TX007 summary off the event loop (cached by
        `rules.engine.callgraph.summarize` in this process). `keep_tree` (a changed file, audited
        next): the worker keeps the parsed tree, and the file's audit goes to that worker.
        Callee modules that are not audited keep no tree."""
        key = _source_key(source)
        holder = self._holder(key, take=False)
        index = holder if holder is not None else self._least_loaded()
        share = keep_tree and self._owns_executor  # an injected pool may have many processes
        kept = False
        try:
            summary, kept = await self._call(index, len(source), _summarize, source, vocab, share)
        except BrokenProcessPool:
            raise AuditFailure(
                "the rule engine's worker process died while reading the changed files"
            ) from None
        if kept:
            try:
                self._slots[index].trees[key] = len(source)
            except ValueError:  # over the whole budget (the worker did not keep it either)
                pass
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
        not wait for them and for their libcst import (~0.3 s, six round trips at 50 ms)."""
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
            worker.trees.clear()

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
