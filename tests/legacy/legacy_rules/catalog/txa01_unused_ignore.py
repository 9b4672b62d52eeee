"""TXA01 unused-ignore."""

from __future__ import annotations

from legacy_rules.engine.model import Severity
from legacy_rules.engine.rule import Invalid, Rule, Valid


class UnusedIgnore(Rule):
    """
    ## What it does
    Flags a `# txaudit: ignore[...]` comment that suppresses nothing: none of the rules it
    names reported a finding on its line (or, for a comment on its own line, on the next
    line), or it names a rule ID that does not exist. The message names the unknown or
    unused IDs. Rules that are turned off for the file are not judged.

    ## Why is this bad?
    A stale suppression stays behind after the code it excused has changed and then
    silently hides the next real finding on that line; an unknown ID is usually a typo that
    suppresses nothing at all.

    ## Example
    ```python
    rows = await session.execute(select(Job))  # txaudit: ignore[ORM001]
    ```

    ## Use instead
    ```python
    rows = await session.execute(select(Job))
    ```

    ## References
    txaudit documentation: inline suppressions (`# txaudit: ignore[ID,...] -- reason`).
    """

    ID = "TXA01"
    NAME = "unused-ignore"
    SEVERITY = Severity.NOTICE
    MESSAGE = "This suppression suppresses nothing."
    ENGINE_RULE = True

    VALID = (
        Valid(
            """
            from sqlalchemy import text
            q = text("SELECT 1")  # txaudit: ignore[ORM001] -- health check
            """
        ),
        Valid(
            """
            from sqlalchemy import text
            # txaudit: ignore[ORM001] -- health check
            q = text("SELECT 1")
            """
        ),
        Valid(
            """
            x = 1  # txaudit: ignore[TX004] -- TX004 is off for this path
            """,
            config={"rules": {"TX004": "off"}},
        ),
    )
    INVALID = (
        Invalid(
            """
            rows = await session.execute(select(Job))  # txaudit: ignore[ORM001]
            """,
            lines=1,
            message="ORM001",
        ),
        Invalid(
            """
            from sqlalchemy import text
            q = text("SELECT 1")  # txaudit: ignore[ORM001, TX999]
            """,
            lines=2,
            message="TX999",
        ),
    )
