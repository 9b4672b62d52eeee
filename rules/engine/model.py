"""Plain, frozen data shared by the engine, the command line and the app."""

from __future__ import annotations

import enum
from dataclasses import dataclass

#: Every rule ID txaudit knows, in catalogue order (RULES.md). Config validation uses it.
KNOWN_RULE_IDS: tuple[str, ...] = (
    "TX001",
    "TX002",
    "TX003",
    "TX004",
    "TX005",
    "TX006",
    "TX007",
    "ORM001",
    "ORM002",
    "ORM003",
    "TXA00",
    "TXA01",
    "TXA02",
    "TXA03",
    "TXA04",
)


def rule_order(rule_id: str) -> tuple[int, str]:
    """Sort key of rule IDs: catalogue order, unknown IDs last."""
    if rule_id in KNOWN_RULE_IDS:
        return (KNOWN_RULE_IDS.index(rule_id), rule_id)
    return (len(KNOWN_RULE_IDS), rule_id)


class Severity(enum.Enum):
    """How loud a finding is; `OFF` disables a rule."""

    ERROR = "error"
    WARNING = "warning"
    NOTICE = "notice"
    OFF = "off"

    @property
    def rank(self) -> int:
        """Higher is louder: error 3, warning 2, notice 1, off 0."""
        return {"error": 3, "warning": 2, "notice": 1, "off": 0}[self.value]

    def at_least(self, other: Severity) -> bool:
        return self.rank >= other.rank


@dataclass(frozen=True, slots=True)
class Fix:
    """Replace whole lines `start_line..end_line` (1-based, inclusive) with `replacement`.

    `replacement` is the complete new text of those lines, each ending in a newline
    (empty string deletes them). Line-based so that it maps directly onto a GitHub
    ```suggestion block and onto `txaudit check --fix`.
    """

    start_line: int
    end_line: int
    replacement: str


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule violation at one place in one file."""

    rule: str  # "TX001"
    name: str  # "nested-transaction"
    severity: Severity
    path: str  # repo-relative, "/"-separated
    line: int  # 1-based
    column: int  # 1-based
    end_line: int
    end_column: int
    message: str  # one sentence
    fix: Fix | None = None
    #: Qualified name of the enclosing function/class ("Scheduler.run", "<module>").
    scope: str = "<module>"
    #: The flagged code with whitespace normalised; with `scope` it fingerprints the finding
    #: independently of its line number.
    snippet: str = ""


@dataclass(frozen=True, slots=True)
class Suppression:
    """An inline `# txaudit: ignore[...]` comment."""

    line: int
    rule_ids: tuple[str, ...]  # empty for a blanket ignore
    reason: str | None
    used: bool
    #: `until=` as written (None without one).
    until: str | None = None
    #: False when it suppresses nothing: expired, a bad date, or no reason where one is needed.
    active: bool = True


@dataclass(frozen=True, slots=True)
class FileResult:
    """Everything the engine says about one file."""

    path: str
    findings: tuple[Finding, ...] = ()
    suppressions: tuple[Suppression, ...] = ()
    #: A file-level problem that is not a finding (unreadable, too large, skipped). None if none.
    error: str | None = None
    #: True when the file opens a session factory or touches SQL (the `report` command lists these).
    relevant: bool = False
    lines: int = 0
