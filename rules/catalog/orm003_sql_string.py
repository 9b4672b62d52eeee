"""ORM003 sql-string."""

from __future__ import annotations

import ast

from rules.engine.config import Config
from rules.engine.context import call_arguments
from rules.engine.model import Severity
from rules.engine.rule import Invalid, Rule, Valid
from rules.engine.sql import (
    TRIGGER_WORDS,
    is_execute_call,
    is_string_literal,
    is_stringish,
    looks_like_sql,
    raw_has_keyword,
    statement_argument,
    string_value,
)


class SqlString(Rule):
    """
    ## What it does
    Flags a string literal (outside docstrings) that reads as a SQL statement: `SELECT ...
    FROM`, `INSERT INTO ... VALUES|SELECT`, `UPDATE ... SET`, `DELETE FROM`,
    `CREATE|ALTER|DROP TABLE`, `SET <setting> = ...`. It is built for precision: prose
    such as "Select a domain from the list" or "update the set of results" is not SQL
    (keywords must be written consistently in upper or lower case, and the words between
    them must look like SQL). Strings already reported by ORM001/ORM002 (the argument of
    `text()` or `.execute()`) and engine configuration are not reported again.

    ## Why is this bad?
    A SQL string in application code is raw SQL waiting to be executed somewhere: it
    bypasses the models and is a code smell the ORM guide asks reviewers to look for.

    ## Example
    ```python
    PENDING = "SELECT id FROM jobs WHERE status = 'pending'"
    ```

    ## Use instead
    ```python
    PENDING = select(Job.id).where(Job.status == "pending")
    ```

    ## References
    ORM guide, "Code Smells - Watch For These Warning Signs": strings containing SQL
    keywords.
    """

    ID = "ORM003"
    NAME = "sql-string"
    SEVERITY = Severity.WARNING
    MESSAGE = "This string is a SQL statement; express it with the ORM models instead."

    VALID = (
        Valid(
            """
            logger.info("Select a domain from the list")
            message = "update the set of results"
            hint = "Please delete from the list any item you do not need"
            label = f"Select one from {count} options"
            """
        ),
        Valid(
            '''
            def report():
                """SELECT id FROM jobs is what this used to run; now it uses the ORM."""
                return select(Job.id)
            '''
        ),
        Valid(
            """
            engine = create_async_engine(
                url,
                connect_args={"server_settings": {"options": "SET statement_timeout = 5000"}},
            )
            Session = async_sessionmaker(engine, info={"init": "SET search_path = app"})
            """
        ),
        Valid(
            """
            from sqlalchemy import text
            query = text("SELECT id FROM jobs")
            rows = session.execute("SELECT id FROM jobs WHERE id = " + job_id)
            """
        ),
        Valid(
            """
            choices = ["select", "insert", "update"]
            sql_keywords = "SELECT, FROM, WHERE"
            """
        ),
    )
    INVALID = (
        Invalid(
            """
            PENDING = "SELECT id FROM jobs WHERE status = 'pending'"
            """,
            lines=1,
            columns=11,
        ),
        Invalid(
            '''
            def queries(table):
                a = """
                    SELECT j.id, count(*) AS n
                    FROM jobs j
                    GROUP BY j.id
                """
                b = f"UPDATE {table} SET status = 'done' WHERE id = :id"
                c = "DELETE FROM jobs WHERE id = :id"
                d = "INSERT INTO jobs (id, status) VALUES (:id, :status)"
                e = "SET statement_timeout = 5000"
                f = "DROP TABLE IF EXISTS tmp_jobs"
                g = "select id, name from users where active"
                return a, b, c, d, e, f, g
            ''',
            lines=(2, 7, 8, 9, 10, 11, 12),
        ),
        Invalid(
            """
            from mylib import text

            q = text("SELECT id FROM jobs")
            sql = ("SELECT id "
                   "FROM jobs")
            """,
            lines=(3, 4),
        ),
    )

    @classmethod
    def triggers(cls, config: Config) -> tuple[str, ...]:
        return TRIGGER_WORDS

    def visit_Module(self, node: ast.Module) -> None:
        self._exempt: set[int] = set()
        self._muted: set[int] = set()
        self._in_string = 0

    def visit_Expr(self, node: ast.Expr) -> None:
        if is_string_literal(node.value):
            self._exempt.add(id(node.value))  # docstrings and other bare string statements

    def visit_Call(self, node: ast.Call) -> None:
        # The statement argument of text()/execute() is ORM001's / ORM002's to report.
        if not node.args and not node.keywords:
            return
        muted: ast.AST | None = None
        if self.ctx.is_sql_text_call(node):
            muted = call_arguments(node)[0].value
        elif is_execute_call(node):
            statement = statement_argument(node)
            if statement is not None and is_stringish(statement):
                muted = statement
        if muted is not None:
            self._muted.update(id(n) for n in ast.walk(muted) if is_string_literal(n))

    def _visit_string(self, node: ast.AST) -> None:
        self._in_string += 1
        if self._in_string > 1 or id(node) in self._muted or self.ctx.in_engine_config:
            return
        if id(node) in self._exempt or not raw_has_keyword(node, self.ctx.source_of):
            return
        text = string_value(node)
        if text is not None and looks_like_sql(text):
            self.report(node)

    def _leave_string(self, node: ast.AST) -> None:
        self._in_string -= 1

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str | bytes):
            self._visit_string(node)

    def leave_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str | bytes):
            self._leave_string(node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        self._visit_string(node)

    def leave_JoinedStr(self, node: ast.JoinedStr) -> None:
        self._leave_string(node)
