"""Inline suppression comments: ``# txaudit: ignore[TX004,TX006] -- reason``.

Placement: a comment that follows code on its line covers findings that start on that
line; a comment alone on its line covers findings that start on the next line. (A trailing
comment does not reach the next line, so it cannot silently hide a finding it was not
written for.) A multi-line finding is covered from its first line.

An optional expiry, ``# txaudit: ignore[TX004] until=2027-03-31 -- reason``: from the day
after, the comment no longer suppresses and TXA03 says so (a date that does not parse
suppresses nothing either, and TXA03 names it). With ``suppressions: {require_reason: true}``
a comment without ``-- reason`` suppresses nothing and is reported as TXA04.

A bare ``# txaudit: ignore`` (or ``ignore[]``) names nothing, suppresses nothing and is
reported as TXA00; suppressing every rule on a line at once would hide errors that
nobody looked at.
"""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass
from datetime import date

SUPPRESSION = re.compile(
    r"""\#\s*txaudit\s*:\s*ignore\b
        (?:\[(?P<ids>[^\]]*)\])?
        (?:\s+until\s*=\s*(?P<until>[^\s-][^\s]*))?
        (?:\s*--\s*(?P<reason>.*\S))?""",
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Comment:
    """A parsed suppression comment."""

    line: int
    column: int  # 1-based
    rule_ids: tuple[str, ...]
    reason: str | None
    own_line: bool
    text: str
    #: The `until=` text as written (None without one); see `expiry`.
    until: str | None = None

    @property
    def expiry(self) -> date | None:
        """The `until=` date, or None when there is none or it is not a YYYY-MM-DD date."""
        if self.until is None:
            return None
        try:
            return date.fromisoformat(self.until) if len(self.until) == 10 else None
        except ValueError:
            return None

    def covers(self, line: int) -> bool:
        return line == self.line or (self.own_line and line == self.line + 1)


def _parse(comment: str, line: int, column: int, own_line: bool) -> Comment | None:
    match = SUPPRESSION.search(comment)
    if match is None:
        return None
    ids_text = match.group("ids")
    ids: tuple[str, ...] = ()
    if ids_text:
        ids = tuple(dict.fromkeys(p.strip().upper() for p in ids_text.split(",") if p.strip()))
    reason = match.group("reason")
    return Comment(
        line=line,
        column=column + match.start() + 1,
        rule_ids=ids,
        reason=reason,
        own_line=own_line,
        text=match.group(0).strip(),
        until=match.group("until"),
    )


def find_suppressions(text: str) -> list[Comment]:
    """Every suppression comment of a file (which must have parsed)."""
    if "txaudit" not in text:
        return []
    found: list[Comment] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.COMMENT and "txaudit" in tok.string:
                row, col = tok.start
                own_line = tok.line[:col].strip() == ""
                parsed = _parse(tok.string, row, col, own_line)
                if parsed is not None:
                    found.append(parsed)
        return found
    except (tokenize.TokenError, SyntaxError, ValueError):
        pass
    # The tokenizer rejects what the parser accepted (rare): fall back to a line scan.
    found = []
    for row, line in enumerate(text.splitlines(), start=1):
        index = line.find("#")
        if index >= 0 and "txaudit" in line[index:]:
            parsed = _parse(line[index:], row, index, line[:index].strip() == "")
            if parsed is not None:
                found.append(parsed)
    return found
