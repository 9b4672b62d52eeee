"""Output formats of `txaudit check` and `txaudit diff`: text, JSON, SARIF, GitHub commands.

Each formatter is a pure function from a `Run` to the text to print.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from bot.review.markdown import plural
from rules.engine.config import Config
from rules.engine.guides import guide_link
from rules.engine.model import FileResult, Finding, Severity, rule_order

FORMATS = ("text", "json", "sarif", "github")
JSON_VERSION = 1
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
TOOL_NAME = "txaudit"

_SARIF_LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTICE: "note"}
_GITHUB_COMMANDS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTICE: "notice"}


@dataclass(frozen=True, slots=True)
class Run:
    """What one `check`/`diff` run found, with paths already relative for display."""

    results: tuple[FileResult, ...]
    #: The findings to show (after --select/--ignore and, for `diff`, the changed-line filter).
    findings: tuple[Finding, ...]
    config: Config
    #: Prefix for repo-relative guide paths (the project root as seen from the output).
    guide_base: str | None = None
    fixed: int = 0
    #: Notes for the text summary (e.g. "diff against main (a1b2c3d)").
    notes: tuple[str, ...] = field(default=())

    @property
    def errors(self) -> tuple[tuple[str, str], ...]:
        return tuple((r.path, r.error) for r in self.results if r.error is not None)

    def guide(self, rule_id: str) -> str | None:
        return guide_link(rule_id, self.config, blob_base=self.guide_base)


def finding_key(finding: Finding) -> tuple[Any, ...]:
    """Deterministic output order: path, position, rule."""
    return (finding.path, finding.line, finding.column, rule_order(finding.rule), finding.message)


def by_rule(findings: Sequence[Finding]) -> dict[str, int]:
    counts = Counter(f.rule for f in findings)
    return {rule: counts[rule] for rule in sorted(counts, key=rule_order)}


def severity_breakdown(findings: Sequence[Finding]) -> str:
    """'2 errors, 1 warning' (louder first; severities that did not occur are left out)."""
    counts = Counter(f.severity for f in findings)
    parts = [
        plural(counts[s], s.value)
        for s in (Severity.ERROR, Severity.WARNING, Severity.NOTICE)
        if counts[s]
    ]
    return ", ".join(parts)


def summary_line(run: Run) -> str:
    """The closing line of text output, ruff style."""
    files = plural(len(run.results), "file")
    if run.findings:
        line = (
            f"Found {plural(len(run.findings), 'finding')} "
            f"({severity_breakdown(run.findings)}) in {files}."
        )
    else:
        line = f"All checks passed! ({files} audited)"
    extras = []
    if run.fixed:
        extras.append(f"Fixed {plural(run.fixed, 'finding')}.")
    fixable = sum(1 for f in run.findings if f.fix is not None)
    if fixable:
        extras.append(f"{fixable} fixable with `txaudit check --fix`.")
    if run.errors:
        extras.append(f"{plural(len(run.errors), 'file')} could not be audited.")
    return " ".join([line, *extras])


# --- text --------------------------------------------------------------------------------


def format_text(run: Run, *, quiet: bool = False) -> str:
    """`path:line:col: TX001 [error] message` per finding, then a summary line."""
    lines = [
        f"{f.path}:{f.line}:{f.column}: {f.rule} [{f.severity.value}] {f.message}"
        for f in run.findings
    ]
    lines += [f"{path}: error: {message}" for path, message in run.errors]
    if not quiet:
        lines += list(run.notes)
        lines.append(summary_line(run))
    return "\n".join(lines) + "\n" if lines else ""


# --- JSON --------------------------------------------------------------------------------


def finding_json(finding: Finding, guide: str | None) -> dict[str, Any]:
    fix = finding.fix
    return {
        "rule": finding.rule,
        "name": finding.name,
        "severity": finding.severity.value,
        "path": finding.path,
        "line": finding.line,
        "column": finding.column,
        "end_line": finding.end_line,
        "end_column": finding.end_column,
        "message": finding.message,
        "guide": guide,
        "fix": None
        if fix is None
        else {
            "start_line": fix.start_line,
            "end_line": fix.end_line,
            "replacement": fix.replacement,
        },
    }


def format_json(run: Run) -> str:
    """The stable "version 1" document of SPEC.md."""
    document = {
        "version": JSON_VERSION,
        "findings": [finding_json(f, run.guide(f.rule)) for f in run.findings],
        "errors": [{"path": path, "message": message} for path, message in run.errors],
        "summary": {
            "files": len(run.results),
            "findings": len(run.findings),
            "by_rule": by_rule(run.findings),
        },
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# --- SARIF -------------------------------------------------------------------------------


def _is_absolute_uri(link: str | None) -> bool:
    return link is not None and bool(urlsplit(link).scheme)


def sarif_rule(info: Any, run: Run) -> dict[str, Any]:
    """A SARIF reportingDescriptor from a `rules.engine.registry.RuleInfo`."""
    link = run.guide(info.id)
    doc = (info.doc or info.summary).strip()
    help_md = doc + (f"\n\nGuide: [{info.id}]({link})" if link else "")
    entry: dict[str, Any] = {
        "id": info.id,
        "name": info.name,
        "shortDescription": {"text": info.summary},
        "fullDescription": {"text": doc},
        "help": {"text": doc, "markdown": help_md},
        "defaultConfiguration": {"level": _SARIF_LEVELS.get(info.severity, "none")},
        "properties": {"tags": ["transaction" if info.id.startswith("TX") else "orm"]},
    }
    if _is_absolute_uri(link):
        entry["helpUri"] = link
    return entry


def format_sarif(run: Run, rules: Sequence[Any], *, version: str, src_root: str) -> str:
    """SARIF 2.1.0 with one rule entry per registered rule, for code scanning upload.

    `src_root` is the absolute `file://` URI of the directory paths are relative to.
    """
    from bot.review.fingerprints import fingerprint_all

    descriptors = [sarif_rule(info, run) for info in rules]
    index = {d["id"]: i for i, d in enumerate(descriptors)}
    for finding in run.findings:  # a rule the registry does not know still gets an entry
        if finding.rule not in index:
            index[finding.rule] = len(descriptors)
            descriptors.append(
                {
                    "id": finding.rule,
                    "name": finding.name,
                    "shortDescription": {"text": finding.name},
                }
            )
    fingerprints = fingerprint_all(run.findings)
    results = []
    for finding, fp in zip(run.findings, fingerprints, strict=True):
        results.append(
            {
                "ruleId": finding.rule,
                "ruleIndex": index[finding.rule],
                "level": _SARIF_LEVELS.get(finding.severity, "none"),
                "message": {"text": finding.message},
                "locations": [_location(finding.path, finding)],
                "partialFingerprints": {"txaudit/v1": fp},
            }
        )
    notifications = [
        {
            "level": "error",
            "message": {"text": message},
            "locations": [_location(path, None)],
        }
        for path, message in run.errors
    ]
    document = {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "version": version,
                        "semanticVersion": version,
                        "rules": descriptors,
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"uri": src_root}},
                "invocations": [
                    {"executionSuccessful": True, "toolExecutionNotifications": notifications}
                ],
                "results": results,
            }
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _location(path: str, finding: Finding | None) -> dict[str, Any]:
    physical: dict[str, Any] = {
        "artifactLocation": {"uri": quote(path, safe="/"), "uriBaseId": "%SRCROOT%"}
    }
    if finding is not None:
        region = {"startLine": finding.line, "startColumn": finding.column}
        if finding.end_line >= finding.line:
            region["endLine"] = finding.end_line
            if finding.end_line > finding.line or finding.end_column > finding.column:
                region["endColumn"] = finding.end_column
        physical["region"] = region
    return {"physicalLocation": physical}


# --- GitHub workflow commands ------------------------------------------------------------


def escape_data(text: str) -> str:
    """Escape a workflow command's message (GitHub's `escapeData`)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a workflow command property value (GitHub's `escapeProperty`)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_command(finding: Finding, guide: str | None, *, path: str | None = None) -> str:
    """One workflow command: `::error file=…,line=…,col=…,endLine=…,endColumn=…,title=…::msg`.

    `path` overrides the finding's path (e.g. relative to `GITHUB_WORKSPACE`).
    """
    f = finding
    props = {
        "file": f.path if path is None else path,
        "line": str(f.line),
        "col": str(f.column),
        "endLine": str(max(f.end_line, f.line)),
        "endColumn": str(f.end_column),
        "title": f"{f.rule} {f.name}",
    }
    rendered = ",".join(f"{k}={escape_property(v)}" for k, v in props.items())
    message = f.message + (f" (guide: {guide})" if guide else f" (txaudit explain {f.rule})")
    return f"::{_GITHUB_COMMANDS.get(f.severity, 'notice')} {rendered}::{escape_data(message)}"


def github_error_command(path: str, message: str) -> str:
    """The workflow command for a file that could not be audited."""
    return f"::error file={escape_property(path)},title=txaudit::{escape_data(message)}"


def format_github(run: Run) -> str:
    """Workflow commands only, one per finding and per unreadable file (no summary line:
    the command line prints that on stderr, so stdout stays machine-readable)."""
    lines = [github_command(f, run.guide(f.rule)) for f in run.findings]
    lines += [github_error_command(path, message) for path, message in run.errors]
    return "".join(line + "\n" for line in lines)


Formatter = Callable[[Run], str]
