"""TX006 owned-session-commit."""

from __future__ import annotations

import ast

from rules.engine.context import COMMIT_METHODS, receiver_call, receiver_of
from rules.engine.model import Severity
from rules.engine.rule import Invalid, Rule, Valid


class OwnedSessionCommit(Rule):
    """
    ## What it does
    Flags an explicit `commit()` or `rollback()` on an *owned* session (the name bound by
    `async with get_background_session() as s:`) inside its own session-factory block.

    ## Why is this bad?
    The context manager commits on normal exit and rolls back on an exception. A manual
    commit in the middle splits the batch into several transactions (work before it is
    kept even if the rest fails); a manual rollback throws away work the block would
    otherwise have handled, and the rest of the block continues in a fresh transaction.

    ## Example
    ```python
    async def process_pending():
        async with get_background_session() as session:
            for job in await pending(session):
                job.status = "done"
                await session.commit()
    ```

    ## Use instead
    ```python
    async def process_pending():
        async with get_background_session() as session:
            for job in await pending(session):
                job.status = "done"
            # committed once, by the context manager, when the block ends
    ```
    Use `await session.flush()` when the database must see the changes early (to get
    generated ids or to surface constraint errors).

    ## References
    Transaction management guide, "Background Task Transaction Pattern (CORRECT &
    CRITICAL)": the context manager handles commit/rollback exclusively.
    """

    ID = "TX006"
    NAME = "owned-session-commit"
    SEVERITY = Severity.WARNING
    MESSAGE = (
        "`{name}.{method}()` inside its own session-factory block; the context manager "
        "commits on exit and rolls back on error."
    )
    TRIGGERS = ("commit", "rollback")

    VALID = (
        Valid(
            """
            async def process_pending():
                async with get_background_session() as session:
                    for job in await pending(session):
                        job.status = "done"
                    await session.flush()
            """
        ),
        Valid(
            """
            async def process_pending():
                async with get_background_session() as session:
                    jobs = await pending(session)
                await session.commit()
            """
        ),
        Valid(
            """
            async def other_session(db: AsyncSession):
                async with get_background_session() as session:
                    await helper(session)
                    await db.flush()
            """
        ),
        Valid(
            """
            async def copy_reports():
                async with get_background_session() as session:
                    reports = await load_reports(session)
                    async with reporting_session() as session:  # rebound: not the factory's session
                        session.add_all(reports)
                        await session.commit()
            """
        ),
        Valid(
            """
            async def refresh():
                async with get_background_session() as session:
                    await mark_started(session)
                    session = replica_session()  # rebound: the block no longer owns this name
                    await session.commit()
            """
        ),
        Valid(
            """
            async def close_shards():
                async with get_background_session() as session:
                    for session in open_shard_sessions():
                        await session.commit()
            """
        ),
        Valid(
            """
            async def retry():
                async with get_background_session() as session:
                    if (session := await reconnect()) is not None:
                        await session.commit()
            """
        ),
    )
    INVALID = (
        Invalid(
            """
            async def process_pending():
                async with get_background_session() as fetch_session:
                    for job in await pending(fetch_session):
                        job.status = "done"
                        await fetch_session.commit()
            """,
            lines=5,
            columns=19,
        ),
        Invalid(
            """
            from app import database

            def sync_job():
                with database.get_background_session() as s:
                    try:
                        work(s)
                    except Exception:
                        s.rollback()
                        raise
            """,
            lines=8,
        ),
        Invalid(
            """
            async def shadowed(session: AsyncSession):
                async with get_background_session() as session:
                    await session.commit()
            """,
            lines=3,
        ),
        Invalid(
            """
            async def refresh():
                async with get_background_session() as session:
                    await session.commit()  # still the block's session: the rebinding comes later
                    session = replica_session()
            """,
            lines=3,
        ),
        Invalid(
            """
            async def refresh(use_replica: bool):
                async with get_background_session() as session:
                    if use_replica:
                        session = replica_session()
                    await session.commit()  # the block's session when use_replica is false
            """,
            lines=5,
        ),
    )

    def visit_Call(self, node: ast.Call) -> None:
        target = receiver_call(node)
        if target is None or target[1] not in COMMIT_METHODS:
            return
        name, method = target
        if self.ctx.owned_block(name, receiver_of(node)) is not None:
            self.report(node, name=name, method=method)
