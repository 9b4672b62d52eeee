"""TX007 callee-manages-transaction (cross-module: see `rules.engine.callgraph`)."""

from __future__ import annotations

import ast

from rules.engine.callgraph import (
    ArgRef,
    CallShape,
    ModuleSummary,
    ProjectIndex,
    Resolver,
    Site,
    SummaryBuilder,
    Vocab,
    call_shape,
    describe,
    passed_name_nodes,
)
from rules.engine.config import Config
from rules.engine.context import FileContext
from rules.engine.model import Severity
from rules.engine.rule import Invalid, Report, Rule, Valid


class CalleeManagesTransaction(Rule):
    """
    ## What it does
    Flags a call that hands an owned session to a function that commits, rolls back or
    begins on it. The call is inside a session-factory block (`async with
    get_background_session() as session:`) or a route endpoint's `async with
    session.begin():`; the callee manages the parameter it receives directly or through
    further calls (up to 3 levels), in the same file or in another module of the repository
    reached by import. The finding names the callee and the file and line where it commits.

    ## Why is this bad?
    The block owns the transaction: the context manager commits once at the end and rolls
    everything back on an error. A callee that commits ends the batch early, so a failure
    after the call leaves half of the batch committed. The caller looks correct - the commit
    is in another file - which is how a correct-looking scheduler still breaks.

    ## Example
    ```python
    # app/services/sitemap_adapter.py
    class SitemapAdapter:
        async def submit(self, session: AsyncSession, items: list[Item]) -> None:
            session.add_all(items)
            await session.commit()

    # app/jobs/scheduler.py
    async def process_pending(items):
        async with get_background_session() as session:
            await SitemapAdapter().submit(session, items)
    ```

    ## Use instead
    ```python
    class SitemapAdapter:
        async def submit(self, session: AsyncSession, items: list[Item]) -> None:
            session.add_all(items)
            await session.flush()  # the caller's block commits
    ```

    ## References
    Transaction management guide, "Background Task Transaction Pattern (CORRECT &
    CRITICAL)": pass the same session; helpers must not commit. Calls that cannot be
    resolved (dynamic dispatch, third-party code, more than 3 levels deep, or beyond
    `max_callee_modules` fetched modules in the app) are not reported.
    """

    ID = "TX007"
    NAME = "callee-manages-transaction"
    SEVERITY = Severity.ERROR
    MESSAGE = (
        "Passes `{name}` to `{callee}` ({path}:{line}), which commits it; the block that owns "
        "the session must own its transaction."
    )
    TRIGGERS = ("get_background_session", "begin")

    VALID = (
        Valid(
            """
            async def mark(session, items):
                for item in items:
                    item.status = "done"
                await session.flush()


            async def job(items):
                async with get_background_session() as session:
                    await mark(session, items)
            """
        ),
        Valid(
            """
            async def savepoint(session):
                async with session.begin_nested():
                    await session.flush()


            async def job():
                async with get_background_session() as session:
                    await savepoint(session)
            """
        ),
        Valid(
            """
            async def save(session):
                await session.commit()


            async def job():
                await save(make_session())  # not an owned session
                async with get_background_session() as session:
                    await unknown_helper(session)  # cannot be resolved: not reported
            """
        ),
        Valid(
            """
            async def save(session):
                await session.commit()


            @router.post("/items")
            async def create(session: AsyncSession = Depends(get_db_session)):
                await save(session)  # a route owns its transaction and may commit
            """
        ),
        Valid(
            """
            async def d(session):
                await session.commit()
            async def c(session):
                await d(session)
            async def b(session):
                await c(session)
            async def a(session):
                await b(session)


            async def job():
                async with get_background_session() as session:
                    await a(session)  # the commit is 4 calls away: not followed
            """
        ),
        Valid(
            """
            async def save(session, items):
                session = replica_session()  # rebound: the caller's session is not committed
                session.add_all(items)
                await session.commit()


            async def job(items):
                async with get_background_session() as session:
                    await save(session, items)
            """
        ),
        Valid(
            """
            async def save(session):
                await session.commit()


            async def job(items):
                async with get_background_session() as session:
                    await load(session, items)
                    session = replica_session()  # rebound: no longer the block's session
                    await save(session)
            """
        ),
        Valid(
            """
            async def save(session):
                await session.commit()


            async def job():
                async with get_background_session() as session:
                    for session in open_shard_sessions():
                        await save(session)
            """
        ),
        Valid(
            """
            async def save(session):
                await session.commit()


            async def job():
                async with get_background_session() as session:
                    async with reporting_session() as session:
                        await save(session)
            """
        ),
        Valid(
            """
            async def save(session):
                await session.commit()


            async def job():
                async with get_background_session() as session:
                    if (session := await reconnect()) is not None:
                        await save(session)
            """
        ),
        Valid(
            """
            async def save(session):
                await session.commit()


            async def job(items):
                async with get_background_session() as session:
                    session = replica_session()
                    await save(session=session)  # no longer the block's session
            """
        ),
    )
    INVALID = (
        Invalid(
            """
            async def submit_all(session, items):
                session.add_all(items)
                await session.commit()


            async def job(items):
                async with get_background_session() as fetch_session:
                    await submit_all(fetch_session, items)
            """,
            lines=8,
            columns=15,
            message="Passes `fetch_session` to `submit_all` (app/services/example.py:3)",
        ),
        Invalid(
            """
            class Scheduler:
                async def run(self):
                    async with db.get_background_session() as s:
                        await self.mark_failed(s)

                async def mark_failed(self, session):
                    await session.rollback()
            """,
            lines=4,
            message="`Scheduler.mark_failed` (app/services/example.py:7), which rolls it back",
        ),
        Invalid(
            """
            class Service:
                async def method(self, items, *, session):
                    async with session.begin():
                        session.add_all(items)


            async def job(items):
                async with get_background_session() as s:
                    await Service().method(items, session=s)
            """,
            lines=9,
            message="which begins a transaction on it",
        ),
        Invalid(
            """
            async def save(db):
                await db.commit()


            async def step(session):
                await save(session)


            @router.post("/items")
            async def create(session: AsyncSession = Depends(get_db_session)):
                async with session.begin():
                    await step(session)
            """,
            lines=12,
            message="to `step`, which passes it on to `save` (app/services/example.py:2)",
        ),
        Invalid(
            """
            async def save(session):
                await session.commit()


            async def job():
                async with worker_session() as session:
                    await save(session)
            """,
            lines=7,
            config={"session_factories": ["worker_session"]},
        ),
        Invalid(
            """
            async def save(session, items):
                await session.commit()  # the caller's session: the rebinding comes later
                session = replica_session()


            async def job(items):
                async with get_background_session() as session:
                    await save(session, items)
            """,
            lines=8,
            message="which commits it",
        ),
        Invalid(
            """
            async def save(session):
                await session.commit()


            async def job(use_replica: bool):
                async with get_background_session() as session:
                    if use_replica:
                        session = replica_session()
                    await save(session)  # the block's session when use_replica is false
            """,
            lines=9,
        ),
    )

    @classmethod
    def triggers(cls, config: Config) -> tuple[str, ...]:
        return (*Vocab.from_config(config).session_factories, "begin")

    READS_MODULE_SUMMARY = True

    def __init__(self, ctx: FileContext, sink: list[Report]) -> None:
        super().__init__(ctx, sink)
        #: Calls that hand an owned session over: (call, name, argument, callee shape,
        #: enclosing function node, scope). They are resolved once the whole file (and so
        #: its summary) has been walked.
        self._handed: list[tuple[ast.Call, str, ArgRef, CallShape, ast.AST | None, str]] = []

    def _summary(self) -> tuple[ModuleSummary, dict[int, str]]:
        """This file's summary (built in the shared walk, or by a walk of its own) and the
        qualified name of each function node."""
        builder = self.ctx.summary_builder
        if not isinstance(builder, SummaryBuilder):
            builder = SummaryBuilder(self.ctx.module, Vocab.from_config(self.ctx.config))
            builder.run()
        return builder.finish(), builder.node_qualnames

    def _owns(self, use: ast.Name) -> bool:
        """`use` is this function's own session: a factory block's (the name still bound to
        it) or, in a route, the session of an open ``with session.begin():``."""
        if self.ctx.owned_block(use.id, use) is not None:
            return True
        return self.ctx.is_route() and self.ctx.begin_block_of(use) is not None

    def visit_Call(self, node: ast.Call) -> None:
        if not node.args and not node.keywords:
            return
        scope = self.ctx.scope
        if not scope.open_blocks and not (scope.begin_blocks and self.ctx.is_route()):
            return
        passed = next(
            ((use.id, ref) for use, ref in passed_name_nodes(node) if self._owns(use)), None
        )
        shape = call_shape(node.func)
        if passed is None or shape is None:
            return
        name, ref = passed
        function = self.ctx.function.node if self.ctx.function is not None else None
        self._handed.append((node, name, ref, shape, function, self.ctx.scope.qualname))

    def leave_Module(self, original_node: ast.Module) -> None:
        if not self._handed:
            return
        summary, qualnames = self._summary()
        project = self.ctx.project if isinstance(self.ctx.project, ProjectIndex) else None
        resolver = Resolver.for_module(summary, self.ctx.path, project)
        for call, name, ref, shape, function, scope in self._handed:
            qualname = qualnames.get(id(function)) if function is not None else None
            chain = resolver.site_chain(Site(shape, ref, name, qualname))
            if chain is not None:
                self.report(call, describe(name, chain), in_scope=scope)
