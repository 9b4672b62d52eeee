"""The audit of one pull request head: check run, config, files, engine, review (SPEC.md).

The orchestration: `Auditor` turns requests into queued jobs and runs them, step by step;
the reads are `bot.app.reads`, the engine is `bot.app.engine_pool`, the pure outcome is
`bot.review.outcome`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import aiohttp
import cachetools
import gidgethub
from gidgethub import BadRequest, HTTPException, InvalidField, ValidationError

from bot.app.engine_pool import AuditFailure, EngineRunner, config_key
from bot.app.github import GitHub, GitHubClient
from bot.app.queue import CLOSED, HANDED_BACK, SUPERSEDED, AuditJob, AuditQueue, AuditRequest
from bot.app.reads import (
    MAX_FILE_BYTES,
    MAX_LISTED_FILES,
    MODE_SUBMODULE,
    MODE_SYMLINK,
    PYTHON_SUFFIXES,
    THREAD_RESOLVED,
    AuditReads,
    FetchedFile,
    StartedReads,
    TreeEntry,
)
from bot.app.settings import AppSettings
from bot.app.threads import tidy_threads
from bot.review.outcome import (
    REAUDIT_ACTION,
    AuditContext,
    AuditedFile,
    Outcome,
    ReviewComment,
    build_outcome,
    cancelled_outcome,
    config_error_outcome,
    error_outcome,
    reported_fingerprints,
)
from bot.review.patch import PatchLines, parse_patch
from rules.engine import follows_calls
from rules.engine.config import Config, ConfigError

logger = logging.getLogger(__name__)


CHECK_NAME = "txaudit"
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


# --- requests and the auditor ---------------------------------------------------------


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
    #: > 1: a re-run of a job whose earlier run was cut short (its check run may exist).
    attempt: int = 1
    #: The check run's creation while it waits for its write turn (`bot.app.pacing`).
    creation: asyncio.Future[None] | None = None
    #: Set by `_complete` while the creation still waits: it is then created completed.
    finished: Outcome | None = None
    #: Whether the creation has decided what to create (from then on, it is sent).
    creation_sent: bool = False
    #: The id and page of our check run once created (it may have been created completed).
    run_id: int | None = None
    run_url: str | None = None
    #: Completing our runs of this head that an earlier, dead audit left `in_progress`.
    orphans: asyncio.Future[None] | None = None

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
        self.reads = AuditReads(hub)
        self._working = asyncio.Semaphore(settings.max_audits)
        queue.attach(self)

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
        job = AuditJob(dataclasses.replace(request, head_sha=pull["head"]["sha"]), pull)
        extra = job.log_extra
        if pull.get("state") != "open":
            logger.info("pull request is not open; not audited", extra=extra)
            return False
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

    async def interrupted(self, job: AuditJob) -> None:
        """A queued audit that a shutdown cancelled: one completed check run that says so,
        so that a required check does not wait for a run that never comes."""
        request, pull = job.request, job.pull
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

    async def run(self, job: AuditJob) -> None:
        """Run one queued audit to a completed check run (`bot.app.queue.JobRunner`)."""
        request, pull = job.request, job.pull
        gh = self.hub.installation(request.installation_id)
        state = _State(
            request=request,
            pull=pull,
            head_sha=job.head_sha,
            extra=job.log_extra,
            attempt=job.attempt,
        )
        started = time.monotonic()
        deadline = asyncio.timeout(self.settings.audit_timeout)
        try:
            async with deadline:
                await self._audit(gh, state)
            self._recent[_recent_key(request, pull)] = True
        except asyncio.CancelledError:
            if job.cancel_reason in (HANDED_BACK, SUPERSEDED, CLOSED):
                # A creation that has not gone out is dropped; one sent is waited for.
                await self._settle_quietly(state)
            if job.cancel_reason == HANDED_BACK:
                logger.info("audit handed back to the queue", extra=state.extra)
                raise  # the next run adopts the check run; no outcome now
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
        if state.attempt == 1:  # the check run first (a re-run first looks for its own)
            state.step = "creating the check run"
            # Not awaited: the audit goes on while the creation waits for its write turn.
            state.creation = asyncio.ensure_future(self._create_check_run(gh, state))
        try:
            # Reading and running the rules hold one of `max_audits` places; waiting for a
            # write turn (a burst of pull requests) does not, so queued audits go on and
            # their check runs get created.
            async with self._working:
                # The reads that depend on nothing go out together with the check run: the
                # time to a finished check is a count of round trips.
                reads = StartedReads(
                    config=self.reads.read_config(gh, request, state.base_sha),
                    files=self.reads.changed_files(
                        gh, request, int(pull.get("changed_files") or 0)
                    ),
                    tree=self.reads.python_tree(gh, request, state.head_sha),
                    existing=self.reads.existing_fingerprints(gh, request),
                )
                try:
                    audited = await self._audit_steps(gh, state, reads)
                finally:
                    await reads.cancel()
            if audited is not None:
                await self._publish(gh, state, *audited)
            if state.orphans is not None:
                await state.orphans  # best effort, never raises
        finally:
            if state.orphans is not None:
                state.orphans.cancel()
                await asyncio.gather(state.orphans, return_exceptions=True)

    async def _audit_steps(
        self, gh: GitHubClient, state: _State, reads: StartedReads
    ) -> tuple[list[AuditedFile], AuditContext] | None:
        """Steps 1-4 and the outcome: the audited files and their context (None when the
        check run was already completed, for an invalid configuration)."""
        request, pull = state.request, state.pull
        # 1. The check run, at once.
        if state.attempt > 1:  # a re-run: the run that the first attempt created is ours
            state.step = "creating the check run"
            state.check_run = await self._adopt_check_run(gh, state)
            if state.check_run is None:
                state.creation = asyncio.ensure_future(self._create_check_run(gh, state))
            else:
                state.run_id, state.run_url = state.check_run["id"], state.check_run.get("html_url")
                state.orphans = asyncio.ensure_future(self._complete_orphans(gh, state))
        # 2. The config, from the base commit.
        state.step = "reading the configuration from the base commit"
        try:
            state.config = await reads.config
        except ConfigError as exc:
            logger.info("invalid configuration", extra={**state.extra, "error": str(exc)})
            await self._complete(gh, state, config_error_outcome(str(exc)))
            return None
        notes: list[str] = []
        files = await self._audited_files(gh, state, notes, reads)
        # 6 (first half): what the app already said on this pull request.
        state.step = "reading earlier review comments"
        existing = await reads.existing
        ctx = AuditContext(
            repo=request.full_name,
            html_url=_repo_html_url(pull, request),
            base_sha=state.base_sha,
            head_sha=state.head_sha,
            rules_url=self.settings.public_url,
            filter_override=request.filter_override,
            existing_fingerprints=existing,
            notes=tuple(notes),
            check_url=state.run_url,
        )
        return files, ctx

    async def _publish(
        self, gh: GitHubClient, state: _State, files: list[AuditedFile], ctx: AuditContext
    ) -> None:
        """Steps 5 and 6: the check run's outcome and the review."""
        request, config = state.request, state.config
        outcome = build_outcome(files, config, ctx)
        # 5. Complete the check run, unless a newer push made this audit obsolete.
        state.step = "checking the pull request's head"
        newer = await self.reads.newer_head(gh, request, state.head_sha)
        if newer is not None:
            await self._complete(gh, state, cancelled_outcome(newer))
            return
        existing = ctx.existing_fingerprints
        gone = existing - reported_fingerprints(files) - {THREAD_RESOLVED}
        if gone or THREAD_RESOLVED in existing:  # threads of ours may be fixed or come back
            state.step = "updating review threads"
            notes = await self._tidy_threads(gh, state, files)
            if notes:
                ctx = dataclasses.replace(ctx, notes=(*ctx.notes, *notes))
                outcome = build_outcome(files, config, ctx)
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
            if ctx.check_url is None and state.run_url is not None:  # created meanwhile
                outcome = build_outcome(
                    files, config, dataclasses.replace(ctx, check_url=state.run_url)
                )
            await self._post_review(gh, state, outcome)

    # -- steps ---------------------------------------------------------------------------

    async def _audited_files(
        self, gh: GitHubClient, state: _State, notes: list[str], reads: StartedReads
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
        vocab = _tx007_vocab(config, [e["filename"] for e in wanted])

        async def fetch(entry: Mapping[str, Any]) -> FetchedFile:
            item = await self.reads.fetch(gh, request, entry, tree)
            if vocab is not None and item.content is not None:
                # while others download: TX007 summaries are ready when the audits start
                await self.engine.summarize(item.content, vocab)
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

    async def _callee_modules(
        self,
        gh: GitHubClient,
        state: _State,
        fetched: Sequence[FetchedFile],
        tree: Mapping[str, TreeEntry],
        notes: list[str],
    ) -> object | None:
        """The TX007 `rules.engine.callgraph.ProjectIndex` of the head, fed with the modules
        that the changed files call into (at most `max_callee_modules`); None when TX007 is off."""
        config = state.config
        audited = [item for item in fetched if item.content is not None]
        changed = [item.path for item in audited]
        if not audited or config.max_callee_modules == 0 or not follows_calls(config, changed):
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
        self, fetched: Sequence[FetchedFile], config: Config, key: str, project: object | None
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

    async def _tidy_threads(
        self, gh: GitHubClient, state: _State, files: Sequence[AuditedFile]
    ) -> list[str]:
        """`bot.app.threads.tidy_threads`; the summary lines it asks for."""
        request = state.request
        tidied = await tidy_threads(
            gh,
            api_url=self.settings.api_url,
            owner=request.owner,
            repo=request.repo,
            number=request.number,
            head_sha=state.head_sha,
            bot_login=await self.hub.bot_login(),
            reported=reported_fingerprints(files),
            unknown_paths={f.path for f in files if f.result is None},
            pull_paths={f.path for f in files},
            suppressed={
                f.path: [(s.rule_ids, s.reason) for s in f.result.suppressions if s.used]
                for f in files
                if f.result is not None
            },
        )
        lines = list(tidied.notes)
        if tidied.fixed:
            what = "finding" if tidied.fixed == 1 else "findings"
            lines.insert(0, f"{tidied.fixed} {what} fixed since the last audit.")
        logger.info(
            "review threads updated",
            extra={
                **state.extra,
                "fixed": tidied.fixed,
                "resolved": tidied.resolved,
                "reopened": tidied.reopened,
                "forbidden": tidied.forbidden,
            },
        )
        return lines

    async def _create_check_run(self, gh: GitHubClient, state: _State) -> None:
        """Create the check run when its write turn comes: completed, in one request, when
        the audit finished while it waited (a burst of pull requests); `in_progress` else."""
        request = state.request
        url = "/repos/{owner}/{repo}/check-runs"
        async with self.hub.pacer.turn(gh.pace_scope, "POST", url):
            data = _new_check_run(request, state.pull, state.head_sha)
            finished = state.finished
            if finished is not None:
                data.update(_completion(finished, (finished.annotation_batches(50) or [[]])[0]))
            state.creation_sent = True
            run = await gh.post(url, {"owner": request.owner, "repo": request.repo}, data=data)
        state.run_id, state.run_url = run.get("id"), run.get("html_url")
        if finished is None:
            state.check_run = run
        state.orphans = asyncio.ensure_future(self._complete_orphans(gh, state))

    async def _settle_creation(self, state: _State, outcome: Outcome | None) -> bool:
        """Wait for a pending creation; True when it created the run completed with
        `outcome`. With no outcome (a cancelled audit), a creation not yet sent is dropped."""
        creation = state.creation
        if creation is None:
            return False
        if not state.creation_sent:
            if outcome is None:
                creation.cancel()
                state.creation = None
                return False
            if len(outcome.annotation_batches(50)) <= 1:
                state.finished = outcome
        try:
            await asyncio.shield(creation)  # a cancelled audit must not cancel a sent creation
        finally:
            if creation.done():
                state.creation = None
        return state.finished is not None and state.check_run is None

    async def _complete(self, gh: GitHubClient, state: _State, outcome: Outcome) -> None:
        """Complete the check run; annotations go 50 at a time (GitHub appends them)."""
        if await self._settle_creation(state, outcome):
            return  # created completed
        if state.check_run is None:
            return
        url = state.check_run["url"]
        batches = outcome.annotation_batches(50) or [[]]
        for batch in batches[:-1]:
            await gh.patch(url, data={"output": outcome.output(batch)})
        await gh.patch(url, data=_completion(outcome, batches[-1]))
        state.check_run = None  # completed: never touch it again

    async def _adopt_check_run(self, gh: GitHubClient, state: _State) -> Mapping[str, Any] | None:
        """Our `in_progress` run of this head that an earlier attempt of the job created."""
        request = state.request
        wanted = external_id(request.full_name, request.number, state.head_sha)
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
                if run.get("external_id") == wanted and await self.is_our_app(run.get("app")):
                    logger.info("adopted the check run of an earlier attempt", extra=state.extra)
                    return dict(run)
        except HTTPException:
            return None
        return None

    async def _complete_orphans(self, gh: GitHubClient, state: _State) -> None:
        """Complete our earlier runs on this head that nobody will finish (best effort).

        A server killed mid-audit, or a create that GitHub answered 5xx after all and that
        was retried, leaves a run `in_progress`; a required check would wait on it forever.
        """
        request = state.request
        mine = state.run_id
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

    async def _settle_quietly(self, state: _State) -> None:
        try:
            await self._settle_creation(state, None)
        except Exception:
            logger.exception("could not create the check run", extra=state.extra)

    async def _finish_quietly(self, gh: GitHubClient, state: _State, outcome: Outcome) -> None:
        """Complete the check run after a failure; log (never raise) if even that fails."""
        if state.check_run is None and state.creation is None:
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
            for entry in await self.reads.changed_files(gh, request)
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


def _recent_key(request: AuditRequest, pull: Mapping[str, Any]) -> tuple[str, int, str, str, str]:
    head, base = pull["head"]["sha"], (pull.get("base") or {}).get("sha") or ""
    return (request.full_name, request.number, head, base, request.filter_override or "")


def _tx007_vocab(config: Config, paths: Sequence[str]) -> object | None:
    """The `rules.engine.callgraph.Vocab` that TX007 summaries use, or None when TX007 is off
    for all of `paths`."""
    if config.max_callee_modules == 0 or not follows_calls(config, paths):
        return None
    from rules.engine.callgraph import Vocab

    return Vocab.from_config(config)


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


def _completion(outcome: Outcome, annotations: Sequence[Any]) -> dict[str, Any]:
    """The fields that complete a check run (on creation or on update)."""
    return {
        "status": "completed",
        "conclusion": outcome.conclusion,
        "completed_at": _now(),
        "output": outcome.output(annotations),
        "actions": [REAUDIT_ACTION],
    }


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


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
