"""The rule engine: bytes in, findings out. CONTRACT STUB - to be implemented.

Public API (used by the CLI and the app; keep these signatures):

    audit_source(source: bytes, path: str, config: Config, *, project: object | None = None) -> FileResult
        Decode (PEP 263 cookie, else UTF-8), parse once with libcst, run every enabled rule
        in one pass, apply inline suppressions, return findings sorted by (line, column, rule).
        Never raises for bad input: an unparsable / undecodable file gives one TXA02 finding.
        `path` is repo-relative with "/" and is used for per-path overrides and messages.
        `project` is the TX007 module index (None: TX007 cannot follow calls out of this file).
"""

from __future__ import annotations

from rules.config import Config
from rules.model import FileResult


def audit_source(
    source: bytes, path: str, config: Config, *, project: object | None = None
) -> FileResult:
    raise NotImplementedError
