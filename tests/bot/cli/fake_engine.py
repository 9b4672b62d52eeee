"""A stand-in engine for formatter and CLI plumbing tests (the real one is tested too).

Flags `.commit()` as TX002 and `text(` as ORM001, line by line; `async with x.begin():`
as TX001 with a fix deleting that line. Enough to exercise every output path.
"""

from __future__ import annotations

import re

from rules.engine.config import Config
from rules.engine.model import FileResult, Finding, Fix, Severity

_PATTERNS = (
    (re.compile(r"\.commit\(\)"), "TX002", "borrowed-session-commit", Severity.ERROR),
    (re.compile(r"\btext\("), "ORM001", "raw-sql-text", Severity.ERROR),
    (re.compile(r"async with \w+\.begin\(\):"), "TX001", "nested-transaction", Severity.ERROR),
    (re.compile(r"SELECT .* FROM"), "ORM003", "sql-string", Severity.WARNING),
)


def fake_audit_source(
    source: bytes, path: str, config: Config, *, project: object | None = None
) -> FileResult:
    try:
        text = source.decode("utf-8")
        if "\0" in text:
            raise ValueError("source code cannot contain null bytes")
        compile(text, path, "exec")
    except (UnicodeDecodeError, SyntaxError, ValueError) as exc:
        finding = Finding("TXA02", "parse-error", Severity.NOTICE, path, 1, 1, 1, 1, str(exc))
        return FileResult(path=path, findings=(finding,))
    findings = []
    for number, line in enumerate(text.splitlines(), start=1):
        for pattern, rule, name, default in _PATTERNS:
            match = pattern.search(line)
            if match is None:
                continue
            severity = config.severity_for(rule, default, path)
            if severity is Severity.OFF:
                continue
            fix = Fix(number, number, "") if rule == "TX001" else None
            findings.append(
                Finding(
                    rule,
                    name,
                    severity,
                    path,
                    number,
                    match.start() + 1,
                    number,
                    match.end() + 1,
                    f"{name} here.",
                    fix=fix,
                    snippet=match.group(0),
                )
            )
    relevant = bool(findings) or "get_background_session" in text
    return FileResult(
        path=path, findings=tuple(findings), relevant=relevant, lines=len(text.splitlines())
    )


def fake_apply_fixes(source: str, findings: object) -> str:
    lines = source.splitlines(keepends=True)
    drop = {f.fix.start_line for f in findings if f.fix is not None}  # type: ignore[attr-defined]
    return "".join(line for i, line in enumerate(lines, start=1) if i not in drop)
