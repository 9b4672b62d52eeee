"""TX005 session-in-except."""

from __future__ import annotations

import ast

from rules.engine.config import Config
from rules.engine.model import Severity
from rules.engine.rule import Invalid, Rule, Valid
from rules.engine.syntax import ExceptStarHandler, Finally


class SessionInExcept(Rule):
    """
    ## What it does
    Flags a session-factory block opened inside an `except` handler or a `finally` clause,
    typically a `failure_session` used to mark an item failed.

    ## Why is this bad?
    The failure is written in a separate transaction while the batch transaction is rolled
    back: the batch is no longer atomic and the two sessions can disagree (the item is
    "failed" in one and still "processing" in the other, or the failure write itself
    deadlocks on rows the batch session still holds).

    ## Example
    ```python
    async def process(job_id: int):
        async with get_background_session() as session:
            try:
                await run(session, job_id)
            except Exception:
                async with get_background_session() as failure_session:
                    await mark_failed(failure_session, job_id)
                raise
    ```

    ## Use instead
    ```python
    async def process(job_id: int):
        async with get_background_session() as session:
            job = await session.get(Job, job_id)
            try:
                await run(session, job)
            except Exception:
                job.status = "failed"  # in memory, on the batch session
                raise
    ```

    ## References
    Transaction management guide, "Background Task Transaction Pattern (CORRECT &
    CRITICAL)": error handling.
    """

    ID = "TX005"
    NAME = "session-in-except"
    SEVERITY = Severity.ERROR
    MESSAGE = (
        "A session-factory block in an `{clause}` clause writes in a separate transaction "
        "from the batch; mark the item failed on the batch session and re-raise."
    )

    VALID = (
        Valid(
            """
            async def process(job_id: int):
                async with get_background_session() as session:
                    job = await session.get(Job, job_id)
                    try:
                        await run(session, job)
                    except Exception:
                        job.status = "failed"
                        raise
            """
        ),
        Valid(
            """
            async def process():
                try:
                    await risky()
                except Exception:
                    def later():
                        return get_background_session()
                    raise
            """
        ),
        Valid(
            """
            async def process():
                try:
                    await risky()
                finally:
                    async with get_lock() as lock:
                        lock.release()
            """
        ),
    )
    INVALID = (
        Invalid(
            """
            async def process(job_id: int):
                async with get_background_session() as session:
                    try:
                        await run(session, job_id)
                    except Exception:
                        async with get_background_session() as failure_session:
                            await mark_failed(failure_session, job_id)
                        raise
            """,
            lines=6,
            columns=13,
        ),
        Invalid(
            """
            from app.db import get_background_session as session_scope

            def sync_process():
                try:
                    work()
                finally:
                    with session_scope() as s:
                        s.add(AuditLog())
            """,
            lines=7,
            message="finally",
        ),
        Invalid(
            """
            async def first_then_failure():
                async with get_background_session() as session:
                    jobs = await load(session)
                try:
                    await run(jobs)
                except* ValueError:
                    async with get_background_session() as failure_session:
                        await mark_failed(failure_session, jobs)
            """,
            lines=7,
        ),
    )

    @classmethod
    def triggers(cls, config: Config) -> tuple[str, ...]:
        return tuple(f.rsplit(".", 1)[-1] for f in config.session_factories)

    def visit_Module(self, node: ast.Module) -> None:
        self._clauses: list[str] = []

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        self._clauses.append("except")

    def leave_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        self._clauses.pop()

    def visit_ExceptStarHandler(self, node: ExceptStarHandler) -> None:
        self._clauses.append("except*")

    def leave_ExceptStarHandler(self, node: ExceptStarHandler) -> None:
        self._clauses.pop()

    def visit_Finally(self, node: Finally) -> None:
        self._clauses.append("finally")

    def leave_Finally(self, node: Finally) -> None:
        self._clauses.pop()

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        if any(block.in_handler for block in self.ctx.blocks_of(node)):
            self.report(node, clause=self._clauses[-1] if self._clauses else "except")
