"""TXA00 blanket-ignore."""

from __future__ import annotations

from legacy_rules.engine.model import Severity
from legacy_rules.engine.rule import Invalid, Rule, Valid


class BlanketIgnore(Rule):
    """
    ## What it does
    Flags a suppression comment that names no rule: `# txaudit: ignore` (or
    `# txaudit: ignore[]`). Such a comment suppresses nothing; the finding it was meant for
    is still reported.

    ## Why is this bad?
    A blanket ignore would hide every rule on the line, including errors that nobody has
    looked at, and it says nothing to a reviewer about what is being waved through or why.

    ## Example
    ```python
    async with get_background_session() as failure_session:  # txaudit: ignore
        ...
    ```

    ## Use instead
    ```python
    # txaudit: ignore[TX004] -- isolated session per page on purpose (see ADR-12)
    async with get_background_session() as page_session:
        ...
    ```

    ## References
    txaudit documentation: inline suppressions (`# txaudit: ignore[ID,...] -- reason`).
    """

    ID = "TXA00"
    NAME = "blanket-ignore"
    SEVERITY = Severity.NOTICE
    MESSAGE = "A blanket `# txaudit: ignore` suppresses nothing; name the rules."
    ENGINE_RULE = True

    VALID = (
        Valid(
            """
            from sqlalchemy import text
            q = text("SELECT 1")  # txaudit: ignore[ORM001] -- health check query
            """
        ),
        Valid(
            """
            # This comment mentions txaudit: ignore handling in prose only.
            x = 1
            """
        ),
    )
    INVALID = (
        Invalid(
            """
            from sqlalchemy import text
            q = text("SELECT 1")  # txaudit: ignore
            """,
            lines=2,
            columns=23,
        ),
        Invalid(
            """
            x = 1  # txaudit: ignore[] -- nothing named
            """,
            lines=1,
        ),
    )
