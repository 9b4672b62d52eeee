"""The pure core of an app audit: audited files in, check-run output and review comments out.

No I/O here (STYLE.md: "the audit is a pure function"). `build_outcome` turns the engine's
`FileResult`s, each file's patch lines and the config into an `Outcome`: the check run's
conclusion, title, summary, text and annotations, and the inline review comments to post.
The caller does the GitHub calls. Output is deterministic: everything is sorted by
(path, line, rule), so a re-audit of the same commit produces identical output.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from bot.review.fingerprints import finding_order, fingerprint_all, markers
from bot.review.markdown import (
    cell,
    clip_bytes,
    clip_chars,
    code,
    inline,
    plural,
    truncate_markdown,
)
from bot.review.patch import PatchLines, last_line, on_changed_line
from rules.engine.config import Config
from rules.engine.guides import RULE_GUIDE, guide_link
from rules.engine.model import (
    FileResult,
    Finding,
    Severity,
    Suppression,
    rule_order,
)

# --- GitHub limits (GITHUB.md s.4, s.5) ------------------------------------------------

#: `output.summary` / `output.text` maximum length.
OUTPUT_MAX = 65535
#: Annotation `message` / `raw_details` maximum (64 KB; counted in UTF-8 bytes to be safe).
ANNOTATION_TEXT_MAX = 65535
ANNOTATION_TITLE_MAX = 255
#: Annotations per create/update request; more are appended by further PATCHes.
ANNOTATIONS_PER_REQUEST = 50
#: Issue/review comment bodies are capped at 65536 characters; stay well below.
COMMENT_BODY_MAX = 60000

#: More findings of one rule in one file than this become one grouped comment.
GROUP_THRESHOLD = 5
#: Room kept for `AuditContext.notes` at the end of the summary.
NOTES_MAX = 8000
#: How many other lines a grouped comment lists.
GROUP_LIST_MAX = 200
#: How many not-posted findings the review body lists by name.
REVIEW_BODY_LIST_MAX = 20

NO_PYTHON_TITLE = "No Python files changed"
REAUDIT_ACTION = {
    "label": "Re-audit",  # <= 20
    "description": "Run txaudit again on this commit",  # <= 40
    "identifier": "reaudit",  # <= 20
}

_LEVELS = {Severity.ERROR: "failure", Severity.WARNING: "warning", Severity.NOTICE: "notice"}
_FAIL_ON = {"error": Severity.ERROR, "warning": Severity.WARNING}

_WHY_HEADING = re.compile(r"^\s*(?:#+\s*|\*\*)?why is this bad\??(?:\*\*)?\s*:?\s*$", re.I)


# --- data ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditedFile:
    """One changed file of the pull request, with what the engine said about it."""

    path: str
    status: str  # GitHub diff status: added/modified/renamed/...
    #: None: GitHub omitted the patch -> audited whole, nothing commentable.
    patch: PatchLines | None
    result: FileResult | None  # None when skipped
    skipped: str | None = None  # why, e.g. "larger than 1 MB"


@dataclass(frozen=True, slots=True)
class AuditContext:
    """Where the audit runs and what the app already knows about the pull request."""

    repo: str  # "owner/name"
    html_url: str  # "https://github.com/owner/name"
    base_sha: str
    head_sha: str
    #: Public base URL of the app, for `{rules_url}/rules/{ID}` when no guide is configured.
    rules_url: str | None = None
    filter_override: str | None = None  # "file" for `/txaudit full`
    #: Fingerprints parsed from the app's earlier review comments on this pull request.
    existing_fingerprints: frozenset[str] = frozenset()
    notes: tuple[str, ...] = ()  # extra lines for the summary
    #: The check run's html_url, linked from the review body when known.
    check_url: str | None = None
    #: How the reader lists the findings already present on untouched lines.
    list_all_hint: str = "comment `/txaudit full` to list them"


@dataclass(frozen=True, slots=True)
class Annotation:
    """A check-run annotation."""

    path: str
    start_line: int
    end_line: int
    annotation_level: str  # notice | warning | failure
    message: str
    title: str | None = None
    raw_details: str | None = None
    start_column: int | None = None
    end_column: int | None = None

    def to_api(self) -> dict[str, Any]:
        """The API object: only accepted keys, within GitHub's length limits."""
        data: dict[str, Any] = {
            "path": self.path,
            "start_line": self.start_line,
            "end_line": max(self.end_line, self.start_line),
            "annotation_level": self.annotation_level,
            "message": clip_bytes(self.message, ANNOTATION_TEXT_MAX) or " ",
        }
        if self.title:
            data["title"] = clip_chars(self.title, ANNOTATION_TITLE_MAX)
        if self.raw_details:
            data["raw_details"] = clip_bytes(self.raw_details, ANNOTATION_TEXT_MAX)
        if (
            self.start_line == data["end_line"]
            and self.start_column is not None
            and self.end_column is not None
            and 1 <= self.start_column <= self.end_column
        ):
            data["start_column"] = self.start_column
            data["end_column"] = self.end_column
        return data


@dataclass(frozen=True, slots=True)
class ReviewComment:
    """An inline review comment on the RIGHT side of the diff."""

    path: str
    line: int
    body: str
    fingerprint: str  # the first (or only) finding's fingerprint
    start_line: int | None = None
    #: Every fingerprint the body carries (several for a grouped comment).
    fingerprints: tuple[str, ...] = ()

    def to_api(self) -> dict[str, Any]:
        """An item of the `comments` list of `POST /pulls/{n}/reviews`."""
        data: dict[str, Any] = {"path": self.path, "line": self.line, "side": "RIGHT"}
        if self.start_line is not None and self.start_line < self.line:
            data["start_line"] = self.start_line
            data["start_side"] = "RIGHT"
        data["body"] = self.body
        return data


@dataclass(frozen=True, slots=True)
class Outcome:
    """Everything the app posts for one audit."""

    conclusion: str  # success | failure | neutral | cancelled
    title: str
    summary: str  # Markdown, <= 65535 chars
    text: str  # Markdown, <= 65535 chars
    annotations: tuple[Annotation, ...] = ()
    comments: tuple[ReviewComment, ...] = ()  # new inline comments, deduped and capped
    review_body: str | None = None  # None when there is nothing to post
    #: Findings on changed lines, by severity value ("error": 2, ...).
    counts: dict[str, int] = field(default_factory=dict, compare=False)

    def annotation_batches(self, size: int = ANNOTATIONS_PER_REQUEST) -> list[list[dict[str, Any]]]:
        """Annotations as API dicts in batches of at most `size` (<= 50) per request."""
        if not 1 <= size <= ANNOTATIONS_PER_REQUEST:
            raise ValueError(f"batch size must be 1..{ANNOTATIONS_PER_REQUEST}, got {size}")
        items = [annotation.to_api() for annotation in self.annotations]
        return [items[i : i + size] for i in range(0, len(items), size)]

    def output(self, annotations: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
        """The check run's `output` object, with one batch of annotations."""
        data: dict[str, Any] = {"title": self.title, "summary": self.summary}
        if self.text:
            data["text"] = self.text
        if annotations:
            data["annotations"] = list(annotations)
        return data


class RuleDoc(Protocol):
    """What the core reads from `rules.engine.registry.RuleInfo`."""

    @property
    def summary(self) -> str: ...

    @property
    def doc(self) -> str: ...


RuleLookup = Callable[[str], RuleDoc | None]


def _registry_lookup(rule_id: str) -> RuleDoc | None:
    """`rules.engine.registry.get_rule`, or None while the registry is not implemented."""
    try:
        from rules.engine import registry

        get_rule = getattr(registry, "get_rule", None)
        return get_rule(rule_id) if get_rule is not None else None
    except Exception:  # an unfinished registry must not break an audit
        return None


# --- fingerprints ----------------------------------------------------------------------


def reported_fingerprints(files: Iterable[AuditedFile]) -> frozenset[str]:
    """The fingerprint of every finding the audited files still have (on any line), as the
    comments carry them: a thread whose fingerprints are all missing was fixed."""
    found: set[str] = set()
    for file in files:
        if file.result is None:
            continue
        findings = sorted(
            (f for f in file.result.findings if f.severity is not Severity.OFF), key=finding_order
        )
        found.update(fingerprint_all(findings))
    return frozenset(found)


# --- helpers ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Link:
    url: str | None
    markdown: str  # for comments and the summary
    plain: str  # for annotations (plain text)


def _rule_link(rule_id: str, config: Config, ctx: AuditContext) -> _Link:
    blob_base = f"{ctx.html_url.rstrip('/')}/blob/{ctx.base_sha}"
    url = guide_link(rule_id, config, blob_base=blob_base)
    entry = RULE_GUIDE.get(rule_id)
    if url is not None and entry is not None:
        guide_name, heading = entry
        guide = config.guides.get(guide_name)
        if guide is not None:
            heading = guide.sections.get(rule_id, heading)
        label = inline(f"{guide_name} guide: {heading}").replace("[", "\\[").replace("]", "\\]")
        return _Link(url, f"[{label}]({url})", f"Guide: {url}")
    explain = f"txaudit explain {rule_id}"
    if ctx.rules_url:
        url = f"{ctx.rules_url.rstrip('/')}/rules/{rule_id}"
        return _Link(url, f"[`{explain}`]({url})", f"Details: {url}")
    return _Link(None, f"run `{explain}`", f"Details: run `{explain}`")


def _why(info: RuleDoc | None) -> str | None:
    """The first paragraph under "Why is this bad?", else the rule's summary."""
    if info is None:
        return None
    doc = getattr(info, "doc", "") or ""
    lines = doc.splitlines()
    for index, line in enumerate(lines):
        if _WHY_HEADING.match(line):
            paragraph: list[str] = []
            for following in lines[index + 1 :]:
                stripped = following.strip()
                if not stripped:
                    if paragraph:
                        break
                    continue
                if set(stripped) <= {"-", "="}:
                    if paragraph:
                        break
                    continue  # a setext underline of the heading itself
                if stripped.startswith("#"):
                    break
                paragraph.append(stripped)
            if paragraph:
                return " ".join(paragraph)
            break
    summary = (getattr(info, "summary", "") or "").strip()
    return summary or None


# --- the audit -------------------------------------------------------------------------


@dataclass(slots=True)
class _FileView:
    file: AuditedFile
    result: FileResult
    changed: list[Finding]
    untouched: list[Finding]
    fingerprints: dict[int, str]  # id(finding) -> fingerprint


def _view(file: AuditedFile, result: FileResult, mode: str) -> _FileView:
    findings = sorted(
        (f for f in result.findings if f.severity is not Severity.OFF), key=finding_order
    )
    fps = {id(f): fp for f, fp in zip(findings, fingerprint_all(findings), strict=True)}
    changed = [f for f in findings if on_changed_line(f, file.patch, mode)]
    untouched = [f for f in findings if not on_changed_line(f, file.patch, mode)]
    return _FileView(file, result, changed, untouched, fps)


@dataclass(frozen=True, slots=True)
class _Planned:
    path: str
    findings: tuple[Finding, ...]  # sorted; several for a grouped comment
    fingerprints: tuple[str, ...]
    patch: PatchLines

    @property
    def first(self) -> Finding:
        return self.findings[0]

    def sort_key(self) -> tuple[Any, ...]:
        return (self.path, self.first.line, rule_order(self.first.rule), self.first.column)


def build_outcome(
    files: Sequence[AuditedFile],
    config: Config,
    ctx: AuditContext,
    *,
    rule_lookup: RuleLookup | None = None,
) -> Outcome:
    """The check-run output and review comments for one audit (SPEC.md steps 5 and 6).

    `rule_lookup` returns a rule's documentation (default: `rules.engine.registry.get_rule`).
    """
    lookup = rule_lookup or _registry_lookup
    mode = ctx.filter_override or config.filter
    ordered = sorted(files, key=lambda f: f.path)
    if not ordered:
        return Outcome(
            conclusion="success",
            title=NO_PYTHON_TITLE,
            summary=truncate_markdown(
                "txaudit found no changed Python files that the configuration includes.\n"
                + _notes_section(ctx.notes),
                OUTPUT_MAX,
            ),
            text="",
        )

    views = [_view(f, f.result, mode) for f in ordered if f.result is not None]
    changed = [(v, f) for v in views for f in v.changed]
    links: dict[str, _Link] = {}

    def link(rule_id: str) -> _Link:
        if rule_id not in links:
            links[rule_id] = _rule_link(rule_id, config, ctx)
        return links[rule_id]

    docs: dict[str, RuleDoc | None] = {}

    def doc(rule_id: str) -> RuleDoc | None:
        if rule_id not in docs:
            docs[rule_id] = lookup(rule_id)
        return docs[rule_id]

    # Conclusion and title.
    counts = Counter(f.severity.value for _, f in changed)
    threshold = _FAIL_ON.get(config.fail_on)
    failing = threshold is not None and any(f.severity.at_least(threshold) for _, f in changed)
    title = _title(views, counts, len(ordered) - len(views))
    # A file that the engine failed on may hide findings: a crafted pull request must not
    # turn the check green that way, so it concludes like an audit that could not finish.
    errored = sum(1 for v in views if v.result.error)
    if failing:
        conclusion = "failure"
    elif errored:
        conclusion = config.on_error if config.on_error in ("failure", "neutral") else "failure"
        title = f"{title}; {plural(errored, 'file')} could not be audited"
    else:
        conclusion = "success"

    # Annotations: every finding on a changed line (also in files without a patch).
    annotations = tuple(
        _annotation(v.file.path, f, link(f.rule), doc(f.rule))
        for v, f in sorted(changed, key=lambda vf: (vf[0].file.path, *finding_order(vf[1])))
    )

    comments, overflow = _plan_comments(views, config, ctx)
    review_comments = tuple(
        _comment(plan, config, link(plan.first.rule), doc(plan.first.rule)) for plan in comments
    )
    review_body = (
        _review_body(review_comments, comments, overflow, counts, ctx) if review_comments else None
    )

    # The notes go last but must survive truncation of a long summary.
    notes = _notes_section(ctx.notes)
    summary = _summary(ordered, views, config, ctx, mode, link, title)
    summary = truncate_markdown(summary, OUTPUT_MAX - len(notes.encode())) + notes
    text = _text(views, ctx.list_all_hint)
    return Outcome(
        conclusion=conclusion,
        title=title,
        summary=summary,
        text=truncate_markdown(text, OUTPUT_MAX),
        annotations=annotations,
        comments=review_comments,
        review_body=review_body,
        counts=dict(counts),
    )


def _title(views: Sequence[_FileView], counts: Counter[str], skipped: int) -> str:
    audited = len(views)
    if audited == 0:
        return f"No files audited ({plural(skipped, 'file')} skipped)"
    parts = [
        plural(counts[sev.value], sev.value)
        for sev in (Severity.ERROR, Severity.WARNING, Severity.NOTICE)
        if counts[sev.value]
    ]
    if not parts:
        where = "on changed lines " if any(v.untouched for v in views) else ""
        return f"No findings {where}in {plural(audited, 'file')}"
    with_findings = sum(1 for v in views if v.changed)
    return f"{', '.join(parts)} in {plural(with_findings, 'file')}"


def _annotation(path: str, finding: Finding, link: _Link, info: RuleDoc | None) -> Annotation:
    last = last_line(finding)
    single = last == finding.line
    summary = (getattr(info, "summary", "") or "").strip() if info is not None else ""
    return Annotation(
        path=path,
        start_line=finding.line,
        end_line=last,
        annotation_level=_LEVELS.get(finding.severity, "notice"),
        message=f"{finding.message}\n\n{link.plain}",
        title=f"{finding.rule} {finding.name}",
        raw_details=summary or None,
        start_column=finding.column if single else None,
        end_column=finding.end_column if single and finding.end_line == finding.line else None,
    )


def _plan_comments(
    views: Sequence[_FileView], config: Config, ctx: AuditContext
) -> tuple[list[_Planned], list[_Planned]]:
    """(comments to post, sorted by path/line/rule; new findings left for the check run)."""
    plans: list[_Planned] = []
    for view in views:
        patch = view.file.patch
        if patch is None:
            continue
        by_rule: dict[str, list[Finding]] = defaultdict(list)
        for finding in view.changed:
            if finding.line not in patch.commentable:
                continue  # cannot anchor: the check run has it
            if view.fingerprints[id(finding)] in ctx.existing_fingerprints:
                continue  # already commented on an earlier audit
            by_rule[finding.rule].append(finding)
        for findings in by_rule.values():
            groups = [findings] if len(findings) > GROUP_THRESHOLD else [[f] for f in findings]
            for group in groups:
                plans.append(
                    _Planned(
                        path=view.file.path,
                        findings=tuple(group),
                        fingerprints=tuple(view.fingerprints[id(f)] for f in group),
                        patch=patch,
                    )
                )
    # Keep the loudest when capping; post in (path, line, rule) order.
    by_priority = sorted(plans, key=lambda p: (-p.first.severity.rank, p.sort_key()))
    cap = max(config.comments_max, 0)
    chosen = sorted(by_priority[:cap], key=_Planned.sort_key)
    rest = sorted(by_priority[cap:], key=_Planned.sort_key)
    return chosen, rest


def _suggestion_fence(replacement: str) -> str:
    run = max((len(m) for m in re.findall(r"`{3,}", replacement)), default=2)
    return "`" * (run + 1)


def _comment(plan: _Planned, config: Config, link: _Link, info: RuleDoc | None) -> ReviewComment:
    first = plan.first
    head = f"**{first.rule} {first.name}** ({first.severity.value})"
    parts: list[str] = []
    start_line: int | None = None
    line = first.line
    if len(plan.findings) > 1:
        rest = [str(f.line) for f in plan.findings[1:]]
        others = ", ".join(rest[:GROUP_LIST_MAX])
        if len(rest) > GROUP_LIST_MAX:
            others += f" and {len(rest) - GROUP_LIST_MAX} more"
        parts.append(f"{head}, {len(plan.findings)} times in this file")
        parts.append(inline(first.message))
        parts.append(f"Also on lines {others}.")
    else:
        parts.append(head)
        parts.append(inline(first.message))
    why = _why(info)
    if why:
        parts.append(f"**Why it matters:** {inline(why)}")
    parts.append(f"More: {link.markdown}")
    fix = first.fix
    if (
        len(plan.findings) == 1
        and fix is not None
        and config.comments_suggestions
        and plan.patch.same_hunk(fix.start_line, fix.end_line)
    ):
        replacement = fix.replacement
        if replacement and not replacement.endswith("\n"):
            replacement += "\n"
        fence = _suggestion_fence(replacement)
        block = f"{fence}suggestion\n{replacement}{fence}"
        if len(block) < COMMENT_BODY_MAX // 2:
            parts.append(block)
            line = fix.end_line
            start_line = fix.start_line if fix.start_line < fix.end_line else None
    parts.append(markers(plan.fingerprints))
    body = "\n\n".join(parts)
    return ReviewComment(
        path=plan.path,
        line=line,
        body=body,
        fingerprint=plan.fingerprints[0],
        start_line=start_line,
        fingerprints=plan.fingerprints,
    )


def _severity_counts(counts: Counter[str]) -> str:
    return ", ".join(
        plural(counts[s.value], s.value)
        for s in (Severity.ERROR, Severity.WARNING, Severity.NOTICE)
        if counts[s.value]
    )


def _review_body(
    comments: Sequence[ReviewComment],
    posted: Sequence[_Planned],
    overflow: Sequence[_Planned],
    counts: Counter[str],
    ctx: AuditContext,
) -> str:
    new = Counter(f.severity.value for p in (*posted, *overflow) for f in p.findings)
    total = sum(new.values())
    lines = [
        f"**txaudit** found {plural(total, 'new finding')} on changed lines "
        f"({_severity_counts(new)}); {plural(len(comments), 'comment')} below."
    ]
    if overflow:
        hidden = sum(len(p.findings) for p in overflow)
        lines.append("")
        more = "more finding is" if hidden == 1 else "more findings are"
        lines.append(f"{hidden} {more} in the check run (`comments.max` reached):")
        listed = [(plan.path, f) for plan in overflow for f in plan.findings]
        for path, finding in listed[:REVIEW_BODY_LIST_MAX]:
            lines.append(
                f"- {code(f'{path}:{finding.line}')} {finding.rule} {inline(finding.message)}"
            )
        if len(listed) > REVIEW_BODY_LIST_MAX:
            lines.append(f"- … and {len(listed) - REVIEW_BODY_LIST_MAX} more")
    where = "the **txaudit** check run"
    if ctx.check_url:
        where = f"the [txaudit check run]({ctx.check_url})"
    lines.append("")
    lines.append(
        f"All findings on changed lines ({_severity_counts(counts)}) are in {where}; "
        "comment `/txaudit` to re-audit."
    )
    return clip_chars("\n".join(lines), COMMENT_BODY_MAX)


def _summary(
    ordered: Sequence[AuditedFile],
    views: Sequence[_FileView],
    config: Config,
    ctx: AuditContext,
    mode: str,
    link: Callable[[str], _Link],
    title: str,
) -> str:
    out: list[str] = [f"## txaudit: {title}", ""]
    mode_words = {
        "added": "findings on lines this pull request adds",
        "diff_context": "findings on lines inside the diff (added and context lines)",
        "file": "every finding in the touched files",
    }.get(mode, mode)
    out.append(
        f"Audited {plural(len(views), 'Python file')} at `{ctx.head_sha[:12]}` "
        f"against base `{ctx.base_sha[:12]}`. Counted as changed: {mode_words}. "
        f"Fails on: {config.fail_on}. Configuration: {config.source}."
    )
    out.append("")

    changed_by_rule: Counter[str] = Counter()
    untouched_by_rule: Counter[str] = Counter()
    names: dict[str, str] = {}
    severities: dict[str, set[str]] = defaultdict(set)
    for view in views:
        for finding in view.changed:
            changed_by_rule[finding.rule] += 1
        for finding in view.untouched:
            untouched_by_rule[finding.rule] += 1
        for finding in (*view.changed, *view.untouched):
            names.setdefault(finding.rule, finding.name)
            severities[finding.rule].add(finding.severity.value)
    rules = sorted(names, key=rule_order)
    if rules:
        out.append("| Rule | Name | Severity | On changed lines | Already present | Guide |")
        out.append("| --- | --- | --- | ---: | ---: | --- |")
        for rule_id in rules:
            sev = ", ".join(
                s.value
                for s in (Severity.ERROR, Severity.WARNING, Severity.NOTICE)
                if s.value in severities[rule_id]
            )
            out.append(
                f"| {cell(rule_id)} | {cell(names[rule_id])} | {sev} | "
                f"{changed_by_rule[rule_id]} | {untouched_by_rule[rule_id]} | "
                f"{link(rule_id).markdown} |"
            )
        out.append("")
        if sum(untouched_by_rule.values()):
            out.append(
                "*Already present*: findings on untouched lines of the changed files. They are "
                f"counted here only, not annotated or commented; {ctx.list_all_hint}."
            )
            out.append("")
    else:
        out.append("No findings.")
        out.append("")

    whole = [v for v in views if v.file.patch is None]
    if whole:
        out.append("### Audited whole (GitHub sent no diff)")
        out.append("")
        out.append(
            "GitHub omitted the diff of these files (too large or binary), so every finding in "
            "them counts as changed and goes to the check run; none can be commented inline."
        )
        out.append("")
        for view in whole:
            out.append(f"- {code(view.file.path)} ({plural(len(view.changed), 'finding')})")
        out.append("")

    skipped = [f for f in ordered if f.result is None]
    if skipped:
        out.append("### Skipped")
        out.append("")
        for f in skipped:
            out.append(f"- {code(f.path)}: {inline(f.skipped or 'not audited')}")
        out.append("")

    errored = [v for v in views if v.result.error]
    if errored:
        out.append("### Problems")
        out.append("")
        for v in errored:
            out.append(f"- {code(v.file.path)}: {inline(v.result.error or '')}")
        out.append("")

    added = _added_suppressions(views)
    if added:
        out.append("### Suppressions added by this pull request")
        out.append("")
        for path, sup, maybe_old in added:
            ids = ", ".join(sup.rule_ids) if sup.rule_ids else "all rules (blanket ignore)"
            reason = inline(sup.reason) if sup.reason and sup.reason.strip() else None
            reason_text = f"“{reason}”" if reason else "no reason given"
            extras = []
            if not sup.used:
                extras.append("suppresses nothing")
            if maybe_old:
                extras.append("diff unavailable, may predate this pull request")
            tail = f" ({'; '.join(extras)})" if extras else ""
            out.append(f"- {code(f'{path}:{sup.line}')} {ids}: {reason_text}{tail}")
        out.append("")

    expiring, expired = _dated_suppressions(views, config.today or date.today())
    for heading, items in (
        (f"Suppressions that expire within {EXPIRY_WARNING_DAYS} days", expiring),
        ("Expired suppressions (they suppress nothing)", expired),
    ):
        if not items:
            continue
        out.append(f"### {heading}")
        out.append("")
        for path, sup in items:
            ids = ", ".join(sup.rule_ids) if sup.rule_ids else "all rules"
            reason = inline(sup.reason) if sup.reason and sup.reason.strip() else None
            reason_text = f"“{reason}”" if reason else "no reason given"
            out.append(
                f"- {code(f'{path}:{sup.line}')} {ids} until {code(sup.until or '')}: {reason_text}"
            )
        out.append("")

    return "\n".join(out).rstrip() + "\n"


#: Suppressions whose `until=` is this close are listed in the summary.
EXPIRY_WARNING_DAYS = 30


def _dated_suppressions(
    views: Sequence[_FileView], today: date
) -> tuple[list[tuple[str, Suppression]], list[tuple[str, Suppression]]]:
    """(expiring within `EXPIRY_WARNING_DAYS`, expired or undated `until=`) in the audited
    files, by path and line."""
    expiring: list[tuple[str, Suppression]] = []
    expired: list[tuple[str, Suppression]] = []
    for view in views:
        for sup in sorted(view.result.suppressions, key=lambda s: s.line):
            if sup.until is None:
                continue
            try:
                until = date.fromisoformat(sup.until) if len(sup.until) == 10 else None
            except ValueError:
                until = None
            if until is None or until < today:
                expired.append((view.file.path, sup))
            elif (until - today).days <= EXPIRY_WARNING_DAYS:
                expiring.append((view.file.path, sup))
    return expiring, expired


def _added_suppressions(
    views: Sequence[_FileView],
) -> list[tuple[str, Suppression, bool]]:
    """(path, suppression, diff unavailable) for suppressions on lines the PR adds."""
    found: list[tuple[str, Suppression, bool]] = []
    for view in views:
        patch = view.file.patch
        for sup in sorted(view.result.suppressions, key=lambda s: (s.line, s.rule_ids)):
            if patch is None:
                found.append((view.file.path, sup, view.file.status != "added"))
            elif sup.line in patch.added:
                found.append((view.file.path, sup, False))
    return found


def _notes_section(notes: Sequence[str]) -> str:
    if not notes:
        return ""
    section = "\n### Notes\n\n" + "\n".join(f"- {inline(n)}" for n in notes) + "\n"
    return clip_bytes(section, NOTES_MAX)


def _text(views: Sequence[_FileView], list_all_hint: str) -> str:
    out: list[str] = []
    for view in views:
        if not view.changed and not view.untouched:
            continue
        out.append(f"### {code(view.file.path)}")
        out.append("")
        for f in view.changed:
            out.append(
                f"- {code(f'{view.file.path}:{f.line}')} **{f.rule}** {f.name} "
                f"({f.severity.value}): {inline(f.message)}"
            )
        if view.untouched:
            out.append(
                f"- plus {plural(len(view.untouched), 'finding')} already present on "
                f"untouched lines ({list_all_hint})"
            )
        out.append("")
    return "\n".join(out).rstrip() + ("\n" if out else "")


# --- outcomes when there is no audit ---------------------------------------------------

_CONFIG_KEY_RES = (
    re.compile(r"unknown key '([^']+)'"),
    re.compile(r"^([A-Za-z_][\w.\[\]-]*)(?::|\s+(?:must|needs|has)\b)"),
)


def _config_key(message: str) -> tuple[str | None, str | None]:
    """(file, key) named by a `ConfigError` message such as ``f.yml: rules.TX9: unknown rule``."""
    source, sep, rest = message.partition(": ")
    if not sep:
        return None, None
    source = source.strip()
    file = source.split(" [", 1)[0] if source else None
    for pattern in _CONFIG_KEY_RES:
        match = pattern.search(rest)
        if match:
            return file, match[1]
    return file, None


def config_error_outcome(message: str) -> Outcome:
    """The check run for an invalid configuration: `failure`, naming the bad key."""
    file, key = _config_key(message)
    where = file if file else "the txaudit configuration"
    if key:
        todo = f"**To do:** fix key {code(key)} in {where} (read from the base commit)."
        title = f"Invalid configuration: {key}"
    else:
        todo = f"**To do:** fix {where} (read from the base commit)."
        title = "Invalid configuration"
    summary = (
        "## txaudit: invalid configuration\n\n"
        "Nothing was audited because the configuration is invalid:\n\n"
        f"> {inline(message)}\n\n"
        f"{todo} txaudit reads its configuration from the pull request's base commit, so a "
        "pull request cannot weaken its own audit: merge the fix into the base branch, then "
        "re-run with `/txaudit` (or the Re-audit button).\n"
    )
    return Outcome(
        conclusion="failure",
        title=clip_chars(title, ANNOTATION_TITLE_MAX),
        summary=truncate_markdown(summary, OUTPUT_MAX),
        text="",
    )


def error_outcome(
    reason: str, *, on_error: str = "failure", title: str = "Audit could not finish"
) -> Outcome:
    """The check run when the audit could not finish: `failure` (or `neutral`)."""
    conclusion = on_error if on_error in ("failure", "neutral") else "failure"
    summary = (
        "## txaudit: the audit could not finish\n\n"
        f"What went wrong: {inline(reason) or 'an unexpected error'}.\n\n"
        "This is a problem on txaudit's or GitHub's side, not a finding in your code: "
        "re-run with `/txaudit` (or the Re-audit button). If it keeps failing, tell the "
        "maintainers of this app.\n"
    )
    return Outcome(
        conclusion=conclusion,
        title=title,
        summary=truncate_markdown(summary, OUTPUT_MAX),
        text="",
    )


def cancelled_outcome(superseded_by: str) -> Outcome:
    """The check run of an audit that a newer push made obsolete."""
    summary = (
        "## txaudit: cancelled\n\n"
        f"This audit was superseded by {superseded_by}: a newer commit was pushed to "
        "the pull request, and the audit of that commit replaces this one.\n"
    )
    return Outcome(
        conclusion="cancelled",
        title=clip_chars(f"Superseded by {superseded_by}", ANNOTATION_TITLE_MAX),
        summary=truncate_markdown(summary, OUTPUT_MAX),
        text="",
    )
