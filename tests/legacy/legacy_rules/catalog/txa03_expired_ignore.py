"""TXA03 expired-ignore."""

from __future__ import annotations

from legacy_rules.engine.model import Severity
from legacy_rules.engine.rule import Invalid, Rule, Valid


class ExpiredIgnore(Rule):
    """
    ## What it does
    Flags a `# txaudit: ignore[...] until=YYYY-MM-DD` comment whose date has passed: from
    the day after its `until=` date the comment no longer suppresses, the findings it excused
    are reported again, and this notice says why at the comment. A `until=` that is not a
    `YYYY-MM-DD` date suppresses nothing either and is reported here, not ignored.

    ## Why is this bad?
    A suppression with an end date is a promise ("we fix this after the migration"). When the
    date passes, either the code is fixed or the promise is renewed on purpose; silently
    keeping the suppression would turn a temporary exception into a permanent one.

    ## Example
    ```python
    await session.commit()  # txaudit: ignore[TX002] until=2020-01-31 -- until the CLI migrates
    ```

    ## Use instead
    ```python
    await session.commit()  # txaudit: ignore[TX002] until=2027-03-31 -- until the CLI migrates
    ```
    or fix the code and remove the comment.

    ## References
    txaudit documentation: inline suppressions (`# txaudit: ignore[ID,...] until=DATE -- reason`).
    """

    ID = "TXA03"
    NAME = "expired-ignore"
    SEVERITY = Severity.NOTICE
    MESSAGE = "This suppression expired: it no longer suppresses."
    ENGINE_RULE = True

    VALID = (
        Valid(
            """
            from sqlalchemy import text
            q = text("SELECT 1")  # txaudit: ignore[ORM001] until=2999-12-31 -- health check
            """
        ),
        Valid(
            """
            from sqlalchemy import text
            q = text("SELECT 1")  # txaudit: ignore[ORM001] -- no end date
            """
        ),
    )
    INVALID = (
        Invalid(
            """
            from sqlalchemy import text
            q = text("SELECT 1")  # txaudit: ignore[ORM001] until=2020-01-31 -- health check
            """,
            lines=2,
            message="expired on 2020-01-31 (reason: health check)",
        ),
        Invalid(
            """
            from sqlalchemy import text
            q = text("SELECT 1")  # txaudit: ignore[ORM001] until=2027-31-03 -- health check
            """,
            lines=2,
            message="`until=2027-31-03` is not a date",
        ),
    )
