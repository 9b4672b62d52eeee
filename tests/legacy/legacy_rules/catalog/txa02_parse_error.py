"""TXA02 parse-error."""

from __future__ import annotations

from legacy_rules.engine.model import Severity
from legacy_rules.engine.rule import Invalid, Rule, Valid


class ParseError(Rule):
    """
    ## What it does
    Reports a file that txaudit cannot analyse: it does not parse as Python 3, it is not
    valid in its declared encoding (PEP 263 coding cookie, else UTF-8), it contains NUL
    bytes, or it is nested too deeply for the parser. The finding carries the parser's line
    and message. No other rule runs on such a file.

    ## Why is this bad?
    Nothing in the file was checked, so violations in it go unnoticed. Usually the file is
    Python 2, a template, or a syntax error that CI would also catch.

    ## Example
    ```python
    print "processing"
    ```

    ## Use instead
    ```python
    print("processing")
    ```
    Or exclude the file from the audit (`paths.exclude` in the configuration).

    ## References
    txaudit documentation: configuration, `paths.include` / `paths.exclude`.
    """

    ID = "TXA02"
    NAME = "parse-error"
    SEVERITY = Severity.NOTICE
    MESSAGE = "This file could not be analysed: {reason}."
    ENGINE_RULE = True

    VALID = (
        Valid(
            """
            print("processing")
            """
        ),
        Valid(""),
    )
    INVALID = (
        Invalid(
            """
            import os

            print "processing"
            """,
            lines=3,
        ),
        Invalid(
            """
            def broken(:
                pass
            """,
            lines=1,
        ),
    )
