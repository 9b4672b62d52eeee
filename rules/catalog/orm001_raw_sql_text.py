"""ORM001 raw-sql-text."""

from __future__ import annotations

import ast

from rules.engine.model import Severity
from rules.engine.rule import Invalid, Rule, Valid


class RawSqlText(Rule):
    """
    ## What it does
    Flags calls of SQLAlchemy's `text()`, however it is imported: `from sqlalchemy import
    text`, `from sqlalchemy.sql import text`, `from sqlalchemy.sql.expression import text`,
    `import sqlalchemy as sa; sa.text(...)`, or under an alias (`text as sql`). Names are
    resolved through the file's imports: a local function or another library's `text` is
    not flagged. Engine configuration (`create_engine(...)`, `execution_options(...)` and
    session makers) is exempt.

    ## Why is this bad?
    `text()` is SQL written by hand: it bypasses the models, so renamed columns, soft
    deletes, tenant filters and type conversions defined on the models silently do not
    apply, and the query is invisible to refactoring tools.

    ## Example
    ```python
    from sqlalchemy import text

    rows = await session.execute(text("SELECT id FROM jobs WHERE status = 'pending'"))
    ```

    ## Use instead
    ```python
    from sqlalchemy import select

    rows = await session.execute(select(Job.id).where(Job.status == "pending"))
    ```

    ## References
    ORM guide, "What This Means": never write SQL strings with `text()`.
    """

    ID = "ORM001"
    NAME = "raw-sql-text"
    SEVERITY = Severity.ERROR
    MESSAGE = "SQLAlchemy `text()` builds raw SQL; express the query with the ORM models instead."
    TRIGGERS = ("text",)

    VALID = (
        Valid(
            """
            def text(value):
                return value.strip()

            label = text("  hello ")
            """
        ),
        Valid(
            """
            from rich.text import Text
            from textwrap import dedent as text

            message = text("   indented")
            """
        ),
        Valid(
            """
            from sqlalchemy import text, create_engine

            engine = create_engine(url, connect_args={"options": text("x")})
            """
        ),
        Valid(
            """
            from sqlalchemy import text

            def render(text):
                return text("shadowed by the parameter")
            """
        ),
        Valid(
            """
            from sqlalchemy import select

            rows = await session.execute(select(Job).where(Job.status == "pending"))
            """
        ),
    )
    INVALID = (
        Invalid(
            """
            from sqlalchemy import text

            async def pending(session):
                return await session.execute(text("SELECT id FROM jobs"))
            """,
            lines=4,
            columns=34,
        ),
        Invalid(
            """
            from sqlalchemy import text as sql
            from sqlalchemy.sql import text as sql_text
            from sqlalchemy.sql.expression import text

            a = sql("SELECT 1")
            b = sql_text("SELECT 2")
            c = text("SELECT 3")
            """,
            lines=(5, 6, 7),
        ),
        Invalid(
            """
            import sqlalchemy as sa
            import sqlalchemy

            q1 = sa.text("SELECT 1")
            q2 = sqlalchemy.sql.text("SELECT 2")
            """,
            lines=(4, 5),
        ),
        Invalid(
            """
            from sqlalchemy import text

            class Repo:
                def text(self):
                    return "method named text"

                def query(self):
                    return text("SELECT 1")
            """,
            lines=8,
        ),
    )

    def visit_Call(self, node: ast.Call) -> None:
        if not self.ctx.in_engine_config and self.ctx.is_sql_text_call(node):
            self.report(node)
