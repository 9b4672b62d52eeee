"""TX001 nested-transaction."""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rules.engine.context import BEGIN, receiver_call, receiver_of
from rules.engine.model import Fix, Severity
from rules.engine.rule import FixInput, Invalid, Rule, Valid

if TYPE_CHECKING:
    import libcst as cst

_WITH_HEADER = re.compile(r"\s*(?:async\s+)?with\b.*:\s*$")


class NestedTransaction(Rule):
    """
    ## What it does
    Flags `begin()` on a session that is already inside a transaction in the same function:
    an owned session inside its own session-factory block (`async with
    get_background_session() as s:`), or a second `begin()` on a session inside an open
    `async with session.begin():`. Both `async with session.begin():` and a bare
    `await session.begin()` count. `begin_nested()` (a SAVEPOINT) is allowed.

    ## Why is this bad?
    The session factory (or the outer `begin()`) already began the transaction, so
    SQLAlchemy raises `InvalidRequestError: A transaction is already begun on this
    Session` at run time - typically only on the code path that tests did not cover.

    ## Example
    ```python
    async def process_pending():
        async with get_background_session() as fetch_session:
            async with fetch_session.begin():
                rows = await fetch_session.execute(select(Job))
    ```

    ## Use instead
    ```python
    async def process_pending():
        async with get_background_session() as fetch_session:
            rows = await fetch_session.execute(select(Job))
    ```
    The autofix removes the inner `async with ....begin():` line and dedents its body.

    ## References
    Transaction management guide, "Background Task Transaction Pattern (CORRECT &
    CRITICAL)": no nested `session.begin()`.
    """

    ID = "TX001"
    NAME = "nested-transaction"
    SEVERITY = Severity.ERROR
    MESSAGE = "`{name}.begin()` starts a transaction on `{name}`, which {why}."
    TRIGGERS = ("begin",)

    VALID = (
        Valid(
            """
            async def process_pending():
                async with get_background_session() as session:
                    rows = await session.execute(select(Job))
            """
        ),
        Valid(
            """
            async def process_pending():
                async with get_background_session() as session:
                    async with session.begin_nested():
                        session.add(Job())
            """
        ),
        Valid(
            """
            @router.post("/jobs")
            async def create_job(session: AsyncSession = Depends(get_db_session)):
                async with session.begin():
                    session.add(Job())
            """
        ),
        Valid(
            """
            async def two_sessions(other: AsyncSession):
                async with get_background_session() as session:
                    async with other.begin():
                        other.add(Job())
            """
        ),
        Valid(
            """
            async def process():
                async with get_background_session() as session:
                    session.add(Job())

                async def later(session):
                    await session.begin()
            """
        ),
        Valid(
            """
            async def sequential(session: AsyncSession):
                async with session.begin():
                    session.add(Job())
                async with session.begin():
                    session.add(Job())
            """
        ),
        Valid(
            """
            async def copy_reports():
                async with get_background_session() as session:
                    reports = await load_reports(session)
                    async with reporting_session() as session:  # rebound: a session not yet begun
                        async with session.begin():
                            session.add_all(reports)
            """
        ),
        Valid(
            """
            async def refresh():
                async with get_background_session() as session:
                    await mark_started(session)
                    session = replica_session()
                    async with session.begin():
                        await session.execute(select(Job))
            """
        ),
        Valid(
            """
            async def migrate_shards():
                async with get_background_session() as session:
                    for session in open_shard_sessions():
                        async with session.begin():
                            await session.execute(select(Shard))
            """
        ),
        Valid(
            """
            @router.post("/jobs")
            async def create(session: AsyncSession = Depends(get_db_session)):
                async with session.begin():
                    if (session := await reporting_session()) is not None:
                        async with session.begin():  # a different session: its own transaction
                            session.add(Report())
            """
        ),
    )
    INVALID = (
        Invalid(
            """
            async def process_pending():
                async with get_background_session() as fetch_session:
                    async with fetch_session.begin():
                        rows = await fetch_session.execute(select(Job))
                        for row in rows:
                            row.status = "done"
            """,
            lines=3,
            columns=9,
            fixed="""
            async def process_pending():
                async with get_background_session() as fetch_session:
                    rows = await fetch_session.execute(select(Job))
                    for row in rows:
                        row.status = "done"
            """,
        ),
        Invalid(
            """
            from app.db import get_background_session as gbs

            async def run():
                async with gbs() as s:
                    await s.begin()
                    s.add(Job())
            """,
            lines=5,
        ),
        Invalid(
            """
            from app import db

            def run_sync():
                with db.get_background_session() as s:
                    with s.begin():
                        s.add(Job())
                        # last comment of the block

                    # after the block
                    s.flush()
            """,
            lines=5,
            fixed="""
            from app import db

            def run_sync():
                with db.get_background_session() as s:
                    s.add(Job())
                    # last comment of the block

                    # after the block
                    s.flush()
            """,
        ),
        Invalid(
            """
            @router.post("/jobs")
            async def create_job(session: AsyncSession = Depends(get_db_session)):
                async with session.begin():
                    async with session.begin():
                        session.add(Job())
            """,
            lines=4,
            fixed="""
            @router.post("/jobs")
            async def create_job(session: AsyncSession = Depends(get_db_session)):
                async with session.begin():
                    session.add(Job())
            """,
        ),
        Invalid(
            """
            async def process():
                async with get_job_session() as job_session:
                    async with job_session.begin() as tx:
                        job_session.add(Job())
            """,
            lines=3,
            config={"session_factories": ["get_job_session"]},
        ),
        Invalid(
            """
            async def refresh():
                async with get_background_session() as session:
                    async with session.begin():  # still the block's session: rebound later
                        await session.execute(select(Job))
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
                    async with session.begin():  # the block's session when use_replica is false
                        await session.execute(select(Job))
            """,
            lines=5,
        ),
    )

    def visit_Call(self, node: ast.Call) -> None:
        target = receiver_call(node)
        if target is None or target[1] != BEGIN:
            return
        name = target[0]
        use = receiver_of(node)
        assert use is not None
        why: str | None = None
        if self.ctx.owned_block(name, use) is not None:
            why = "its session-factory block has already begun"
        elif self.ctx.begin_block_of(use, besides=node) is not None:
            why = f"an enclosing `with {name}.begin():` has already begun"
        if why is None:
            return
        reported = self.ctx.statement_of_call(node)
        fix = _unwrap_begin_block if isinstance(reported, ast.With | ast.AsyncWith) else None
        self.report(reported, fix=fix, name=name, why=why)


def _unwrap_begin_block(data: FixInput) -> Fix | None:
    """Remove the ``with X.begin():`` line and dedent its body, when that is safe. The
    statement's own lines are parsed with libcst, which keeps comments and formatting."""
    node = data.node
    if not isinstance(node, ast.With | ast.AsyncWith) or len(node.items) != 1:
        return None
    if node.items[0].optional_vars is not None:
        return None
    start, end = data.span.line, data.span.end_line
    lines = data.lines
    if end <= start or end > len(lines):
        return None
    header = lines[start - 1]
    outer = header[: data.span.column - 1]
    if outer.strip() or not _WITH_HEADER.match(header):
        return None
    import libcst as cst  # only a file with a fixable finding pays for libcst (~0.14 s)

    module = _parse_statement(lines[start - 1 : end], outer)
    if module is None or not module.body or not isinstance(module.body[0], cst.With):
        return None
    body = module.body[0].body
    if not isinstance(body, cst.IndentedBlock) or body.header.comment is not None:
        return None
    body_code = module.code_for_node(body)
    if '"""' in body_code or "'''" in body_code or "\\\n" in body_code or "\\\r" in body_code:
        return None  # dedenting could change the contents of a multi-line string
    indent = outer + (body.indent if body.indent is not None else module.default_indent)
    # Comment lines right after the body, at its indentation, belong to it.
    follow = end
    while follow < len(lines) and lines[follow].startswith(indent):
        if lines[follow].strip().startswith("#"):
            end = follow + 1
        elif lines[follow].strip():
            break
        follow += 1
    replacement: list[str] = []
    for line in lines[start:end]:
        if not line.strip():
            replacement.append(line.lstrip(" \t"))
        elif line.startswith(indent):
            replacement.append(outer + line[len(indent) :])
        else:
            return None
    return Fix(start_line=start, end_line=end, replacement="".join(replacement))


def _parse_statement(lines: Sequence[str], outer: str) -> cst.Module | None:
    """The libcst tree of one statement's lines, with their common indentation removed."""
    if any(line.strip() and not line.startswith(outer) for line in lines):
        return None
    import libcst as cst

    snippet = "".join(line[len(outer) :] if line.strip() else "\n" for line in lines)
    try:
        return cst.parse_module(snippet)
    except Exception:  # not a statement on its own (e.g. a line continued from before)
        return None
