"""The rule engine: bytes in, findings out.

Public API (used by the CLI and the app; keep these signatures):

    audit_source(source: bytes, path: str, config: Config, *,
                 project: object | None = None) -> FileResult
        Decode (PEP 263 cookie, else UTF-8), parse once with CPython's `ast`, run every
        enabled rule in one pass, apply inline suppressions, return findings sorted by (line,
        column, rule).
        Never raises for bad input: an unparsable / undecodable file gives one TXA02 finding.
        `path` is repo-relative with "/" and is used for per-path overrides and messages.
        `project` is the TX007 module index (None: TX007 cannot follow calls out of this file).

    audit_sources(items: Sequence[tuple[bytes, str]], config: Config, *,
                  project: object | None = None) -> list[FileResult]
        `audit_source` of several files of one project; results in the order of `items`.
        With a module index, a module is audited before the files that import it, so that
        TX007 reads the summary its audit built instead of parsing it again.

    apply_fixes(source: str, findings: Iterable[Finding]) -> str
        Apply the findings' fixes (whole-line replacements) bottom-up; overlapping fixes
        after the first are skipped. `txaudit check --fix` calls it.

How one file is audited:

1. Decode. NUL bytes, an unknown coding cookie or undecodable bytes give TXA02.
2. Parse once with CPython's own parser (`ast.parse`, C). A syntax error gives TXA02; code
   nested too deeply for CPython ("(" * 5000, 1+1+...+1 x 100000) gives TXA02 too, with no
   crash. Syntax of a newer Python than the running one is a syntax error here: its TXA02
   names the construct and the Python version it needs (README, "Newer syntax").
3. Trigger words. Each rule declares words of which one must appear in a file for the rule
   to be able to fire (``begin`` for TX001, the session-factory names for TX004...). When
   none of the words of any rule appears, the traversal is skipped. This is exact: the
   rules match names and string contents literally (identifiers are compared as written,
   SQL keywords are looked for in the literal's source text), so a rule cannot fire on a
   file that does not contain its words. The file is still parsed (TXA02 must be able to
   fire) unless TXA02 is off for the path, and its suppression comments are still checked
   (TXA00/TXA01). A rule that is off for the path does not run, and its words do not count.
4. One traversal: the shared vocabulary (`rules.engine.context.FileContext`) and every rule's
   ``visit_*``/``leave_*`` hooks are dispatched from one iterative walk over the `ast` tree
   (`rules.engine.syntax.dispatch`). With a module index, TX007's module summary is built in
   the same walk and kept in the index for the files audited after this one.
5. Positions come from `ast`'s offsets, converted from UTF-8 bytes to characters
   (`rules.engine.positions`). A fix that rewrites code (TX001's) parses just the lines of
   its statement with libcst, which keeps comments and formatting.
6. Suppressions (`rules.engine.suppressions`), severities, sorting.
"""

from __future__ import annotations

import ast
import gc
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from rules.engine.callgraph import ProjectIndex, SummaryBuilder
from rules.engine.config import Config
from rules.engine.context import FileContext
from rules.engine.model import FileResult, Finding, Fix, Severity, Suppression
from rules.engine.parsing import Problem, count_lines, decode, deep, parse, split_lines
from rules.engine.positions import resolve_spans
from rules.engine.rule import FixInput, Report, Rule, Span
from rules.engine.suppressions import Comment, find_suppressions
from rules.engine.syntax import dispatch

__all__ = ["apply_fixes", "audit_source", "audit_sources", "audit_text", "dispatch"]

log = logging.getLogger(__name__)

PARSE_ERROR = "TXA02"
BLANKET_IGNORE = "TXA00"
UNUSED_IGNORE = "TXA01"
EXPIRED_IGNORE = "TXA03"
IGNORE_WITHOUT_REASON = "TXA04"

#: Snippets longer than this many characters are cut.
_SNIPPET_MAX = 200


# --- public API ---------------------------------------------------------------------------


def audit_source(
    source: bytes, path: str, config: Config, *, project: object | None = None
) -> FileResult:
    """Audit one file's bytes (see the module docstring)."""
    if isinstance(source, str):  # tolerate text; the contract is bytes
        source = source.encode("utf-8")
    # The parse allocates ~25 objects per source line and none of them form cycles; the
    # cyclic GC passes it triggers cost ~20% of the audit, so pause the collector.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _audit(source, path, config, project)
    except (RecursionError, MemoryError) as exc:
        return _parse_error_result(
            path, config, 1, 1, f"file too complex to analyse ({type(exc).__name__})", 0
        )
    except Exception as exc:  # a bug in a rule must not take the whole audit down
        log.exception("txaudit internal error on %s", path)
        return FileResult(path=path, error=f"txaudit internal error: {type(exc).__name__}: {exc}")
    finally:
        if gc_was_enabled:
            gc.enable()


def audit_sources(
    items: Sequence[tuple[bytes, str]], config: Config, *, project: object | None = None
) -> list[FileResult]:
    """`audit_source` of every (bytes, path) of one project, callees first (see the module
    docstring); the results are in the order of `items`."""
    order: Iterable[int] = range(len(items))
    paths = [path for _, path in items]
    if isinstance(project, ProjectIndex) and follows_calls(config, paths):
        imports = [project.imports_of(path, source) for source, path in items]
        order = project.callee_first(paths, imports)
    results: dict[int, FileResult] = {}
    for i in order:
        source, path = items[i]
        results[i] = audit_source(source, path, config, project=project)
    return [results[i] for i in range(len(items))]


def audit_text(
    text: str, path: str, config: Config, *, project: object | None = None
) -> FileResult:
    """`audit_source` for text that is already decoded."""
    return audit_source(text.encode("utf-8"), path, config, project=project)


def apply_fixes(source: str, findings: Iterable[Finding]) -> str:
    """Apply the fixes of `findings` to `source` (bottom-up, overlapping ones skipped)."""
    fixes = sorted(
        {f.fix for f in findings if f.fix is not None},
        key=lambda fx: (fx.start_line, fx.end_line),
    )
    if not fixes:
        return source
    chosen: list[Fix] = []
    last_end = 0
    for fix in fixes:
        if fix.start_line > last_end:
            chosen.append(fix)
            last_end = fix.end_line
    lines = split_lines(source)
    for fix in reversed(chosen):
        if fix.start_line < 1 or fix.end_line > len(lines) or fix.end_line < fix.start_line - 1:
            continue
        lines[fix.start_line - 1 : fix.end_line] = [fix.replacement] if fix.replacement else []
    return "".join(lines)


# --- rules for a file -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Selected:
    cls: type[Rule]
    severity: Severity


def follows_calls(config: Config, paths: Iterable[str]) -> bool:
    """Whether a rule that reads other modules' summaries (TX007) is on for one of `paths`.

    If not, a caller need not build, read or order by a module index at all.
    """
    from rules.engine.registry import rule_classes

    readers = [cls for cls in rule_classes() if cls.READS_MODULE_SUMMARY]
    return any(
        config.severity_for(cls.ID, cls.SEVERITY, path) is not Severity.OFF
        for path in paths
        for cls in readers
    )


def _select(config: Config, path: str) -> list[_Selected]:
    from rules.engine.registry import rule_classes

    return [
        _Selected(cls, config.severity_for(cls.ID, cls.SEVERITY, path)) for cls in rule_classes()
    ]


_TRIGGER_CACHE: dict[tuple[str, ...], re.Pattern[str] | None] = {}


def _trigger_pattern(config: Config, classes: Sequence[type[Rule]]) -> re.Pattern[str] | None:
    """One regex of every rule's trigger words; None when some rule has no triggers."""
    words: list[str] = []
    for cls in classes:
        if cls.ENGINE_RULE:
            continue
        rule_words = cls.triggers(config)
        if not rule_words:
            return None
        words.extend(rule_words)
    key = tuple(sorted(set(words)))
    if key not in _TRIGGER_CACHE:
        _TRIGGER_CACHE[key] = re.compile("|".join(re.escape(w) for w in key), re.IGNORECASE)
    return _TRIGGER_CACHE[key]


# --- the audit ----------------------------------------------------------------------------


def _audit(source: bytes, path: str, config: Config, project: object | None) -> FileResult:
    selected = _select(config, path)
    severities = {s.cls.ID: s.severity for s in selected}
    parse_severity = severities.get(PARSE_ERROR, Severity.NOTICE)

    decoded = decode(source)
    if isinstance(decoded, Problem):
        return _parse_error_result(
            path, config, decoded.line, decoded.column, decoded.message, decoded.lines
        )
    text = decoded
    line_count = count_lines(text)

    # A rule that is off for this path does not run: it costs nothing and cannot fail.
    active = [s for s in selected if not s.cls.ENGINE_RULE and s.severity is not Severity.OFF]
    pattern = _trigger_pattern(config, [s.cls for s in active])
    triggered = bool(active) and (pattern is None or pattern.search(text) is not None)
    has_comments = "txaudit" in text
    if not triggered and not has_comments and parse_severity is Severity.OFF:
        return FileResult(path=path, lines=line_count)

    parsed = parse(text)
    if isinstance(parsed, Problem):
        lines = split_lines(text)
        bad_line = lines[parsed.line - 1] if 0 < parsed.line <= len(lines) else ""
        return _parse_error_result(
            path, config, parsed.line, parsed.column, parsed.message, line_count, bad_line
        )
    module = parsed

    findings: list[Finding] = []
    relevant = False
    if triggered:
        try:
            reports, relevant = _run_rules(module, source, text, active, config, path, project)
            findings = _to_findings(text, reports, severities, path)
        except RecursionError:
            reports, relevant = deep(
                lambda: _run_rules(module, source, text, active, config, path, project)
            )
            findings = deep(lambda: _to_findings(text, reports, severities, path))
    elif (index := _summary_index(project, path, active)) is not None:
        # No rule can fire here, but TX007 may follow a call into this module later.
        try:
            index.add_audited(path, source, SummaryBuilder(module, index.vocab, text).run())
        except RecursionError:
            pass  # left to the index, which records such a module as unanalysable

    comments = find_suppressions(text) if has_comments else []
    findings, suppressions = _apply_suppressions(findings, comments, severities, path, config)
    findings.sort(key=lambda f: (f.line, f.column, f.rule))
    return FileResult(
        path=path,
        findings=tuple(findings),
        suppressions=tuple(suppressions),
        relevant=relevant,
        lines=line_count,
    )


def _parse_error_result(
    path: str,
    config: Config,
    line: int,
    column: int,
    message: str,
    lines: int,
    source_line: str = "",
) -> FileResult:
    from rules.engine.registry import get_rule

    info = get_rule(PARSE_ERROR)
    default = info.severity if info is not None else Severity.NOTICE
    severity = config.severity_for(PARSE_ERROR, default, path)
    if severity is Severity.OFF:
        return FileResult(path=path, lines=lines)
    finding = Finding(
        rule=PARSE_ERROR,
        name=info.name if info is not None else "parse-error",
        severity=severity,
        path=path,
        line=line,
        column=column,
        end_line=line,
        end_column=column,
        message=f"This file could not be analysed: {message.rstrip('.')}"
        + ("" if message.endswith(("?", "!")) else "."),
        scope="<module>",
        snippet=" ".join(source_line.split())[:_SNIPPET_MAX],
    )
    return FileResult(path=path, findings=(finding,), lines=lines)


# --- the traversal --------------------------------------------------------------------------


def _run_rules(
    module: ast.Module,
    source: bytes,
    text: str,
    active: Sequence[_Selected],
    config: Config,
    path: str,
    project: object | None,
) -> tuple[list[Report], bool]:
    ctx = FileContext(config, path, module, project, text)
    reports: list[Report] = []
    rules = [s.cls(ctx, reports) for s in active]
    index = _summary_index(project, path, active)
    if index is None:
        dispatch(module, [ctx, *rules])
    else:
        # The module summary is built in the same walk, and kept for the calls of the files
        # audited after this one, which then need not parse this module again.
        builder = SummaryBuilder(module, index.vocab, text, bindings=ctx.bindings)
        ctx.summary_builder = builder
        dispatch(module, [ctx, builder, *rules])
        index.add_audited(path, source, builder.finish())
    relevant = ctx.relevant or any(r.rule.ID.startswith("ORM") for r in reports)
    return reports, relevant


def _summary_index(
    project: object | None, path: str, active: Sequence[_Selected]
) -> ProjectIndex | None:
    """The module index that is to keep this file's TX007 summary: one is passed, it does
    not have the summary yet (the app gives it every audited file's) and a rule that reads
    summaries is on."""
    if not isinstance(project, ProjectIndex) or project.has(project.normalize(path)):
        return None
    return project if any(s.cls.READS_MODULE_SUMMARY for s in active) else None


def _to_findings(
    text: str,
    reports: Sequence[Report],
    severities: dict[str, Severity],
    path: str,
) -> list[Finding]:
    if not reports:  # (only rules that are on for the path run, so every report is kept)
        return []
    lines = split_lines(text)
    spans = resolve_spans((r.node for r in reports), lines)
    findings: list[Finding] = []
    for report in reports:
        span = spans.get(id(report.node)) or Span(1, 1, 1, 1)
        fix: Fix | None = None
        if report.fix is not None:
            fix = report.fix(FixInput(node=report.node, span=span, lines=lines))
        findings.append(
            Finding(
                rule=report.rule.ID,
                name=report.rule.NAME,
                severity=severities.get(report.rule.ID, report.rule.SEVERITY),
                path=path,
                line=span.line,
                column=span.column,
                end_line=span.end_line,
                end_column=span.end_column,
                message=report.message,
                fix=fix,
                scope=report.scope,
                snippet=_snippet(lines, span),
            )
        )
    return findings


def _snippet(lines: Sequence[str], span: Span) -> str:
    """The source of `span` with whitespace collapsed, at most ~200 characters."""
    if span.line < 1 or span.line > len(lines):
        return ""
    last = min(span.end_line, len(lines), span.line + 20)
    chunk = list(lines[span.line - 1 : last])
    if last == span.end_line:
        chunk[-1] = chunk[-1][: max(span.end_column - 1, 0)]
    chunk[0] = chunk[0][span.column - 1 :]
    collapsed = " ".join("".join(chunk).split())
    if len(collapsed) > _SNIPPET_MAX:
        collapsed = collapsed[: _SNIPPET_MAX - 1].rstrip() + "\u2026"
    return collapsed


# --- suppressions --------------------------------------------------------------------------


def _inactive_reason(comment: Comment, config: Config, today: date) -> tuple[str, str] | None:
    """(rule, message) when a suppression suppresses nothing: expired, a date that does not
    parse (TXA03), or no reason where the config requires one (TXA04); None when it works."""
    names = ", ".join(comment.rule_ids)
    if comment.until is not None:
        expiry = comment.expiry
        if expiry is None:
            return EXPIRED_IGNORE, (
                f"`until={comment.until}` is not a date (YYYY-MM-DD): this suppression "
                f"suppresses nothing."
            )
        if expiry < today:
            why = f" (reason: {comment.reason})" if comment.reason else ""
            return EXPIRED_IGNORE, (
                f"This suppression expired on {expiry.isoformat()}{why}: {names} is reported "
                "again; fix the code or renew the date."
            )
    if config.require_reason and not comment.reason and comment.rule_ids:
        return IGNORE_WITHOUT_REASON, (
            "This suppression gives no reason (`-- why`), and `suppressions.require_reason` is "
            f"on: it suppresses nothing, so {names} is reported."
        )
    return None


def _apply_suppressions(
    findings: list[Finding],
    comments: Sequence[Comment],
    severities: dict[str, Severity],
    path: str,
    config: Config,
) -> tuple[list[Finding], list[Suppression]]:
    from rules.engine.model import KNOWN_RULE_IDS

    if not comments:
        return findings, []
    today = config.today or date.today()
    inactive = {i: _inactive_reason(c, config, today) for i, c in enumerate(comments)}
    used: dict[int, set[str]] = {i: set() for i in range(len(comments))}
    kept: list[Finding] = []
    for finding in findings:
        suppressed = False
        for index, comment in enumerate(comments):
            if inactive[index] is not None:
                continue
            if finding.rule in comment.rule_ids and comment.covers(finding.line):
                used[index].add(finding.rule)
                suppressed = True
        if not suppressed:
            kept.append(finding)

    suppressions: list[Suppression] = []
    extra: list[Finding] = []
    for index, comment in enumerate(comments):
        suppressions.append(
            Suppression(
                line=comment.line,
                rule_ids=comment.rule_ids,
                reason=comment.reason,
                used=bool(used[index]),
                until=comment.until,
                active=inactive[index] is None,
            )
        )
        problem = inactive[index]
        if problem is not None:
            extra.extend(_engine_finding(problem[0], severities, path, comment, problem[1]))
            continue
        if not comment.rule_ids:
            extra.extend(
                _engine_finding(
                    BLANKET_IGNORE,
                    severities,
                    path,
                    comment,
                    "A blanket `# txaudit: ignore` suppresses nothing; name the rules, "
                    "e.g. `# txaudit: ignore[TX004] -- reason`.",
                )
            )
            continue
        unknown = [r for r in comment.rule_ids if r not in KNOWN_RULE_IDS]
        # Only rules that ran (enabled for this path) can be judged unused.
        unused = [
            r
            for r in comment.rule_ids
            if r in severities
            and not r.startswith("TXA")
            and severities[r] is not Severity.OFF
            and r not in used[index]
        ]
        problems: list[str] = []
        if unknown:
            names = ", ".join(unknown)
            problems.append(f"unknown rule ID{'s' if len(unknown) > 1 else ''} {names}")
        if unused:
            names = ", ".join(unused)
            problems.append(f"{names} reported nothing here")
        if problems:
            message = "Unused suppression: " + "; ".join(problems) + "."
            extra.extend(_engine_finding(UNUSED_IGNORE, severities, path, comment, message))
    return kept + extra, suppressions


def _engine_finding(
    rule_id: str, severities: dict[str, Severity], path: str, comment: Comment, message: str
) -> list[Finding]:
    from rules.engine.registry import get_rule

    info = get_rule(rule_id)
    severity = severities.get(rule_id, Severity.NOTICE)
    if severity is Severity.OFF:
        return []
    return [
        Finding(
            rule=rule_id,
            name=info.name if info is not None else rule_id.lower(),
            severity=severity,
            path=path,
            line=comment.line,
            column=comment.column,
            end_line=comment.line,
            end_column=comment.column + len(comment.text),
            message=message,
            scope="<module>",
            snippet=comment.text,
        )
    ]
