"""The audit of one pull request head: check run, config, files, engine, review (SPEC.md)."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import multiprocessing
import os
import re
import sys
import time
import tomllib
from collections.abc import Awaitable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, NamedTuple

import aiohttp
import cachetools
import gidgethub
from gidgethub import BadRequest, HTTPException, InvalidField, ValidationError

import rules.engine.callgraph  # loads libcst at startup, not in the first audit's intake
from bot.core import (
    REAUDIT_ACTION,
    AuditContext,
    AuditedFile,
    Outcome,
    ReviewComment,
    build_outcome,
    cancelled_outcome,
    config_error_outcome,
    error_outcome,
    fingerprints_in,
)
from bot.github import GitHub, GitHubClient, decode_content
from bot.patch import EMPTY_PATCH, PatchLines, parse_patch
from bot.queue import CLOSED, SUPERSEDED, AuditJob, AuditQueue
from bot.settings import AppSettings
from rules.engine.config import CONFIG_PATHS, Config, ConfigError, parse_config_text
from rules.engine.model import FileResult, Severity

logger = logging.getLogger(__name__)

CHECK_NAME = "txaudit"
PYTHON_SUFFIXES = (".py", ".pyi")
#: Files larger than this are not audited (the contents API's JSON limit).
MAX_FILE_BYTES = 1024 * 1024
#: GitHub lists at most this many files of a pull request.
MAX_LISTED_FILES = 3000
MODE_SYMLINK = "120000"
MODE_SUBMODULE = "160000"
#: Engine results kept by (blob sha, path, config): a re-audit of the same head parses nothing.
#: Bounded by (approximate) size, since one result can hold thousands of findings.
RESULT_CACHE_BYTES = 32 * 1024 * 1024
#: Batches per engine worker in one audit: the TX007 index is pickled once per batch.
BATCHES_PER_WORKER = 2
#: Seconds at most that a worker keeps objects frozen (`_thaw`) while it keeps trees.
THAW_INTERVAL = 60.0
#: Added to the engine worker processes' niceness (lower priority than the event loop).
WORKER_NICENESS = 10
#: Head trees kept (path -> mode, size, sha of the Python files), bounded by total entries.
TREE_CACHE_ENTRIES = 100_000
#: One push fires several deliveries (GitHub may also send one twice): a head audited this
#: recently (seconds) is not audited again for these triggers; explicit re-runs always are.
RECENT_AUDIT_TTL = 300.0
DEDUPED_TRIGGERS = frozenset({"pull_request.opened", "pull_request.synchronize"})

#: `external_id` of our check runs: "owner/repo#12@<head sha>".
EXTERNAL_ID = re.compile(r"^(?P<repo>[^#\s]+/[^#\s]+)#(?P<number>\d+)@(?P<sha>[0-9a-fA-F]{7,64})$")

IN_PROGRESS_OUTPUT = {
    "title": "Auditing…",
    "summary": "txaudit is auditing the Python files that this pull request changes.",
}


def external_id(repo_full_name: str, number: int, head_sha: str) -> str:
    return f"{repo_full_name}#{number}@{head_sha}"


def parse_external_id(value: str | None) -> tuple[str, int, str] | None:
    """(repo full name, PR number, head sha) from one of our check runs' `external_id`."""
    match = EXTERNAL_ID.match(value or "")
    if match is None:
        return None
    return match["repo"], int(match["number"]), match["sha"]


def closed_outcome() -> Outcome:
    """The check run of an audit cancelled because its pull request was closed."""
    return Outcome(
        conclusion="cancelled",
        title="Pull request closed",
        summary=(
            "## txaudit: cancelled\n\nThe pull request was closed before the audit finished. "
            "Reopening it audits its head again.\n"
        ),
        text="",
    )


def interrupted_outcome(on_error: str) -> Outcome:
    """The check run of an audit that a server shutdown (restart, deploy) interrupted."""
    return error_outcome(
        "the audit was interrupted because the txaudit server shut down (a restart or a deploy)",
        on_error=on_error,
        title="Audit interrupted",
    )


class AuditFailure(Exception):
    """An audit step failed; `str()` says what went wrong in words."""


# --- the engine, off the event loop --------------------------------------------------


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


def _summarize(source: bytes, vocab: object) -> object:
    from rules.engine.callgraph import summarize

    with _gc_paused():
        return summarize(source, vocab)  # type: ignore[arg-type]


def _summarize_sharing(source: bytes, vocab: object) -> tuple[object, bool]:
    """A changed file's summary, and whether this worker now keeps its parsed tree for the
    file's audit (`rules.engine.callgraph.take_tree`)."""
    from rules.engine.callgraph import summarize_sharing

    with _gc_paused():
        summary, kept = summarize_sharing(source, vocab, share_tree=True)  # type: ignore[arg-type]
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
            if share:
                summary, kept = await self._call(
                    index, len(source), _summarize_sharing, source, vocab
                )
            else:
                summary = await self._call(index, len(source), _summarize, source, vocab)
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


# --- requests and the auditor ---------------------------------------------------------


@dataclass(frozen=True)
class AuditRequest:
    """What a handler asks for: audit this pull request at its current head."""

    installation_id: int
    owner: str
    repo: str
    number: int
    filter_override: str | None = None
    delivery_id: str | None = None
    trigger: str = ""

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.repo}"


@dataclass
class _State:
    """What one running audit knows so far."""

    request: AuditRequest
    pull: Mapping[str, Any]
    head_sha: str
    extra: dict[str, Any]
    config: Config = field(default_factory=Config)
    check_run: Mapping[str, Any] | None = None
    step: str = "starting"

    @property
    def base_sha(self) -> str:
        return str(self.pull["base"]["sha"])


class Auditor:
    """Turns audit requests into queued jobs and runs them."""

    def __init__(
        self,
        *,
        hub: GitHub,
        settings: AppSettings,
        queue: AuditQueue,
        engine: EngineRunner,
    ) -> None:
        self.hub = hub
        self.settings = settings
        self.queue = queue
        self.engine = engine
        self._recent: cachetools.TTLCache[tuple[str, int, str, str, str], bool] = (
            cachetools.TTLCache(maxsize=4096, ttl=RECENT_AUDIT_TTL)
        )
        self._trees: cachetools.LRUCache[tuple[str, str], dict[str, TreeEntry]] = (
            cachetools.LRUCache(maxsize=TREE_CACHE_ENTRIES, getsizeof=lambda tree: len(tree) + 1)
        )

    # -- intake side ---------------------------------------------------------------------

    async def request_audit(
        self,
        gh: GitHubClient,
        request: AuditRequest,
        *,
        pull: Mapping[str, Any] | None = None,
    ) -> bool:
        """Queue an audit of the pull request's head; False if closed or already queued."""
        if pull is None:
            pull = await gh.getitem(
                "/repos/{owner}/{repo}/pulls/{number}",
                {"owner": request.owner, "repo": request.repo, "number": request.number},
            )
        extra = {
            "delivery": request.delivery_id,
            "event": request.trigger,
            "installation": request.installation_id,
            "repo": request.full_name,
            "pr": request.number,
            "head_sha": pull["head"]["sha"],
        }
        if pull.get("state") != "open":
            logger.info("pull request is not open; not audited", extra=extra)
            return False
        job = AuditJob(
            key=(request.full_name, request.number),
            head_sha=pull["head"]["sha"],
            run=partial(self._run_job, request, pull),
            variant=request.filter_override or "",
            log_extra=extra,
            on_interrupted=partial(self._interrupted_before_start, request, pull),
        )
        if request.trigger in DEDUPED_TRIGGERS and _recent_key(request, pull) in self._recent:
            logger.info("head already audited; duplicate event ignored", extra=extra)
            return False
        accepted = await self.queue.submit(job)
        if accepted:
            logger.info("audit queued", extra=extra)
        return accepted

    async def cancel(self, owner: str, repo: str, number: int) -> int:
        return await self.queue.cancel((f"{owner}/{repo}", number), reason=CLOSED)

    async def is_our_app(self, app: Mapping[str, Any] | None) -> bool:
        """Whether a check run/suite `app` object is this GitHub App."""
        if not app:
            return False
        ours = self.settings.app_id
        if str(app.get("id")) == ours or app.get("client_id") == ours:
            return True
        if ours.isdigit():
            return False
        try:  # configured with a client id: ask GitHub for the numeric id
            return app.get("id") == (await self.hub.app_info()).get("id")
        except HTTPException:
            return False

    async def _interrupted_before_start(
        self, request: AuditRequest, pull: Mapping[str, Any], job: AuditJob
    ) -> None:
        """A queued audit that a shutdown cancelled: one completed check run that says so,
        so that a required check does not wait for a run that never comes."""
        gh = self.hub.installation(request.installation_id)
        outcome = interrupted_outcome("failure")  # the config was never read
        data = _new_check_run(request, pull, job.head_sha)
        data.update(
            status="completed",
            conclusion=outcome.conclusion,
            completed_at=_now(),
            output=outcome.output(),
            actions=[REAUDIT_ACTION],
        )
        await gh.post(
            "/repos/{owner}/{repo}/check-runs",
            {"owner": request.owner, "repo": request.repo},
            data=data,
        )
        logger.info("queued audit interrupted; check run completed", extra=job.log_extra)

    # -- the audit -----------------------------------------------------------------------

    async def _run_job(self, request: AuditRequest, pull: Mapping[str, Any], job: AuditJob) -> None:
        gh = self.hub.installation(request.installation_id)
        state = _State(request=request, pull=pull, head_sha=job.head_sha, extra=job.log_extra)
        started = time.monotonic()
        deadline = asyncio.timeout(self.settings.audit_timeout)
        try:
            async with deadline:
                await self._audit(gh, state)
            self._recent[_recent_key(request, pull)] = True
        except asyncio.CancelledError:
            if job.cancel_reason == SUPERSEDED:
                outcome = cancelled_outcome(job.superseded_by or "a newer audit")
            elif job.cancel_reason == CLOSED:
                outcome = closed_outcome()
            else:
                outcome = interrupted_outcome(state.config.on_error)
            await self._finish_quietly(gh, state, outcome)
            raise
        except Exception as exc:
            if isinstance(exc, TimeoutError) and deadline.expired():
                reason = (
                    f"the audit took longer than {self.settings.audit_timeout:.0f} seconds "
                    f"(while {state.step})"
                )
            else:  # a GitHub call that timed out after its retries is a TimeoutError too
                logger.exception("audit failed", extra={**state.extra, "step": state.step})
                reason = f"txaudit failed while {state.step}: {describe_error(exc)}"
            await self._finish_quietly(
                gh, state, error_outcome(reason, on_error=state.config.on_error)
            )
        finally:
            self._log_rate_limit(gh, state, time.monotonic() - started)

    async def _audit(self, gh: GitHubClient, state: _State) -> None:
        request, pull = state.request, state.pull
        # The reads that depend on nothing go out together with the check run: the time to
        # a finished check is a count of round trips (the limiter bounds the concurrency).
        reads = _Reads(
            config=self._read_config(gh, request, state.base_sha),
            files=self._changed_files(gh, request, int(pull.get("changed_files") or 0)),
            tree=self._python_tree(gh, request, state.head_sha),
            existing=self._existing_fingerprints(gh, request),
        )
        try:
            await self._audit_steps(gh, state, reads)
            if reads.orphans is not None:
                await reads.orphans  # best effort, never raises
        finally:
            await reads.cancel()

    async def _audit_steps(self, gh: GitHubClient, state: _State, reads: _Reads) -> None:
        request, pull = state.request, state.pull
        # 1. The check run, at once.
        state.step = "creating the check run"
        state.check_run = await gh.post(
            "/repos/{owner}/{repo}/check-runs",
            {"owner": request.owner, "repo": request.repo},
            data=_new_check_run(request, pull, state.head_sha),
        )
        reads.orphans = asyncio.ensure_future(self._complete_orphans(gh, state))
        # 2. The config, from the base commit.
        state.step = "reading the configuration from the base commit"
        try:
            state.config = await reads.config
        except ConfigError as exc:
            logger.info("invalid configuration", extra={**state.extra, "error": str(exc)})
            await self._complete(gh, state, config_error_outcome(str(exc)))
            return
        config = state.config
        notes: list[str] = []
        files = await self._audited_files(gh, state, notes, reads)
        # 6 (first half): what the app already said on this pull request.
        state.step = "reading earlier review comments"
        existing = await reads.existing
        check_url = (state.check_run or {}).get("html_url")
        ctx = AuditContext(
            repo=request.full_name,
            html_url=_repo_html_url(pull, request),
            base_sha=state.base_sha,
            head_sha=state.head_sha,
            rules_url=self.settings.public_url,
            filter_override=request.filter_override,
            existing_fingerprints=existing,
            notes=tuple(notes),
            check_url=check_url,
        )
        outcome = build_outcome(files, config, ctx)
        # 5. Complete the check run, unless a newer push made this audit obsolete.
        state.step = "checking the pull request's head"
        newer = await self._newer_head(gh, request, state.head_sha)
        if newer is not None:
            await self._complete(gh, state, cancelled_outcome(newer))
            return
        state.step = "completing the check run"
        await self._complete(gh, state, outcome)
        logger.info(
            "audit complete",
            extra={
                **state.extra,
                "conclusion": outcome.conclusion,
                "files": len(files),
                "annotations": len(outcome.annotations),
                "comments": len(outcome.comments),
            },
        )
        # 6. One review with the new comments (the head was checked just before step 5; a
        # push since then cancels this job through its webhook).
        if outcome.comments:
            state.step = "posting the review"
            await self._post_review(gh, state, outcome)

    # -- steps ---------------------------------------------------------------------------

    async def _audited_files(
        self, gh: GitHubClient, state: _State, notes: list[str], reads: _Reads
    ) -> list[AuditedFile]:
        """Steps 3 and 4: the changed Python files at the head, through the engine."""
        request, config = state.request, state.config
        state.step = "listing the changed files"
        entries = await reads.files
        listed_max = int(state.pull.get("changed_files") or 0)
        if listed_max > len(entries) and len(entries) >= MAX_LISTED_FILES:
            notes.append(
                f"GitHub lists only {MAX_LISTED_FILES} of the {listed_max} changed files; "
                "the rest were not audited (run `txaudit diff` locally)."
            )
        wanted = [e for e in entries if _wanted(e, config)]
        removed = [
            e["filename"]
            for e in entries
            if e.get("status") == "removed"
            and str(e.get("filename", "")).endswith(PYTHON_SUFFIXES)
            and config.includes(e["filename"])
        ]
        if removed:
            shown = ", ".join(f"`{path}`" for path in removed[:10])
            more = f" and {len(removed) - 10} more" if len(removed) > 10 else ""
            notes.append(f"Removed, so not audited: {shown}{more}.")
        state.step = "reading the changed files"
        tree = await reads.tree if wanted else {}
        vocab = _tx007_vocab(config)

        async def fetch(entry: Mapping[str, Any]) -> _Fetched:
            item = await self._fetch(gh, request, entry, tree)
            if vocab is not None and item.content is not None:
                # while others download; the worker keeps the tree for the file's audit
                await self.engine.summarize(item.content, vocab, keep_tree=True)
            return item

        fetched = await asyncio.gather(*(fetch(entry) for entry in wanted))
        # TX007: fetch the modules that the changed code calls into, at the head.
        state.step = "fetching the modules the changed code calls"
        project = await self._callee_modules(gh, state, fetched, tree, notes)
        state.step = "running the rules"
        key = config_key(config)
        if project is not None:  # TX007 results depend on the other modules at this head
            key = f"{key}@{state.head_sha}"
        return await self._run_engine(fetched, config, key, project)

    async def _read_config(self, gh: GitHubClient, request: AuditRequest, ref: str) -> Config:
        for path in CONFIG_PATHS:
            text = await self._read_text(gh, request, path, ref)
            if text is not None:
                return parse_config_text(text, filename=path)
        text = await self._read_text(gh, request, "pyproject.toml", ref)
        if text is None:
            return Config()
        try:
            tool = tomllib.loads(text).get("tool")
        except tomllib.TOMLDecodeError:
            return Config()  # a broken pyproject.toml without our section is not our business
        if not isinstance(tool, dict) or "txaudit" not in tool:
            return Config()
        return parse_config_text(text, filename="pyproject.toml")

    async def _read_text(
        self, gh: GitHubClient, request: AuditRequest, path: str, ref: str
    ) -> str | None:
        try:
            data = await gh.getitem(
                "/repos/{owner}/{repo}/contents/{+path}{?ref}",
                {"owner": request.owner, "repo": request.repo, "path": path, "ref": ref},
            )
        except BadRequest as exc:
            if exc.status_code == 404:
                return None
            raise
        if not isinstance(data, dict) or data.get("type", "file") != "file":
            return None
        content = decode_content(data)
        try:
            return content.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not UTF-8 text") from None

    async def _changed_files(
        self, gh: GitHubClient, request: AuditRequest, expected: int = 0
    ) -> list[dict[str, Any]]:
        """All pages of the changed files; with `expected` (the pull request's
        `changed_files`) the pages are fetched at once, then any further ones followed."""
        url = "/repos/{owner}/{repo}/pulls/{number}/files?per_page=100"
        url_vars: dict[str, str | int] = {
            "owner": request.owner,
            "repo": request.repo,
            "number": request.number,
        }
        pages = min(max(1, -(-expected // 100)), MAX_LISTED_FILES // 100)

        async def follow(page: int) -> list[dict[str, Any]]:
            suffix = f"&page={page}" if page > 1 else ""
            return [entry async for entry in gh.getiter(url + suffix, url_vars)]

        async def one(page: int) -> list[dict[str, Any]]:
            return list(await gh.getitem(url + f"&page={page}", url_vars))

        chunks = await asyncio.gather(*(one(page) for page in range(1, pages)), follow(pages))
        return [entry for chunk in chunks for entry in chunk]

    async def _python_tree(
        self, gh: GitHubClient, request: AuditRequest, head_sha: str
    ) -> dict[str, TreeEntry]:
        """path -> (mode, size, sha) of the Python entries of the head tree (best effort).

        The diff entries carry no mode, and a symlink's blob is its target path, so the
        tree tells symlinks and submodules apart from files; TX007 needs its paths.
        """
        key = (request.full_name, head_sha)
        cached = self._trees.get(key)
        if cached is not None:
            return cached
        try:
            tree = await gh.getitem(
                "/repos/{owner}/{repo}/git/trees/{sha}?recursive=1",
                {"owner": request.owner, "repo": request.repo, "sha": head_sha},
            )
        except BadRequest as exc:
            logger.warning(
                "could not read the head tree; file modes unknown",
                extra={**request_extra(request), "status": exc.status_code},
            )
            return {}
        entries = {
            item["path"]: TreeEntry(
                str(item.get("mode", "")), int(item.get("size") or 0), str(item.get("sha", ""))
            )
            for item in tree.get("tree", ())
            if isinstance(item, dict) and str(item.get("path", "")).endswith(PYTHON_SUFFIXES)
        }
        if len(entries) < TREE_CACHE_ENTRIES:
            self._trees[key] = entries
        return entries

    async def _fetch(
        self,
        gh: GitHubClient,
        request: AuditRequest,
        entry: Mapping[str, Any],
        tree: Mapping[str, TreeEntry],
    ) -> _Fetched:
        path = entry["filename"]
        patch = entry.get("patch")
        lines = parse_patch(patch) if isinstance(patch, str) else None
        if lines is None and _unchanged_content(entry):
            lines = EMPTY_PATCH  # no patch because the content did not change: no new lines
        base = _Fetched(
            path=path, status=entry.get("status", "modified"), patch=lines, sha=entry["sha"]
        )
        mode, size, _ = tree.get(path, _UNKNOWN_ENTRY)
        if mode == MODE_SYMLINK:
            return base.skip("a symbolic link; its target is audited where it lives")
        if mode == MODE_SUBMODULE:
            return base.skip("a submodule; not audited")
        if size > MAX_FILE_BYTES:
            return base.skip(f"larger than 1 MB ({_megabytes(size)}); not audited")
        try:
            content = await self.hub.blob(gh, request.owner, request.repo, entry["sha"])
        except BadRequest as exc:
            if exc.status_code in (404, 409, 422):
                return base.skip(f"could not be read from GitHub ({exc.status_code}); not audited")
            raise
        if len(content) > MAX_FILE_BYTES:
            return base.skip(f"larger than 1 MB ({_megabytes(len(content))}); not audited")
        return base.with_content(content)

    async def _callee_modules(
        self,
        gh: GitHubClient,
        state: _State,
        fetched: Sequence[_Fetched],
        tree: Mapping[str, TreeEntry],
        notes: list[str],
    ) -> object | None:
        """The TX007 `rules.engine.callgraph.ProjectIndex` of the head, fed with the modules
        that the changed files call into (at most `max_callee_modules`); None when TX007 is off."""
        config = state.config
        audited = [item for item in fetched if item.content is not None]
        if not audited or config.max_callee_modules == 0 or not _tx007_enabled(config):
            return None
        from rules.engine.callgraph import ProjectIndex

        paths = set(tree) | {item.path for item in audited}
        # Indexing every module path of the head costs ~10 ms per 2,000 modules: off the loop.
        index = await asyncio.to_thread(
            partial(ProjectIndex, paths, max_modules=config.max_callee_modules, config=config)
        )
        for item in audited:
            index.add_source(item.path, item.content)
        request = state.request

        async def fetch(path: str) -> bytes | None:
            entry = tree.get(path)
            if entry is None or entry.mode in (MODE_SYMLINK, MODE_SUBMODULE):
                return None
            if entry.size > MAX_FILE_BYTES:
                return None
            try:
                content = await self.hub.blob(gh, request.owner, request.repo, entry.sha)
            except BadRequest:
                return None
            await self.engine.summarize(content, index.vocab)  # `prefetch` finds it cached
            return content

        await index.prefetch([item.path for item in audited], fetch)
        if index.limit_hit:
            notes.append(
                f"TX007 followed calls into at most {config.max_callee_modules} modules "
                f"(`max_callee_modules`); {len(index.skipped)} more were not followed."
            )
        return index

    async def _run_engine(
        self, fetched: Sequence[_Fetched], config: Config, key: str, project: object | None
    ) -> list[AuditedFile]:
        audited = [item for item in fetched if item.skipped is None and item.content is not None]
        results = await self.engine.audit_many(
            [(item.content or b"", item.path, item.sha) for item in audited],
            config,
            config_key=key,
            project=project,
        )
        by_path = {item.path: result for item, result in zip(audited, results, strict=True)}
        return [
            AuditedFile(item.path, item.status, item.patch, by_path[item.path])
            if item.path in by_path
            else AuditedFile(item.path, item.status, item.patch, None, skipped=item.skipped)
            for item in fetched
        ]

    async def _existing_fingerprints(
        self, gh: GitHubClient, request: AuditRequest
    ) -> frozenset[str]:
        async def comments() -> list[dict[str, Any]]:
            return [
                comment
                async for comment in gh.getiter(
                    "/repos/{owner}/{repo}/pulls/{number}/comments?per_page=100",
                    {"owner": request.owner, "repo": request.repo, "number": request.number},
                )
            ]

        login, listed = await asyncio.gather(self.hub.bot_login(), comments())
        found: set[str] = set()
        for comment in listed:
            user = comment.get("user") or {}
            if login is not None and user.get("login") != login:
                continue
            if login is None and user.get("type") != "Bot":
                continue
            found |= fingerprints_in(comment.get("body") or "")
        return frozenset(found)

    async def _newer_head(
        self, gh: GitHubClient, request: AuditRequest, head_sha: str
    ) -> str | None:
        """The pull request's current head sha when it is no longer `head_sha`."""
        pull = await gh.getitem(
            "/repos/{owner}/{repo}/pulls/{number}",
            {"owner": request.owner, "repo": request.repo, "number": request.number},
        )
        current = pull["head"]["sha"]
        return None if current == head_sha else str(current)

    async def _complete(self, gh: GitHubClient, state: _State, outcome: Outcome) -> None:
        """Complete the check run; annotations go 50 at a time (GitHub appends them)."""
        if state.check_run is None:
            return
        url = state.check_run["url"]
        batches = outcome.annotation_batches(50) or [[]]
        for batch in batches[:-1]:
            await gh.patch(url, data={"output": outcome.output(batch)})
        await gh.patch(
            url,
            data={
                "status": "completed",
                "conclusion": outcome.conclusion,
                "completed_at": _now(),
                "output": outcome.output(batches[-1]),
                "actions": [REAUDIT_ACTION],
            },
        )
        state.check_run = None  # completed: never touch it again

    async def _complete_orphans(self, gh: GitHubClient, state: _State) -> None:
        """Complete our earlier runs on this head that nobody will finish (best effort).

        A server killed mid-audit, or a create that GitHub answered 5xx after all and that
        was retried, leaves a run `in_progress`; a required check would wait on it forever.
        """
        request = state.request
        mine = (state.check_run or {}).get("id")
        try:
            async for run in gh.getiter(
                "/repos/{owner}/{repo}/commits/{sha}/check-runs"
                "?check_name={name}&status=in_progress&filter=all&per_page=100",
                {
                    "owner": request.owner,
                    "repo": request.repo,
                    "sha": state.head_sha,
                    "name": CHECK_NAME,
                },
                iterable_key="check_runs",
            ):
                if run.get("id") == mine or not await self.is_our_app(run.get("app")):
                    continue
                orphan = _State(request, state.pull, state.head_sha, state.extra, check_run=run)
                await self._complete(gh, orphan, cancelled_outcome("a newer audit of this commit"))
                logger.info(
                    "completed an orphaned check run", extra={**state.extra, "run": run["id"]}
                )
        except HTTPException as exc:
            logger.warning(
                "could not look for orphaned check runs",
                extra={**state.extra, "status": int(exc.status_code)},
            )

    async def _finish_quietly(self, gh: GitHubClient, state: _State, outcome: Outcome) -> None:
        """Complete the check run after a failure; log (never raise) if even that fails."""
        if state.check_run is None:
            return
        try:
            await self._complete(gh, state, outcome)
        except Exception:
            logger.exception("could not complete the check run", extra=state.extra)
        else:
            logger.info(
                "check run completed after a failure",
                extra={**state.extra, "conclusion": outcome.conclusion, "title": outcome.title},
            )

    async def _post_review(self, gh: GitHubClient, state: _State, outcome: Outcome) -> None:
        request = state.request
        url_vars: dict[str, str | int] = {
            "owner": request.owner,
            "repo": request.repo,
            "number": request.number,
        }
        url = "/repos/{owner}/{repo}/pulls/{number}/reviews"
        comments = list(outcome.comments)
        body = outcome.review_body or "txaudit found new findings on changed lines."
        try:
            await gh.post(url, url_vars, data=_review(state.head_sha, body, comments))
            return
        except (InvalidField, ValidationError) as exc:
            logger.warning(
                "review rejected; re-validating comment anchors",
                extra={**state.extra, "errors": str(exc.errors)[:500]},
            )
        # One comment outside the diff fails the whole review, and GitHub does not say
        # which: https://docs.github.com/rest/pulls/reviews#create-a-review-for-a-pull-request
        patches = {
            entry["filename"]: parse_patch(entry["patch"])
            for entry in await self._changed_files(gh, request)
            if isinstance(entry.get("patch"), str)
        }
        anchored = [c for c in comments if _anchored(c, patches)]
        dropped = len(comments) - len(anchored)
        if anchored and dropped:
            note = _dropped_note(dropped)
            try:
                await gh.post(url, url_vars, data=_review(state.head_sha, body + note, anchored))
                return
            except (InvalidField, ValidationError):
                pass
        note = _dropped_note(len(comments))
        await gh.post(url, url_vars, data=_review(state.head_sha, body + note, []))

    def _log_rate_limit(self, gh: GitHubClient, state: _State, seconds: float) -> None:
        limit = gh.rate_limit
        logger.info(
            "rate limit after audit",
            extra={
                **state.extra,
                "seconds": round(seconds, 2),
                "engine_runs": self.engine.runs,
                "rate_remaining": getattr(limit, "remaining", None),
                "rate_limit": getattr(limit, "limit", None),
                "rate_reset": (limit.reset_datetime.isoformat() if limit is not None else None),
            },
        )


class _Reads:
    """The reads an audit starts at once, as tasks; awaited where each step needs them."""

    def __init__(
        self,
        *,
        config: Awaitable[Config],
        files: Awaitable[list[dict[str, Any]]],
        tree: Awaitable[dict[str, TreeEntry]],
        existing: Awaitable[frozenset[str]],
    ) -> None:
        self.config = asyncio.ensure_future(config)
        self.files = asyncio.ensure_future(files)
        self.tree = asyncio.ensure_future(tree)
        self.existing = asyncio.ensure_future(existing)
        self.orphans: asyncio.Future[None] | None = None

    async def cancel(self) -> None:
        """Cancel what is still running; collect every outcome (no unretrieved errors)."""
        tasks: list[asyncio.Future[Any]] = [self.config, self.files, self.tree, self.existing]
        if self.orphans is not None:
            tasks.append(self.orphans)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class TreeEntry(NamedTuple):
    """A blob of the head tree."""

    mode: str
    size: int
    sha: str


_UNKNOWN_ENTRY = TreeEntry("", 0, "")


def _unchanged_content(entry: Mapping[str, Any]) -> bool:
    """A pure rename, copy or mode change (a binary file also has no counts, but is
    added or modified)."""
    return (
        entry.get("status") in ("renamed", "copied", "changed", "unchanged")
        and not entry.get("additions")
        and not entry.get("deletions")
    )


def _recent_key(request: AuditRequest, pull: Mapping[str, Any]) -> tuple[str, int, str, str, str]:
    head, base = pull["head"]["sha"], (pull.get("base") or {}).get("sha") or ""
    return (request.full_name, request.number, head, base, request.filter_override or "")


def _tx007_vocab(config: Config) -> object | None:
    """The `rules.engine.callgraph.Vocab` that TX007 summaries use, or None when TX007 is off."""
    if config.max_callee_modules == 0 or not _tx007_enabled(config):
        return None
    from rules.engine.callgraph import Vocab

    return Vocab.from_config(config)


def _tx007_enabled(config: Config) -> bool:
    if config.rules.get("TX007", None) is not Severity.OFF:
        return True
    return any(
        "TX007" in o.rules and o.rules["TX007"] is not Severity.OFF for o in config.overrides
    )


@dataclass(frozen=True)
class _Fetched:
    path: str
    status: str
    patch: PatchLines | None
    sha: str
    content: bytes | None = None
    skipped: str | None = None

    def skip(self, why: str) -> _Fetched:
        return _Fetched(self.path, self.status, self.patch, self.sha, None, why)

    def with_content(self, content: bytes) -> _Fetched:
        return _Fetched(self.path, self.status, self.patch, self.sha, content, None)


def _wanted(entry: Mapping[str, Any], config: Config) -> bool:
    path = entry.get("filename") or ""
    return (
        entry.get("status") != "removed"
        and path.endswith(PYTHON_SUFFIXES)
        and config.includes(path)
    )


def _anchored(comment: ReviewComment, patches: Mapping[str, PatchLines]) -> bool:
    lines = patches.get(comment.path)
    if lines is None:
        return False
    return lines.same_hunk(comment.start_line or comment.line, comment.line)


def _new_check_run(request: AuditRequest, pull: Mapping[str, Any], head_sha: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": CHECK_NAME,
        "head_sha": head_sha,
        "status": "in_progress",
        "started_at": _now(),
        "external_id": external_id(request.full_name, request.number, head_sha),
        "output": IN_PROGRESS_OUTPUT,
    }
    if pull.get("html_url"):
        data["details_url"] = pull["html_url"]
    return data


def _review(head_sha: str, body: str, comments: Sequence[ReviewComment]) -> dict[str, Any]:
    data: dict[str, Any] = {"commit_id": head_sha, "body": body, "event": "COMMENT"}
    if comments:
        data["comments"] = [c.to_api() for c in comments]
    return data


def _dropped_note(count: int) -> str:
    what = "inline comment" if count == 1 else "inline comments"
    return (
        f"\n\n{count} {what} could not be placed on the diff (GitHub rejected the anchor); "
        "those findings are in the check run."
    )


def _repo_html_url(pull: Mapping[str, Any], request: AuditRequest) -> str:
    repo = (pull.get("base") or {}).get("repo") or {}
    if repo.get("html_url"):
        return str(repo["html_url"])
    html = str(pull.get("html_url") or "")
    return (
        html.split("/pull/", 1)[0]
        if "/pull/" in html
        else f"https://github.com/{request.full_name}"
    )


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def request_extra(request: AuditRequest) -> dict[str, Any]:
    return {
        "delivery": request.delivery_id,
        "installation": request.installation_id,
        "repo": request.full_name,
        "pr": request.number,
    }


def describe_error(exc: BaseException) -> str:
    """What went wrong, in words (never a token, never a traceback)."""
    if isinstance(exc, AuditFailure):
        return str(exc)
    if isinstance(exc, gidgethub.RateLimitExceeded):
        return "GitHub's rate limit for this installation is exhausted; re-run later"
    if isinstance(exc, gidgethub.GitHubBroken):
        return f"GitHub kept answering {int(exc.status_code)} (server error) after several retries"
    if isinstance(exc, HTTPException):
        status = int(exc.status_code)
        detail = f" ({exc.args[0]})" if exc.args and isinstance(exc.args[0], str) else ""
        if status == 429 or (status == 403 and "rate limit" in detail.lower()):
            return f"GitHub's rate limit stopped the audit ({status}){detail}; re-run later"
        if status in (401, 403):
            return f"GitHub refused access ({status}){detail}; check the app's permissions"
        return f"GitHub answered {status}{detail}"
    if isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError | ConnectionError):
        return f"could not reach GitHub ({exc.__class__.__name__})"
    return f"an internal error ({exc.__class__.__name__})"
