"""TX004 split-batch-session."""

from __future__ import annotations

import ast

from rules.engine.config import Config
from rules.engine.context import FactoryBlock
from rules.engine.model import Severity
from rules.engine.rule import Invalid, Rule, Valid


class SplitBatchSession(Rule):
    """
    ## What it does
    Flags a function that opens more than one session-factory block one after another
    (not nested): fetch in one session, update status in a second, write results in a
    third. Each block after the first is reported. Blocks in different branches of the
    same `if`/`else` are not "one after another"; blocks inside an `except` handler or a
    `finally` clause are TX005, not TX004.

    ## Why is this bad?
    Each block is its own transaction, so the batch is no longer atomic: a failure half-way
    leaves rows in intermediate states (fetched and marked "processing" but never
    finished) that the next run has to untangle.

    ## Example
    ```python
    async def process_batch():
        async with get_background_session() as fetch_session:
            jobs = await fetch_pending(fetch_session)
        async with get_background_session() as update_session:
            await mark_processing(update_session, jobs)
    ```

    ## Use instead
    ```python
    async def process_batch():
        async with get_background_session() as session:
            jobs = await fetch_pending(session)
            await mark_processing(session, jobs)
    ```
    When one session per step is intended (the "isolated session pattern"), keep it with a
    suppression that states the reason (`# txaudit: ignore[TX004] -- reason`) or turn the
    rule off for those paths in the configuration.

    ## References
    Transaction management guide, "Background Task Transaction Pattern (CORRECT &
    CRITICAL)": one session block for the whole task.
    """

    ID = "TX004"
    NAME = "split-batch-session"
    SEVERITY = Severity.WARNING
    MESSAGE = (
        "`{scope}` opens another session-factory block after {first}; the batch is split "
        "across transactions and is no longer atomic."
    )

    VALID = (
        Valid(
            """
            async def process_batch():
                async with get_background_session() as session:
                    jobs = await fetch_pending(session)
                    await mark_processing(session, jobs)
            """
        ),
        Valid(
            """
            async def process_batch(use_replica: bool):
                if use_replica:
                    async with get_background_session() as session:
                        await work(session)
                else:
                    async with get_background_session() as session:
                        await work(session)
            """
        ),
        Valid(
            """
            async def process_batch():
                async with get_background_session() as session:
                    try:
                        await work(session)
                    except Exception:
                        async with get_background_session() as failure_session:
                            await mark_failed(failure_session)
                        raise
            """
        ),
        Valid(
            """
            async def one():
                async with get_background_session() as session:
                    await work(session)

            async def two():
                async with get_background_session() as session:
                    await work(session)
            """
        ),
        Valid(
            """
            async def outer():
                async with get_background_session() as session:
                    async with get_background_session() as audit_session:
                        await work(session, audit_session)
            """
        ),
        Valid(
            """
            async def process_pages(pages):
                for page in pages:
                    async with get_background_session() as page_session:
                        await scrape(page_session, page)
            """
        ),
    )
    INVALID = (
        Invalid(
            """
            async def process_batch():
                async with get_background_session() as fetch_session:
                    jobs = await fetch_pending(fetch_session)
                async with get_background_session() as update_session:
                    await mark_processing(update_session, jobs)
                results = compute(jobs)
                async with get_background_session() as write_session:
                    await store(write_session, results)
            """,
            lines=(4, 7),
            columns=(5, 5),
        ),
        Invalid(
            """
            from app import db

            class Scheduler:
                async def run(self):
                    async with db.get_background_session() as s1:
                        await self.fetch(s1)
                    if self.dirty:
                        async with db.get_background_session() as s2:
                            await self.flush(s2)
            """,
            lines=8,
            message="Scheduler.run",
        ),
        Invalid(
            """
            async def isolated():
                async with get_background_session() as a:
                    await step_one(a)
                # txaudit: ignore[TX004] -- isolated session per step on purpose
                async with get_background_session() as b:
                    await step_two(b)
                async with get_background_session() as c:
                    await step_three(c)
            """,
            lines=7,
        ),
    )

    @classmethod
    def triggers(cls, config: Config) -> tuple[str, ...]:
        return tuple(f.rsplit(".", 1)[-1] for f in config.session_factories)

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        blocks = self.ctx.blocks_of(node)
        if not blocks:
            return
        scope = self.ctx.scope
        for block in blocks:
            if block.in_handler:
                continue
            first = _earlier_block(scope.blocks, scope.open_blocks, block)
            if first is not None:
                label = f"`{first.name}`" if first.name else "an earlier block"
                self.report(node, scope=scope.qualname, first=label)
                return


def _earlier_block(
    blocks: list[FactoryBlock], open_blocks: list[FactoryBlock], block: FactoryBlock
) -> FactoryBlock | None:
    """The first earlier block in the same scope that `block` follows (not enclosing it,
    not in an except/finally, not in another branch of the same `if`)."""
    enclosing = {id(b) for b in open_blocks}
    for earlier in blocks:
        if earlier is block:
            return None
        if earlier.in_handler or earlier.with_node is block.with_node or id(earlier) in enclosing:
            continue
        if _exclusive(earlier.branches, block.branches):
            continue
        return earlier
    return None


def _exclusive(a: tuple[tuple[int, int], ...], b: tuple[tuple[int, int], ...]) -> bool:
    branches = dict(a)
    return any(if_id in branches and branches[if_id] != branch for if_id, branch in b)
