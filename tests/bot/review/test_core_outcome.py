"""build_outcome and friends: the pure check-run / review output of an app audit."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

import pytest

from bot.review.fingerprints import fingerprint, fingerprint_all, fingerprints_in
from bot.review.outcome import (
    NO_PYTHON_TITLE,
    REAUDIT_ACTION,
    Annotation,
    AuditContext,
    AuditedFile,
    Outcome,
    ReviewComment,
    build_outcome,
    cancelled_outcome,
    config_error_outcome,
    error_outcome,
)
from bot.review.patch import PatchLines, parse_patch
from rules.engine.config import Config, Guide
from rules.engine.model import FileResult, Finding, Fix, Severity, Suppression

HTML_URL = "https://github.com/acme/shop"
BASE = "b" * 40
HEAD = "h" * 40
CTX = AuditContext(repo="acme/shop", html_url=HTML_URL, base_sha=BASE, head_sha=HEAD)
NAMES = {"TX001": "nested-transaction", "TX004": "split-batch-session", "ORM003": "sql-string"}


@dataclass(frozen=True)
class FakeRule:
    summary: str
    doc: str


FAKE_DOCS = {
    "TX001": FakeRule(
        summary="Flags begin() inside a session that already began a transaction.",
        doc="## What it does\n\nFlags nesting.\n\n## Why is this bad?\n\nSQLAlchemy raises\n"
        "InvalidRequestError.\n\nSecond paragraph.\n\n## Example\n",
    ),
    "TX004": FakeRule(summary="Flags a task split over several sessions.", doc=""),
}


def lookup(rule_id: str) -> FakeRule | None:
    return FAKE_DOCS.get(rule_id)


def finding(
    line: int,
    rule: str = "TX001",
    *,
    path: str = "app/jobs.py",
    severity: Severity | None = None,
    end_line: int | None = None,
    column: int = 5,
    end_column: int = 20,
    scope: str = "process",
    snippet: str | None = None,
    fix: Fix | None = None,
    message: str = "Nested begin() on an owned session.",
) -> Finding:
    if severity is None:
        severity = Severity.WARNING if rule in ("TX004", "ORM003") else Severity.ERROR
    return Finding(
        rule=rule,
        name=NAMES.get(rule, rule.lower()),
        severity=severity,
        path=path,
        line=line,
        column=column,
        end_line=line if end_line is None else end_line,
        end_column=end_column,
        message=message,
        fix=fix,
        scope=scope,
        snippet=f"code at {line}" if snippet is None else snippet,
    )


def lines(added: set[int], context: set[int] = frozenset()) -> PatchLines:  # type: ignore[assignment]
    return PatchLines(added=frozenset(added), commentable=frozenset(added | set(context)))


def audited(
    findings: list[Finding],
    patch: PatchLines | None,
    *,
    path: str = "app/jobs.py",
    suppressions: tuple[Suppression, ...] = (),
    status: str = "modified",
) -> AuditedFile:
    result = FileResult(path=path, findings=tuple(findings), suppressions=suppressions)
    return AuditedFile(path=path, status=status, patch=patch, result=result)


def run(files: list[AuditedFile], config: Config | None = None, **ctx: Any) -> Outcome:
    return build_outcome(files, config or Config(), replace(CTX, **ctx), rule_lookup=lookup)


# --- filter modes ----------------------------------------------------------------------


def test_filter_added_counts_only_added_lines() -> None:
    patch = lines({10}, context={9, 11})
    out = run([audited([finding(10), finding(11), finding(30)], patch)])
    assert [a.start_line for a in out.annotations] == [10]
    assert [c.line for c in out.comments] == [10]
    assert "| TX001 | nested-transaction | error | 1 | 2 |" in out.summary


def test_filter_diff_context_counts_context_lines() -> None:
    patch = lines({10}, context={9, 11})
    out = run(
        [audited([finding(10), finding(11), finding(30)], patch)], Config(filter="diff_context")
    )
    assert [a.start_line for a in out.annotations] == [10, 11]
    assert [c.line for c in out.comments] == [10, 11]


def test_filter_file_annotates_everything_but_comments_only_inside_the_diff() -> None:
    patch = lines({10}, context={9, 11})
    files = [audited([finding(10), finding(30)], patch)]
    out = run(files, Config(filter="file"))
    assert [a.start_line for a in out.annotations] == [10, 30]
    assert [c.line for c in out.comments] == [10]  # line 30 cannot be anchored
    assert out.conclusion == "failure"
    # `/txaudit full` overrides the configured filter.
    assert run(files, filter_override="file") == out


def test_multi_line_finding_counts_when_any_of_its_lines_is_added() -> None:
    f = finding(20, end_line=24, end_column=9)
    out = run([audited([f], lines({23}, context={20, 21, 22, 24}))])
    assert len(out.annotations) == 1
    assert out.annotations[0].start_line == 20 and out.annotations[0].end_line == 24
    assert [c.line for c in out.comments] == [20]


def test_finding_ending_at_column_1_of_the_next_line_does_not_claim_that_line() -> None:
    f = finding(20, end_line=21, end_column=1)
    out = run([audited([f], lines({21}))])
    assert out.annotations == ()
    assert out.conclusion == "success"


def test_finding_on_added_line_is_commented_but_unanchorable_one_only_annotated() -> None:
    # Added lines are always commentable; a finding outside the hunks under `file` is not.
    out = run([audited([finding(5), finding(50)], lines({5}))], Config(filter="file"))
    assert {a.start_line for a in out.annotations} == {5, 50}
    assert [c.line for c in out.comments] == [5]


def test_file_without_patch_is_audited_whole_and_not_commented() -> None:
    out = run([audited([finding(3), finding(400)], None)])
    assert [a.start_line for a in out.annotations] == [3, 400]
    assert out.comments == ()
    assert out.review_body is None
    assert out.conclusion == "failure"
    assert "Audited whole" in out.summary and "`app/jobs.py`" in out.summary


# --- conclusion and title --------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "fail_on", "conclusion"),
    [
        (Severity.ERROR, "error", "failure"),
        (Severity.WARNING, "error", "success"),
        (Severity.WARNING, "warning", "failure"),
        (Severity.NOTICE, "warning", "success"),
        (Severity.ERROR, "never", "success"),
    ],
)
def test_conclusion_follows_fail_on(severity: Severity, fail_on: str, conclusion: str) -> None:
    out = run([audited([finding(1, severity=severity)], lines({1}))], Config(fail_on=fail_on))
    assert out.conclusion == conclusion


def test_error_on_untouched_line_does_not_fail() -> None:
    out = run([audited([finding(50)], lines({1}))])
    assert out.conclusion == "success"
    assert out.title == "No findings on changed lines in 1 file"
    assert out.annotations == () and out.comments == ()


def test_title_counts_by_severity_and_files() -> None:
    files = [
        audited([finding(1), finding(2)], lines({1, 2}), path="a.py"),
        audited([finding(1, "TX004")], lines({1}), path="b.py"),
        audited([], lines({1}), path="c.py"),
    ]
    assert run(files).title == "2 errors, 1 warning in 2 files"
    one = [audited([finding(1), finding(2, "ORM003", severity=Severity.NOTICE)], lines({1, 2}))]
    assert run(one).title == "1 error, 1 notice in 1 file"


def test_clean_titles() -> None:
    clean = [audited([], lines({1}), path=f"m{i}.py") for i in range(3)]
    assert run(clean).title == "No findings in 3 files"
    assert run(clean[:1]).title == "No findings in 1 file"
    out = run([])
    assert out.title == NO_PYTHON_TITLE and out.conclusion == "success"
    skipped = AuditedFile("big.py", "modified", None, None, skipped="larger than 1 MB")
    out = run([skipped])
    assert out.conclusion == "success"
    assert out.title == "No files audited (1 file skipped)"
    assert "`big.py`: larger than 1 MB" in out.summary


# --- review comments -------------------------------------------------------------------


def test_comment_body_names_rule_why_guide_and_fingerprint() -> None:
    out = run([audited([finding(7)], lines({7}))], rules_url="https://txaudit.example.com/")
    (comment,) = out.comments
    assert comment.body.startswith("**TX001 nested-transaction** (error)")
    assert "Nested begin() on an owned session." in comment.body
    assert "**Why it matters:** SQLAlchemy raises InvalidRequestError." in comment.body
    assert "Second paragraph" not in comment.body
    assert "(https://txaudit.example.com/rules/TX001)" in comment.body
    assert comment.body.endswith(f"<!-- txaudit:fp={comment.fingerprint} -->")
    assert comment.to_api() == {
        "path": "app/jobs.py",
        "line": 7,
        "side": "RIGHT",
        "body": comment.body,
    }
    assert out.review_body is not None and "1 new finding" in out.review_body


def test_why_falls_back_to_summary() -> None:
    out = run([audited([finding(7, "TX004")], lines({7}))])
    assert "**Why it matters:** Flags a task split over several sessions." in out.comments[0].body


def test_more_than_five_of_one_rule_in_one_file_become_one_comment() -> None:
    many = [finding(n, snippet="same") for n in (3, 5, 8, 13, 21, 34)]
    out = run([audited([*many, finding(40, "TX004")], lines({3, 5, 8, 13, 21, 34, 40}))])
    assert [(c.line, c.body.split("**")[1]) for c in out.comments] == [
        (3, "TX001 nested-transaction"),
        (40, "TX004 split-batch-session"),
    ]
    grouped = out.comments[0]
    assert "6 times in this file" in grouped.body
    assert "Also on lines 5, 8, 13, 21, 34." in grouped.body
    assert len(grouped.fingerprints) == 6
    assert fingerprints_in(grouped.body) == set(grouped.fingerprints)
    assert len(out.annotations) == 7  # the check run still has every one


def test_five_of_one_rule_are_commented_one_by_one() -> None:
    out = run([audited([finding(n) for n in range(1, 6)], lines(set(range(1, 6))))])
    assert [c.line for c in out.comments] == [1, 2, 3, 4, 5]


def test_grouping_is_per_file() -> None:
    a = audited([finding(n, path="a.py") for n in range(1, 4)], lines({1, 2, 3}), path="a.py")
    b = audited([finding(n, path="b.py") for n in range(1, 4)], lines({1, 2, 3}), path="b.py")
    assert len(run([a, b]).comments) == 6


def test_comments_max_caps_and_review_body_lists_the_rest() -> None:
    findings = [finding(n, "TX004") for n in (1, 2)] + [finding(n) for n in (3, 4)]
    out = run([audited(findings, lines({1, 2, 3, 4}))], Config(comments_max=2))
    assert [c.line for c in out.comments] == [3, 4]  # the errors win the cap
    assert out.review_body is not None
    assert "2 more findings are in the check run" in out.review_body
    assert "`app/jobs.py:1` TX004" in out.review_body
    assert len(out.annotations) == 4


def test_comments_max_zero_posts_nothing() -> None:
    out = run([audited([finding(1)], lines({1}))], Config(comments_max=0))
    assert out.comments == () and out.review_body is None
    assert len(out.annotations) == 1


def test_existing_fingerprints_are_not_commented_again() -> None:
    files = [audited([finding(1), finding(2)], lines({1, 2}))]
    first = run(files)
    assert len(first.comments) == 2
    seen = frozenset().union(*(fingerprints_in(c.body) for c in first.comments))
    again = run(files, existing_fingerprints=seen)
    assert again.comments == () and again.review_body is None
    assert len(again.annotations) == 2  # the check run still reports them
    partly = run(files, existing_fingerprints=frozenset({first.comments[0].fingerprint}))
    assert [c.line for c in partly.comments] == [2]


def test_moved_code_keeps_its_fingerprint_so_it_is_not_recommented() -> None:
    before = run([audited([finding(10, snippet="async with s.begin():")], lines({10}))])
    moved = finding(25, snippet="async  with s.begin():\n")  # whitespace differs too
    seen = fingerprints_in(before.comments[0].body)
    after = run([audited([moved], lines({25}))], existing_fingerprints=seen)
    assert after.comments == ()


def test_fingerprint_properties() -> None:
    a = finding(10, snippet="x = text('SELECT 1')")
    assert fingerprint(a, 0) == fingerprint(replace(a, line=99, end_line=99, column=1), 0)
    assert fingerprint(a, 0) != fingerprint(a, 1)
    assert fingerprint(a, 0) != fingerprint(replace(a, scope="other"), 0)
    assert fingerprint(a, 0) != fingerprint(replace(a, rule="ORM001"), 0)
    assert fingerprint(a, 0) != fingerprint(replace(a, path="other.py"), 0)
    assert int(fingerprint(a, 0), 16) >= 0


def test_second_identical_occurrence_gets_its_own_comment_and_fingerprint() -> None:
    twins = [finding(10, snippet="same"), finding(20, snippet="same")]
    out = run([audited(twins, lines({10, 20}))])
    assert len({c.fingerprint for c in out.comments}) == 2
    # Commenting the first does not hide the second.
    again = run(
        [audited(twins, lines({10, 20}))],
        existing_fingerprints=frozenset({out.comments[0].fingerprint}),
    )
    assert [c.line for c in again.comments] == [20]


def test_fingerprints_in_parses_markers_only() -> None:
    body = "text <!-- txaudit:fp=abc123 -->\n<!-- txaudit:fp=DEF456 --><!-- other:fp=999 -->"
    assert fingerprints_in(body) == {"abc123", "def456"}
    assert fingerprints_in("<!-- txaudit:fp=aa,bb -->") == {"aa", "bb"}
    assert fingerprints_in("") == frozenset()


# --- suggestions -----------------------------------------------------------------------


def test_suggestion_when_fix_is_wholly_inside_the_diff() -> None:
    fix = Fix(start_line=10, end_line=12, replacement="    rows = await s.execute(q)\n")
    patch = parse_patch("@@ -9,3 +9,5 @@\n ctx\n+a\n+b\n+c\n ctx\n ctx\n")  # 9..13
    out = run([audited([finding(10, fix=fix)], patch)])
    (comment,) = out.comments
    assert "```suggestion\n    rows = await s.execute(q)\n```" in comment.body
    assert comment.to_api() == {
        "path": "app/jobs.py",
        "line": 12,
        "side": "RIGHT",
        "start_line": 10,
        "start_side": "RIGHT",
        "body": comment.body,
    }


def test_single_line_suggestion_has_no_start_line() -> None:
    out = run([audited([finding(4, fix=Fix(4, 4, "x = 1\n"))], lines({4}))])
    api = out.comments[0].to_api()
    assert "start_line" not in api and api["line"] == 4
    assert "```suggestion\nx = 1\n```" in api["body"]


def test_no_suggestion_when_fix_leaves_the_diff() -> None:
    fix = Fix(start_line=10, end_line=15, replacement="")
    out = run([audited([finding(10, fix=fix)], lines({10, 11}, context={12}))])
    (comment,) = out.comments
    assert "suggestion" not in comment.body
    assert comment.line == 10 and comment.start_line is None


def test_no_suggestion_across_two_hunks() -> None:
    patch = PatchLines(
        added=frozenset({3, 4}), commentable=frozenset({2, 3, 4, 5}), hunks=((2, 3), (4, 5))
    )
    out = run([audited([finding(3, fix=Fix(3, 4, "y\n"))], patch)])
    assert "suggestion" not in out.comments[0].body


def test_no_suggestion_when_disabled() -> None:
    out = run(
        [audited([finding(4, fix=Fix(4, 4, "x = 1\n"))], lines({4}))],
        Config(comments_suggestions=False),
    )
    assert "suggestion" not in out.comments[0].body


def test_suggestion_fence_outgrows_backticks_in_the_replacement() -> None:
    out = run([audited([finding(4, fix=Fix(4, 4, 'doc = """```x```"""\n'))], lines({4}))])
    assert '````suggestion\ndoc = """```x```"""\n````' in out.comments[0].body


# --- summary ---------------------------------------------------------------------------


def test_summary_lists_suppressions_added_by_the_pr() -> None:
    sups = (
        Suppression(line=4, rule_ids=("TX004",), reason="isolated session pattern", used=True),
        Suppression(line=8, rule_ids=(), reason=None, used=True),
        Suppression(line=20, rule_ids=("TX001", "TX002"), reason="old code", used=False),
    )
    out = run([audited([], lines({4, 8}, context={20}), suppressions=sups)])
    assert "### Suppressions added by this pull request" in out.summary
    assert "- `app/jobs.py:4` TX004: “isolated session pattern”" in out.summary
    assert "- `app/jobs.py:8` all rules (blanket ignore): no reason given" in out.summary
    assert "app/jobs.py:20" not in out.summary  # not added by this PR


def test_summary_skipped_whole_notes_and_already_present() -> None:
    files = [
        audited([finding(1), finding(90, "TX004")], lines({1}), path="a.py"),
        audited([finding(2, "ORM003", path="w.py")], None, path="w.py"),
        AuditedFile("link.py", "added", None, None, skipped="not a regular file (symlink)"),
    ]
    out = run(files, notes=("TX007 module limit reached",))
    assert "| TX004 | split-batch-session | warning | 0 | 1 |" in out.summary
    assert "| ORM003 | sql-string | warning | 1 | 0 |" in out.summary
    assert "Already present" in out.summary
    assert "- `w.py` (1 finding)" in out.summary
    assert "- `link.py`: not a regular file (symlink)" in out.summary
    assert out.summary.rstrip().endswith("- TX007 module limit reached")
    assert "- `a.py:1` **TX001** nested-transaction (error)" in out.text
    assert "plus 1 finding already present" in out.text


def test_guide_links_point_at_the_base_commit_with_heading_anchors() -> None:
    config = Config(
        guides={
            "orm": Guide(path="/Docs/01-ABSOLUTE_ORM_REQUIREMENT.md"),
            "transaction": Guide(url="https://wiki.example.com/tx#old"),
        }
    )
    out = run(
        [audited([finding(1, "ORM003"), finding(2), finding(3, "TXA00")], lines({1, 2, 3}))],
        config,
    )
    orm = (
        f"{HTML_URL}/blob/{BASE}/Docs/01-ABSOLUTE_ORM_REQUIREMENT.md"
        "#code-smells---watch-for-these-warning-signs"
    )
    assert f"[orm guide: Code Smells - Watch For These Warning Signs]({orm})" in out.summary
    tx = "https://wiki.example.com/tx#background-task-transaction-pattern-correct--critical"
    label = "transaction guide: Background Task Transaction Pattern (CORRECT & CRITICAL)"
    assert f"[{label}]({tx})" in out.summary
    assert "`txaudit explain TXA00`" in out.summary  # no guide and no rules_url
    by_line = {a.start_line: a for a in out.annotations}
    assert by_line[1].message.endswith(f"Guide: {orm}")
    assert orm in out.comments[0].body


def test_section_override_changes_the_anchor() -> None:
    config = Config(
        guides={"transaction": Guide(path="g.md", sections={"TX001": "One session per task"})}
    )
    out = run([audited([finding(1)], lines({1}))], config)
    url = f"{HTML_URL}/blob/{BASE}/g.md#one-session-per-task"
    link = f"[transaction guide: One session per task]({url})"
    assert link in out.summary


def test_summary_and_text_are_truncated_with_a_note() -> None:
    long = "é" * 300
    findings = [finding(n, message=f"Problem {n} {long}", scope=f"s{n}") for n in range(1, 400)]
    files = [audited(findings, lines(set(range(1, 400))))]
    many_sups = tuple(Suppression(n, ("TX004",), "x" * 500, True) for n in range(1, 400))
    files.append(audited([], lines(set(range(1, 400))), path="z.py", suppressions=many_sups))
    out = run(files, Config(comments_max=0), notes=("TX007 module limit reached",))
    assert out.summary.endswith("- TX007 module limit reached\n")
    for text in (out.summary, out.text):
        assert len(text) <= 65535 and len(text.encode()) <= 65535
        assert "**Truncated:**" in text
    assert out.text.count("\n- `app/jobs.py:") < 399


# --- annotations -----------------------------------------------------------------------


def test_annotation_fields() -> None:
    out = run([audited([finding(6, column=9, end_column=30)], lines({6}))])
    (ann,) = out.annotations
    assert ann.to_api() == {
        "path": "app/jobs.py",
        "start_line": 6,
        "end_line": 6,
        "annotation_level": "failure",
        "message": "Nested begin() on an owned session.\n\nDetails: run `txaudit explain TX001`",
        "title": "TX001 nested-transaction",
        "raw_details": FAKE_DOCS["TX001"].summary,
        "start_column": 9,
        "end_column": 30,
    }
    levels = run(
        [
            audited(
                [finding(1, "TX004"), finding(2, "ORM003", severity=Severity.NOTICE)],
                lines({1, 2}),
            )
        ]
    ).annotations
    assert [a.annotation_level for a in levels] == ["warning", "notice"]


def test_to_api_drops_columns_for_multi_line_and_clips_lengths() -> None:
    ann = Annotation(
        path="a.py",
        start_line=1,
        end_line=3,
        annotation_level="warning",
        message="m" * 70000,
        title="t" * 300,
        raw_details="ü" * 40000,
        start_column=2,
        end_column=4,
    )
    api = ann.to_api()
    assert "start_column" not in api and "end_column" not in api
    assert len(api["title"]) == 255
    assert len(api["message"].encode()) <= 65535
    assert len(api["raw_details"].encode()) <= 65535
    assert set(api) == {
        "path",
        "start_line",
        "end_line",
        "annotation_level",
        "message",
        "title",
        "raw_details",
    }


def test_annotation_batches_of_at_most_50() -> None:
    out = run(
        [audited([finding(n, scope=str(n)) for n in range(1, 121)], lines(set(range(1, 121))))]
    )
    batches = out.annotation_batches()
    assert [len(b) for b in batches] == [50, 50, 20]
    assert [a["start_line"] for b in batches for a in b] == list(range(1, 121))
    assert [len(b) for b in out.annotation_batches(size=40)] == [40, 40, 40]
    with pytest.raises(ValueError):
        out.annotation_batches(size=51)
    assert run([]).annotation_batches() == []
    output = out.output(batches[0])
    assert output["title"] == out.title and len(output["annotations"]) == 50


def test_review_comment_to_api_single_line() -> None:
    c = ReviewComment(path="a.py", line=3, body="b", fingerprint="ab")
    assert c.to_api() == {"path": "a.py", "line": 3, "side": "RIGHT", "body": "b"}


# --- determinism -----------------------------------------------------------------------


def test_output_is_independent_of_input_order() -> None:
    files = [
        audited(
            [finding(n, rule, path=p) for n in (9, 2, 5) for rule in ("TX004", "TX001")],
            lines({2, 5, 9}),
            path=p,
        )
        for p in ("b.py", "a.py", "c.py")
    ]
    expected = run(files)
    rng = random.Random(7)
    for _ in range(5):
        shuffled = [
            replace(f, result=replace(f.result, findings=tuple(rng.sample(f.result.findings, 6))))
            for f in rng.sample(files, 3)
            if f.result is not None
        ]
        assert run(shuffled) == expected
    keys = [(c.path, c.line) for c in expected.comments]
    assert keys == sorted(keys)


def test_registry_lookup_failure_does_not_break_the_audit() -> None:
    out = build_outcome([audited([finding(1)], lines({1}))], Config(), CTX)
    assert out.conclusion == "failure" and len(out.comments) == 1


# --- outcomes without an audit -----------------------------------------------------------


def test_config_error_outcome_names_the_key_and_the_fix() -> None:
    out = config_error_outcome(".github/txaudit.yml: rules.TX9: unknown rule")
    assert out.conclusion == "failure"
    assert "rules.TX9" in out.title
    assert "fix key `rules.TX9` in .github/txaudit.yml (read from the base commit)" in out.summary
    assert out.annotations == () and out.comments == () and out.review_body is None
    other = config_error_outcome(".github/txaudit.yml: unknown key 'comments.foo'")
    assert "fix key `comments.foo`" in other.summary
    toml = config_error_outcome("pyproject.toml [tool.txaudit]: fail_on must be one of error")
    assert "fix key `fail_on` in pyproject.toml" in toml.summary
    yaml_err = config_error_outcome(".github/txaudit.yml: not valid YAML (line 3): bad indent")
    assert "fix .github/txaudit.yml" in yaml_err.summary


def test_error_outcome() -> None:
    out = error_outcome("GitHub answered 502 three times while listing files")
    assert out.conclusion == "failure"
    assert "GitHub answered 502 three times while listing files" in out.summary
    assert "re-run with `/txaudit`" in out.summary
    assert error_outcome("x", on_error="neutral").conclusion == "neutral"
    assert error_outcome("x", on_error="bogus").conclusion == "failure"


def test_cancelled_outcome() -> None:
    sha = "c0ffee" * 6 + "abcd"
    out = cancelled_outcome(sha)
    assert out.conclusion == "cancelled"
    assert f"superseded by {sha}" in out.summary
    assert sha in out.title


def test_reaudit_action_within_limits() -> None:
    assert len(REAUDIT_ACTION["label"]) <= 20
    assert len(REAUDIT_ACTION["description"]) <= 40
    assert len(REAUDIT_ACTION["identifier"]) <= 20


def test_fingerprint_all_matches_build_outcome() -> None:
    twins = [finding(20, snippet="same"), finding(10, snippet="same"), finding(5, "TX004")]
    out = run([audited(twins, lines({5, 10, 20}))])
    by_line = {c.line: c.fingerprint for c in out.comments}
    assert fingerprint_all(twins) == (by_line[20], by_line[10], by_line[5])
    assert fingerprint_all(twins)[1] == fingerprint(twins[1], 0)


@pytest.mark.parametrize(
    "doc",
    [
        "## Why is this bad?\n\nIt breaks atomicity.\n\nMore.",
        "**Why is this bad?**\nIt breaks\natomicity.\n",
        "Why is this bad?\n----------------\nIt breaks atomicity.\n\n## Example",
    ],
)
def test_why_it_matters_from_doc_headings(doc: str) -> None:
    out = build_outcome(
        [audited([finding(1)], lines({1}))],
        Config(),
        CTX,
        rule_lookup=lambda _: FakeRule(summary="s", doc=doc),
    )
    assert "**Why it matters:** It breaks atomicity." in out.comments[0].body


def test_review_body_lists_at_most_20_overflow_findings() -> None:
    many = [finding(n, "TX004", scope=str(n)) for n in range(1, 41)]
    out = run([audited([finding(50), *many], lines(set(range(1, 51))))], Config(comments_max=1))
    assert [c.line for c in out.comments] == [50]
    body = out.review_body or ""
    assert "40 more findings are in the check run" in body
    assert body.count("\n- `app/jobs.py:") == 20
    assert "- … and 20 more" in body
