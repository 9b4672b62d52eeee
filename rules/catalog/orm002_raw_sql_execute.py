"""ORM002 raw-sql-execute."""

from __future__ import annotations

import ast

from rules.engine.context import Scope
from rules.engine.model import Severity
from rules.engine.rule import Invalid, Rule, Valid
from rules.engine.sql import is_execute_call, is_stringish, statement_argument


class RawSqlExecute(Rule):
    """
    ## What it does
    Flags `.execute(...)`, `.exec_driver_sql(...)` and `.executemany(...)` whose statement
    is a string: a literal, an f-string, a concatenation, `%`-formatting or `.format()` of
    a string, or a local name that the same function only ever assigns such strings to.
    Engine configuration (`execution_options(...)` and friends) is exempt.

    ## Why is this bad?
    SQL as a string bypasses the models (column renames, filters, types) and, once values
    are formatted into it, is one step from SQL injection.

    ## Example
    ```python
    async def pending_ids(session: AsyncSession, limit: int):
        query = f"SELECT id FROM jobs WHERE status = 'pending' LIMIT {limit}"
        return await session.execute(query)
    ```

    ## Use instead
    ```python
    async def pending_ids(session: AsyncSession, limit: int):
        stmt = select(Job.id).where(Job.status == "pending").limit(limit)
        return await session.execute(stmt)
    ```

    ## References
    ORM guide, "What This Means": never use `session.execute()` with raw SQL.
    """

    ID = "ORM002"
    NAME = "raw-sql-execute"
    SEVERITY = Severity.ERROR
    MESSAGE = "`.{method}()` runs a SQL string; build the statement with the ORM instead."
    TRIGGERS = ("exec",)

    VALID = (
        Valid(
            """
            async def pending(session: AsyncSession):
                stmt = select(Job).where(Job.status == "pending")
                return await session.execute(stmt)
            """
        ),
        Valid(
            """
            async def maybe(session: AsyncSession, flag: bool):
                query = "SELECT 1" if flag else select(Job)
                return await session.execute(query)
            """
        ),
        Valid(
            """
            async def param(session: AsyncSession, query):
                return await session.execute(query)
            """
        ),
        Valid(
            """
            async def reassigned(session: AsyncSession):
                query = "SELECT 1"
                query = select(Job)
                return await session.execute(query)
            """
        ),
        Valid(
            """
            engine = create_async_engine(
                url,
                async_creator=lambda: connect_with(lambda c: c.execute("SET search_path = app")),
            )
            conn = conn.execution_options(on_connect=lambda c: c.exec_driver_sql("SET x = 1"))
            """
        ),
        Valid(
            """
            from sqlalchemy import text

            async def count(session):
                return await session.execute(text("SELECT count(*) FROM jobs"))
            """
        ),
    )
    INVALID = (
        Invalid(
            """
            async def pending(session: AsyncSession):
                return await session.execute("SELECT id FROM jobs")
            """,
            lines=2,
            columns=18,
        ),
        Invalid(
            """
            async def by_status(session, status, table):
                await session.execute(f"SELECT id FROM jobs WHERE status = '{status}'")
                await session.execute("SELECT id FROM " + table)
                await session.execute("SELECT id FROM %s" % table)
                await session.execute("SELECT id FROM {}".format(table))
            """,
            lines=(2, 3, 4, 5),
        ),
        Invalid(
            """
            async def named(conn, limit):
                query = "SELECT id FROM jobs"
                query += f" LIMIT {limit}"
                await conn.exec_driver_sql(query)
                cursor.executemany(statement="INSERT INTO t VALUES (?)", rows=rows)
            """,
            lines=(4, 5),
        ),
        Invalid(
            """
            QUERY = "SELECT id FROM jobs"
            connection.execute(QUERY)
            """,
            lines=2,
        ),
    )

    def visit_Module(self, node: ast.Module) -> None:
        self._pending: dict[int, list[tuple[ast.Call, str, str]]] = {}

    def visit_Call(self, node: ast.Call) -> None:
        if not is_execute_call(node) or self.ctx.in_engine_config:
            return
        assert isinstance(node.func, ast.Attribute)
        method = node.func.attr
        statement = statement_argument(node)
        if statement is None:
            return
        if is_stringish(statement):
            self.report(node, method=method)
        elif isinstance(statement, ast.Name):
            scope = self.ctx.scope
            self._pending.setdefault(id(scope), []).append((node, statement.id, method))

    def _flush(self, scope: Scope) -> None:
        for call, name, method in self._pending.pop(id(scope), ()):
            values = scope.assigned.get(name)
            if values and all(v is not None and is_stringish(v) for v in values):
                self.report(call, method=method)

    def leave_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._flush(self.ctx.scope)

    def leave_ClassDef(self, node: ast.ClassDef) -> None:
        self._flush(self.ctx.scope)

    def leave_Module(self, node: ast.Module) -> None:
        self._flush(self.ctx.scope)
