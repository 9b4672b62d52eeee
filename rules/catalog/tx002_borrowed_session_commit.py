"""TX002 borrowed-session-commit."""

from __future__ import annotations

import ast

from rules.engine.context import COMMIT_METHODS, receiver_call, receiver_of
from rules.engine.model import Severity
from rules.engine.rule import Invalid, Rule, Valid


class BorrowedSessionCommit(Rule):
    """
    ## What it does
    Flags `commit()` or `rollback()` on a *borrowed* session - a function parameter that is
    a session (annotated `AsyncSession`/`Session`, or unannotated and named `session`,
    `db`, `db_session` or `async_session`) - in a function that is not a route endpoint.

    ## Why is this bad?
    The caller (a router or a background task) owns the transaction. A helper that commits
    ends the caller's batch early: everything the caller did before the call is committed
    even if the rest of the batch then fails, so the batch is no longer atomic.

    ## Example
    ```python
    async def mark_done(session: AsyncSession, job: Job) -> None:
        job.status = "done"
        await session.commit()
    ```

    ## Use instead
    ```python
    async def mark_done(session: AsyncSession, job: Job) -> None:
        job.status = "done"  # the caller's transaction commits it
    ```

    ## References
    Transaction management guide, "Background Task Transaction Pattern (CORRECT &
    CRITICAL)": helpers must not commit or roll back; routers own transactions, services
    do not.
    """

    ID = "TX002"
    NAME = "borrowed-session-commit"
    SEVERITY = Severity.ERROR
    MESSAGE = (
        "`{name}.{method}()` on a session passed in by the caller; the caller owns the "
        "transaction, so this helper must not {method}."
    )
    TRIGGERS = ("commit", "rollback")

    VALID = (
        Valid(
            """
            async def mark_done(session: AsyncSession, job: Job) -> None:
                job.status = "done"
                await session.flush()
            """
        ),
        Valid(
            """
            @router.post("/jobs/{job_id}/done")
            async def done(job_id: int, session: AsyncSession = Depends(get_db_session)):
                job = await session.get(Job, job_id)
                job.status = "done"
                await session.commit()
            """
        ),
        Valid(
            """
            async def done(job_id: int, db=Depends(get_db)):
                await db.commit()
            """
        ),
        Valid(
            """
            async def done(job_id: int, db: Annotated[AsyncSession, Depends(get_session)]):
                await db.rollback()
            """
        ),
        Valid(
            """
            def save(connection: Connection):
                connection.commit()
            """
        ),
        Valid(
            """
            def save(repo, session: Repository):
                session.commit()
            """
        ),
        Valid(
            """
            async def export(session: AsyncSession, rows: list[Row]) -> None:
                # rebound by `with ... as`: from here on, this function's own reporting session
                async with reporting_session() as session:
                    session.add_all(rows)
                    await session.commit()
            """
        ),
        Valid(
            """
            async def sync(session: AsyncSession, tenant: str) -> None:
                session = session_for_tenant(tenant)  # rebound: no longer the caller's session
                await session.commit()
            """
        ),
        Valid(
            """
            async def close_shards(session: AsyncSession) -> None:
                for session in open_shard_sessions():  # the loop target rebinds the name
                    await session.commit()
            """
        ),
        Valid(
            """
            async def retry(session: AsyncSession) -> None:
                if (session := await reconnect()) is not None:  # rebound by the walrus
                    await session.commit()
            """
        ),
    )
    INVALID = (
        Invalid(
            """
            async def mark_done(session: AsyncSession, job: Job) -> None:
                job.status = "done"
                await session.commit()
            """,
            lines=3,
            columns=11,
        ),
        Invalid(
            """
            class JobService:
                async def fail(self, db, job):
                    try:
                        job.run()
                    except Exception:
                        await db.rollback()
                        raise
            """,
            lines=6,
        ),
        Invalid(
            """
            from typing import Optional
            import sqlalchemy as sa

            def a(s: Optional[AsyncSession]):
                s.commit()

            def b(s: "AsyncSession | None"):
                s.commit()

            def c(s: sa.orm.Session | None = None):
                s.rollback()
            """,
            lines=(5, 8, 11),
        ),
        Invalid(
            """
            async def outer(session: AsyncSession):
                async def inner(db_session):
                    await db_session.commit()
                await inner(session)
            """,
            lines=3,
        ),
        Invalid(
            """
            async def sync(session: AsyncSession, tenant: str) -> None:
                await session.commit()  # still the caller's session: the rebinding comes later
                session = session_for_tenant(tenant)
                await session.commit()
            """,
            lines=2,
        ),
        Invalid(
            """
            async def sync(session: AsyncSession, tenant: str | None) -> None:
                if tenant is not None:
                    session = session_for_tenant(tenant)
                await session.commit()  # the caller's session when tenant is None
            """,
            lines=4,
        ),
        Invalid(
            """
            async def close_shards(session: AsyncSession) -> None:
                for session in open_shard_sessions():
                    await session.flush()
                await session.rollback()  # the caller's session when there is no shard
            """,
            lines=4,
        ),
        Invalid(
            """
            async def export(session: AsyncSession, rows: list[Row]) -> None:
                try:
                    async with reporting_session() as session:
                        session.add_all(rows)
                except ConnectionError:
                    await session.rollback()  # the error may come before the rebinding
            """,
            lines=6,
        ),
        Invalid(
            """
            async def retry(session: AsyncSession, fresh: bool) -> None:
                if fresh and (session := await reconnect()):  # runs only when fresh
                    pass
                await session.commit()
            """,
            lines=4,
        ),
    )

    def visit_Call(self, node: ast.Call) -> None:
        target = receiver_call(node)
        if target is None or target[1] not in COMMIT_METHODS:
            return
        name, method = target
        if self.ctx.is_borrowed(name, receiver_of(node)) and not self.ctx.is_route():
            self.report(node, name=name, method=method)
