"""The Markdown audit report of `txaudit report`: the document a team otherwise writes by hand."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

from bot.cli.output import by_rule, finding_key, severity_breakdown
from bot.review.markdown import cell
from rules.engine.config import Config
from rules.engine.guides import guide_heading
from rules.engine.model import FileResult, Finding, Severity, rule_order

_ICONS = {Severity.ERROR: "❌", Severity.WARNING: "⚠️", Severity.NOTICE: "ℹ️"}  # noqa: RUF001


def _lines(findings: Sequence[Finding]) -> str:
    numbers = sorted({f.line for f in findings})
    return ", ".join(str(n) for n in numbers)


def _lines_label(findings: Sequence[Finding]) -> str:
    many = len({f.line for f in findings}) > 1
    return f"line{'s' if many else ''} {_lines(findings)}"


def _heading(rule_id: str, config: Config) -> str | None:
    found = guide_heading(rule_id, config)
    return None if found is None else found[1]


def _guide_cell(rule_id: str, config: Config, guide: Callable[[str], str | None]) -> str:
    link = guide(rule_id)
    if link is None:
        return f"`txaudit explain {rule_id}`"
    heading = _heading(rule_id, config) or rule_id
    return f"[{cell(heading)}]({link.replace(' ', '%20')})"


def _status(findings: Sequence[Finding]) -> str:
    if not findings:
        return "✅ clean"
    loudest = max(findings, key=lambda f: f.severity.rank).severity
    count = f"{len(findings)} finding" + ("" if len(findings) == 1 else "s")
    return f"{_ICONS.get(loudest, '')} {count} ({severity_breakdown(findings)})"


def build_report(
    results: Sequence[FileResult],
    findings: Sequence[Finding],
    config: Config,
    *,
    target: str,
    guide: Callable[[str], str | None],
    names: dict[str, str] | None = None,
) -> str:
    """The report for `results` (every audited file) showing `findings` (already filtered).

    Lists every file that opens a session factory or touches SQL (`FileResult.relevant`) or
    has findings or could not be audited; `guide` gives a rule's guide link or None.
    """
    names = dict(names or {})
    for finding in findings:
        names.setdefault(finding.rule, finding.name)
    per_file: dict[str, list[Finding]] = defaultdict(list)
    for finding in sorted(findings, key=finding_key):
        per_file[finding.path].append(finding)
    listed = [r for r in results if r.relevant or per_file.get(r.path) or r.error is not None]
    needs_work = [r for r in listed if per_file.get(r.path)]
    errors = [r for r in results if r.error is not None]
    totals = by_rule(findings)

    out: list[str] = ["# txaudit audit report", ""]
    out.append(
        f"Audited **{len(results)}** Python files in `{target}` (configuration: {config.source}). "
        f"**{len(listed)}** open a session factory or touch SQL; "
        f"**{len(needs_work)}** need work."
    )
    out.append("")
    if findings:
        out.append(f"**{len(findings)} findings**: {severity_breakdown(findings)}.")
    else:
        out.append("**No findings.** Every audited file follows the guides.")
    out.append("")

    out += ["## Totals by rule", ""]
    if totals:
        out += ["| Rule | Name | Findings | Files | Guide |", "| --- | --- | ---: | ---: | --- |"]
        for rule_id, count in totals.items():
            files = len({f.path for f in findings if f.rule == rule_id})
            out.append(
                f"| {rule_id} | {names.get(rule_id, '')} | {count} | {files} | "
                f"{_guide_cell(rule_id, config, guide)} |"
            )
        out.append(f"| **Total** | | **{len(findings)}** | **{len(needs_work)}** | |")
    else:
        out.append("No rule fired.")
    out.append("")

    out += ["## Files", ""]
    if not listed:
        out += ["No file opens a session factory or touches SQL.", ""]
    for result in listed:
        file_findings = per_file.get(result.path, [])
        status = f"⛔ not audited: {result.error}" if result.error else _status(file_findings)
        out += [f"### `{result.path}`", "", f"Status: {status}", ""]
        if file_findings:
            out += ["| Rule | Severity | Lines | What |", "| --- | --- | --- | --- |"]
            grouped: dict[str, list[Finding]] = defaultdict(list)
            for finding in file_findings:
                grouped[finding.rule].append(finding)
            for rule_id in sorted(grouped, key=rule_order):
                group = grouped[rule_id]
                messages = sorted({f.message for f in group})
                what = cell(messages[0]) + (
                    f" (+{len(messages) - 1} more)" if len(messages) > 1 else ""
                )
                out.append(
                    f"| {rule_id} {group[0].name} | {group[0].severity.value} | "
                    f"{_lines(group)} | {what} |"
                )
            out.append("")
        reasons = [s for s in result.suppressions if s.rule_ids]
        if reasons:
            out.append("Suppressions:")
            for s in reasons:
                reason = f" — {s.reason}" if s.reason else " — *no reason given*"
                until = f" until {s.until}" if s.until else ""
                dead = "" if s.active else " (suppresses nothing: see TXA03/TXA04)"
                out.append(f"- line {s.line}: `{', '.join(s.rule_ids)}`{until}{reason}{dead}")
            out.append("")

    if errors:
        out += ["## Files that could not be audited", ""]
        out += [f"- `{r.path}`: {r.error}" for r in errors]
        out.append("")

    out += ["## Checklist", ""]
    if needs_work:
        for result in needs_work:
            grouped_lines: dict[str, list[Finding]] = defaultdict(list)
            for finding in per_file[result.path]:
                grouped_lines[finding.rule].append(finding)
            items = ", ".join(
                f"{rule_id} ({_lines_label(grouped_lines[rule_id])})"
                for rule_id in sorted(grouped_lines, key=rule_order)
            )
            out.append(f"- [ ] `{result.path}`: {items}")
    else:
        out.append("- [x] Nothing left to fix.")
    out.append("")
    out.append("Rule documentation: `txaudit explain <ID>`; list of rules: `txaudit rules`.")
    return "\n".join(out) + "\n"
