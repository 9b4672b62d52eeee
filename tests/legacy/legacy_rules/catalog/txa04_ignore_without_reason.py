"""TXA04 ignore-without-reason."""

from __future__ import annotations

from legacy_rules.engine.model import Severity
from legacy_rules.engine.rule import Invalid, Rule, Valid


class IgnoreWithoutReason(Rule):
    """
    ## What it does
    With `suppressions: {require_reason: true}` in the config, flags a
    `# txaudit: ignore[...]` comment that gives no ` -- reason`. Such a comment then
    suppresses nothing: the findings it names are reported as if it were not there. Without
    the config key a reason stays optional and this rule never fires.

    ## Why is this bad?
    A suppression nobody can explain cannot be audited: a reviewer cannot tell an accepted
    exception from a finding someone wanted to get rid of. Requiring the reason makes every
    exception say, in the code, why it is one.

    ## Example
    ```python
    await session.commit()  # txaudit: ignore[TX002]
    ```

    ## Use instead
    ```python
    await session.commit()  # txaudit: ignore[TX002] -- the CLI entry point owns this session
    ```

    ## References
    txaudit documentation: inline suppressions and the `suppressions.require_reason` key.
    """

    ID = "TXA04"
    NAME = "ignore-without-reason"
    SEVERITY = Severity.NOTICE
    MESSAGE = "This suppression gives no reason, and a reason is required: it suppresses nothing."
    ENGINE_RULE = True

    VALID = (
        Valid(
            """
            from sqlalchemy import text
            q = text("SELECT 1")  # txaudit: ignore[ORM001] -- health check
            """,
            config={"suppressions": {"require_reason": True}},
        ),
        Valid(
            """
            from sqlalchemy import text
            q = text("SELECT 1")  # txaudit: ignore[ORM001]
            """
        ),
    )
    INVALID = (
        Invalid(
            """
            from sqlalchemy import text
            q = text("SELECT 1")  # txaudit: ignore[ORM001]
            """,
            lines=2,
            message="`suppressions.require_reason` is on",
            config={"suppressions": {"require_reason": True}},
        ),
    )
