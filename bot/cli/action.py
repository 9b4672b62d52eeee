"""`txaudit action`: what the GitHub Action (`action.yml`) runs inside a workflow job.

It reads the environment GitHub Actions sets (the event payload, `GITHUB_STEP_SUMMARY`,
`GITHUB_OUTPUT`, `GITHUB_WORKSPACE`), picks the range to audit from the event (a pull
request's base and head, a push's before and after), and reports the audit three ways:
workflow-command annotations on stdout (loudest first, within GitHub's per-step limits), the
app's check-run summary as the job summary, and optionally a SARIF file. The exit status
follows the check run's conclusion: 1 when it would fail, else 0.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from bot.cli import local
from bot.cli.local import UsageError
from bot.cli.output import (
    Run,
    format_sarif,
    github_command,
    github_error_command,
)
from bot.review.outcome import AuditContext, AuditedFile, Outcome, build_outcome
from rules.engine.guides import guide_link
from rules.engine.model import Finding, Severity

#: GitHub shows at most this many annotations of each level per step (GITHUB-2.md s.5.2);
#: the rest are dropped silently, so the loudest go first.
ANNOTATIONS_PER_LEVEL = 10
#: ... and at most this many per job, summed over its steps.
ANNOTATIONS_PER_JOB = 50
_ZERO_SHA = re.compile(r"^0+$")
_LEVEL_ORDER = (Severity.ERROR, Severity.WARNING, Severity.NOTICE)
LIST_ALL_HINT = "set the action's `filter: file` to list them"


@dataclass(frozen=True, slots=True)
class ActionsEnv:
    """The variables GitHub Actions sets for a step, read once."""

    event_name: str
    event_path: Path
    workspace: Path
    step_summary: Path | None
    output: Path | None
    server_url: str
    repository: str
    sha: str | None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ActionsEnv:
        event_path = environ.get("GITHUB_EVENT_PATH")
        if not event_path:
            raise UsageError(
                "GITHUB_EVENT_PATH is not set: `txaudit action` runs inside GitHub Actions "
                "(locally, use `txaudit diff`)"
            )
        summary = environ.get("GITHUB_STEP_SUMMARY")
        output = environ.get("GITHUB_OUTPUT")
        return cls(
            event_name=environ.get("GITHUB_EVENT_NAME", ""),
            event_path=Path(event_path),
            workspace=Path(environ.get("GITHUB_WORKSPACE") or os.getcwd()),
            step_summary=Path(summary) if summary else None,
            output=Path(output) if output else None,
            server_url=environ.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/"),
            repository=environ.get("GITHUB_REPOSITORY", ""),
            sha=environ.get("GITHUB_SHA") or None,
        )

    def event(self) -> dict[str, Any]:
        """The webhook payload of the event that started the workflow."""
        try:
            data = json.loads(self.event_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"{self.event_path}: cannot read the event payload: {exc}") from None
        if not isinstance(data, dict):
            raise UsageError(f"{self.event_path}: the event payload is not a JSON object")
        return data


@dataclass(frozen=True, slots=True)
class EventRange:
    """What to audit for an event: `head`'s lines added since its merge base with `base`."""

    base: str | None  # None: the default (merge base with origin/HEAD, main or master)
    head: str | None  # None: nothing to audit (a deleted branch)
    description: str


def event_range(env: ActionsEnv, event: Mapping[str, Any]) -> EventRange:
    """The range to audit: a pull request's base..head, a push's before..after."""
    pull = event.get("pull_request")
    if isinstance(pull, dict):
        base, head = _sha(pull.get("base")), _sha(pull.get("head"))
        if base and head:
            return EventRange(base, head, f"pull request #{pull.get('number', '?')}")
    group = event.get("merge_group")
    if isinstance(group, dict) and group.get("base_sha") and group.get("head_sha"):
        return EventRange(str(group["base_sha"]), str(group["head_sha"]), "merge group")
    if env.event_name == "push":
        if event.get("deleted"):
            return EventRange(None, None, "the deletion of a branch")
        after = str(event.get("after") or env.sha or "HEAD")
        before = str(event.get("before") or "")
        ref = str(event.get("ref", "")).removeprefix("refs/heads/")
        if before and not _ZERO_SHA.match(before):
            return EventRange(before, after, f"push to {ref} {before[:7]}..{after[:7]}")
        default = (event.get("repository") or {}).get("default_branch")
        base = f"origin/{default}" if default else None
        return EventRange(base, after, f"new branch {ref}")
    return EventRange(None, env.sha or "HEAD", f"{env.event_name or 'the'} event")


def _sha(ref: object) -> str | None:
    return str(ref["sha"]) if isinstance(ref, dict) and ref.get("sha") else None


def fetch_missing(span: EventRange, root: Path) -> None:
    """Fetch the range's commits that the checkout lacks (a shallow `actions/checkout`)."""
    for rev in (span.base, span.head):
        if rev is None or not re.fullmatch(r"[0-9a-fA-F]{7,64}", rev) or _has_commit(rev, root):
            continue
        local.git(["fetch", "--no-tags", "--quiet", "origin", rev], root, check=False)
        if not _has_commit(rev, root):
            raise UsageError(
                f"commit {rev[:12]} is not in the checkout and could not be fetched; "
                "check out with `fetch-depth: 0` (actions/checkout)"
            )


def _has_commit(rev: str, root: Path) -> bool:
    proc = local.git(["cat-file", "-e", f"{rev}^{{commit}}"], root, check=False)
    return proc.returncode == 0


# --- annotations -----------------------------------------------------------------------


def _workspace_prefix(root: Path, workspace: Path) -> str:
    """The repository's folder relative to `GITHUB_WORKSPACE` ("" when it is the workspace),
    since annotation paths are read relative to the workspace."""
    try:
        rel = root.resolve().relative_to(workspace.resolve())
    except ValueError:
        return ""
    return "" if rel == Path(".") else rel.as_posix() + "/"


@dataclass(frozen=True, slots=True)
class Annotations:
    """The workflow commands to print and how many findings did not fit."""

    lines: tuple[str, ...]
    hidden: int


def plan_annotations(
    findings: Sequence[Finding],
    errors: Sequence[tuple[str, str]],
    *,
    prefix: str,
    guide: Any,
    where: str,
) -> Annotations:
    """Loudest first, at most `ANNOTATIONS_PER_LEVEL` per level; when some do not fit, a
    last notice says how many and `where` they are (it takes one notice slot)."""
    by_level: dict[Severity, list[str]] = {level: [] for level in _LEVEL_ORDER}
    ordered = sorted(findings, key=lambda f: -f.severity.rank)  # stable: path order kept
    for finding in ordered:
        if finding.severity in by_level:
            by_level[finding.severity].append(
                github_command(finding, guide(finding.rule), path=prefix + finding.path)
            )
    by_level[Severity.ERROR] += [github_error_command(prefix + p, m) for p, m in errors]
    total = sum(len(items) for items in by_level.values())
    caps = {level: ANNOTATIONS_PER_LEVEL for level in _LEVEL_ORDER}
    if any(len(items) > ANNOTATIONS_PER_LEVEL for items in by_level.values()):
        caps[Severity.NOTICE] -= 1  # room for the closing notice
    shown = [line for level in _LEVEL_ORDER for line in by_level[level][: caps[level]]]
    hidden = total - len(shown)
    if hidden:
        more = "finding is" if hidden == 1 else "findings are"
        shown.append(
            f"::notice title=txaudit::{hidden} more {more} not annotated (GitHub shows "
            f"{ANNOTATIONS_PER_LEVEL} errors, {ANNOTATIONS_PER_LEVEL} warnings and "
            f"{ANNOTATIONS_PER_LEVEL} notices per step): {where}."
        )
    return Annotations(tuple(shown), hidden)


# --- the report ------------------------------------------------------------------------


def _head_sha(head: str, root: Path) -> str:
    return local.git_text(["rev-parse", "--verify", f"{head}^{{commit}}"], root)


def build_action_outcome(
    audit: local.DiffAudit, env: ActionsEnv, span: EventRange, notes: Sequence[str]
) -> Outcome:
    """The app's check-run outcome for this range, with links into the repository on GitHub."""
    head_sha = _head_sha(audit.head or "HEAD", audit.root)
    repo = env.repository or audit.root.name
    files = [
        AuditedFile(
            path=change.path,
            status="added" if change.untracked else "modified",
            patch=change.patch,
            result=result,
        )
        for change, result in zip(audit.changed, audit.results, strict=True)
    ]
    ctx = AuditContext(
        repo=repo,
        html_url=f"{env.server_url}/{repo}",
        base_sha=audit.base_sha,
        head_sha=head_sha,
        notes=(f"Audited {span.description} (base: {_short(audit.label)}).", *notes),
        list_all_hint=LIST_ALL_HINT,
    )
    return build_outcome(files, audit.config, ctx)


def _short(rev: str) -> str:
    return rev[:12] if re.fullmatch(r"[0-9a-f]{40,64}", rev) else rev


def _append(path: Path | None, text: str) -> None:
    if path is None:
        return
    try:
        with path.open("a", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write: {exc.strerror}") from None


def write_outputs(path: Path | None, values: Mapping[str, str]) -> None:
    """Append `name=value` lines to `GITHUB_OUTPUT` (values are single-line)."""
    _append(path, "".join(f"{name}={value}\n" for name, value in values.items()))


def report(
    audit: local.DiffAudit,
    env: ActionsEnv,
    span: EventRange,
    *,
    sarif_path: Path | None,
    rules: Sequence[Any],
    version: str,
    out: TextIO,
    err: TextIO,
) -> int:
    """Print the annotations, write the job summary, outputs and SARIF; the exit status."""
    blob_base = f"{env.server_url}/{env.repository}/blob/{audit.base_sha}"

    def guide(rule_id: str) -> str | None:
        return guide_link(rule_id, audit.config, blob_base=blob_base)

    errors = [(r.path, r.error) for r in audit.results if r.error is not None]
    where = "every finding is listed in the job summary"
    if sarif_path is not None:
        where += f" and in {sarif_path.name}"
    shown = plan_annotations(
        audit.findings,
        errors,
        prefix=_workspace_prefix(audit.root, env.workspace),
        guide=guide,
        where=where,
    )
    notes = []
    if shown.hidden:
        notes.append(
            f"{shown.hidden} of {len(audit.findings) + len(errors)} findings are not annotated "
            f"on the diff: GitHub shows at most {ANNOTATIONS_PER_LEVEL} of each level per step."
        )
    if sarif_path is not None:
        notes.append(f"SARIF written to {sarif_path} for code scanning.")
    outcome = build_action_outcome(audit, env, span, notes)
    for line in shown.lines:
        out.write(line + "\n")
    out.flush()

    summary = outcome.summary
    if outcome.text:
        summary += "\n### Findings on changed lines\n\n" + outcome.text
    _append(env.step_summary, summary + "\n")

    if sarif_path is not None:
        run = Run(results=audit.results, findings=audit.findings, config=audit.config)
        uri = audit.root.resolve().as_uri().rstrip("/") + "/"
        try:
            sarif_path.parent.mkdir(parents=True, exist_ok=True)
            sarif_path.write_text(
                format_sarif(run, rules, version=version, src_root=uri), encoding="utf-8"
            )
        except OSError as exc:
            raise UsageError(f"{sarif_path}: cannot write the SARIF file: {exc.strerror}") from None
    write_outputs(
        env.output,
        {
            "findings": str(len(audit.findings)),
            "sarif-file": str(sarif_path) if sarif_path is not None else "",
            "conclusion": outcome.conclusion,
        },
    )
    err.write(f"txaudit: {outcome.title}; conclusion: {outcome.conclusion}.\n")
    return 1 if outcome.conclusion == "failure" else 0


def report_nothing(env: ActionsEnv, span: EventRange, out: TextIO) -> int:
    """A deleted branch: nothing to audit, said once, exit 0."""
    out.write(f"::notice title=txaudit::Nothing to audit for {span.description}.\n")
    _append(env.step_summary, f"## txaudit: nothing to audit\n\n{span.description}.\n")
    write_outputs(env.output, {"findings": "0", "sarif-file": "", "conclusion": "success"})
    return 0
