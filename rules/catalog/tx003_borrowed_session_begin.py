"""TX003 borrowed-session-begin."""

from __future__ import annotations

import ast

from rules.engine.context import BEGIN, receiver_call, receiver_of
from rules.engine.model import Severity
from rules.engine.rule import Invalid, Rule, Valid


class BorrowedSessionBegin(Rule):
    """
    ## What it does
    Flags `begin()` - `async with session.begin():` or a bare `await session.begin()` - on
    a *borrowed* session (a session parameter) in a function that is not a route endpoint.
    `begin_nested()` (a SAVEPOINT) is not flagged.

    ## Why is this bad?
    The service starts a transaction inside the caller's transaction: the guide's "double
    transaction" anti-pattern. With SQLAlchemy this either raises (a transaction is
    already begun) or, when it happens to work, commits the caller's pending work at the
    end of the helper's block.

    ## Example
    ```python
    async def archive(session: AsyncSession, job: Job) -> None:
        async with session.begin():
            job.archived = True
    ```

    ## Use instead
    ```python
    async def archive(session: AsyncSession, job: Job) -> None:
        job.archived = True  # runs in the caller's transaction
    ```

    ## References
    Transaction management guide, "Double Transaction (WRONG)".
    """

    ID = "TX003"
    NAME = "borrowed-session-begin"
    SEVERITY = Severity.ERROR
    MESSAGE = (
        "`{name}.begin()` starts a transaction on a session passed in by the caller, inside "
        "the caller's transaction."
    )
    TRIGGERS = ("begin",)

    VALID = (
        Valid(
            """
            @router.put("/jobs/{job_id}")
            async def update(job_id: int, session: AsyncSession = Depends(get_db_session)):
                async with session.begin():
                    job = await session.get(Job, job_id)
            """
        ),
        Valid(
            """
            @app.api_route("/jobs", methods=["POST"])
            async def create(db: AsyncSession):
                await db.begin()
            """
        ),
        Valid(
            """
            async def archive(session: AsyncSession, job: Job) -> None:
                async with session.begin_nested():
                    job.archived = True
            """
        ),
        Valid(
            """
            async def run():
                async with get_background_session() as session:
                    await archive(session)
            """
        ),
        Valid(
            """
            def connect(engine, conn: Connection):
                with engine.begin() as connection:
                    connection.execute(stmt)
            """
        ),
        Valid(
            """
            async def export(session: AsyncSession, rows: list[Row]) -> None:
                async with reporting_session() as session:  # rebound: this function's own session
                    async with session.begin():
                        session.add_all(rows)
            """
        ),
        Valid(
            """
            async def sync(session: AsyncSession, tenant: str) -> None:
                session = session_for_tenant(tenant)
                async with session.begin():
                    await session.execute(select(Tenant))
            """
        ),
        Valid(
            """
            async def migrate_shards(session: AsyncSession) -> None:
                for session in open_shard_sessions():
                    async with session.begin():
                        await session.execute(select(Shard))
            """
        ),
        Valid(
            """
            async def retry(session: AsyncSession) -> None:
                while (session := await reconnect()) is not None:
                    async with session.begin():
                        await session.execute(select(Job))
            """
        ),
    )
    INVALID = (
        Invalid(
            """
            async def archive(session: AsyncSession, job: Job) -> None:
                async with session.begin():
                    job.archived = True
            """,
            lines=2,
            columns=5,
        ),
        Invalid(
            """
            class Adapter:
                async def store(self, db_session, rows):
                    await db_session.begin()
                    db_session.add_all(rows)
            """,
            lines=3,
        ),
        Invalid(
            """
            import sqlalchemy.orm

            def sync_store(s: sqlalchemy.orm.Session, rows):
                with s.begin():
                    s.add_all(rows)
            """,
            lines=4,
        ),
        Invalid(
            """
            async def sync(session: AsyncSession, tenant: str) -> None:
                async with session.begin():  # the caller's session: the rebinding comes later
                    await session.execute(select(Tenant))
                session = session_for_tenant(tenant)
            """,
            lines=2,
        ),
        Invalid(
            """
            async def sync(session: AsyncSession, tenant: str | None) -> None:
                if tenant:
                    session = session_for_tenant(tenant)
                async with session.begin():  # the caller's session when tenant is empty
                    await session.execute(select(Tenant))
            """,
            lines=4,
        ),
    )

    def visit_Call(self, node: ast.Call) -> None:
        target = receiver_call(node)
        if target is None or target[1] != BEGIN:
            return
        name = target[0]
        if self.ctx.is_borrowed(name, receiver_of(node)) and not self.ctx.is_route():
            self.report(self.ctx.statement_of_call(node), name=name)
