"""`txaudit action`'s pieces: the range of each event, the annotation budget, its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli.action import ActionsEnv, event_range, plan_annotations
from bot.cli.main import main
from rules.engine.model import Finding, Severity


def _env(tmp_path: Path, event_name: str, event: dict) -> ActionsEnv:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    return ActionsEnv.from_environ(
        {
            "GITHUB_EVENT_NAME": event_name,
            "GITHUB_EVENT_PATH": str(path),
            "GITHUB_OUTPUT": str(tmp_path / "out"),
            "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
            "GITHUB_SHA": "c" * 40,
        }
    )


def test_ranges_of_events(tmp_path: Path) -> None:
    pull = {"pull_request": {"number": 3, "base": {"sha": "a" * 40}, "head": {"sha": "b" * 40}}}
    env = _env(tmp_path, "pull_request_target", pull)
    assert env.event() == pull  # read from GITHUB_EVENT_PATH
    span = event_range(env, env.event())
    assert (span.base, span.head, span.description) == ("a" * 40, "b" * 40, "pull request #3")
    group = {"merge_group": {"base_sha": "a" * 40, "head_sha": "d" * 40}}
    assert event_range(env, group).head == "d" * 40
    manual = event_range(_env(tmp_path, "workflow_dispatch", {}), {})
    assert (manual.base, manual.head) == (None, "c" * 40)  # the default base, GITHUB_SHA


def test_deleted_branch_has_nothing_to_audit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env = _env(tmp_path, "push", {"deleted": True, "ref": "refs/heads/old"})
    monkeypatch.setenv("GITHUB_EVENT_NAME", "push")
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(env.event_path))
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "out"))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    monkeypatch.chdir(tmp_path)
    assert main(["action"]) == 0
    assert capsys.readouterr().out.startswith("::notice title=txaudit::Nothing to audit")
    assert (tmp_path / "out").read_text() == "findings=0\nsarif-file=\nconclusion=success\n"


def test_outside_actions_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GITHUB_EVENT_PATH", raising=False)
    assert main(["action"]) == 2
    err = capsys.readouterr().err
    assert "runs inside GitHub Actions" in err and "txaudit diff" in err


def _finding(severity: Severity, line: int) -> Finding:
    return Finding(
        rule="TX004",
        name="split-batch-session",
        severity=severity,
        path="a.py",
        line=line,
        column=1,
        end_line=line,
        end_column=2,
        message="m",
    )


def test_annotation_budget_per_level() -> None:
    findings = [_finding(Severity.NOTICE, n) for n in range(1, 13)]
    findings += [_finding(Severity.WARNING, n) for n in range(20, 23)]
    plan = plan_annotations(findings, [], prefix="src/", guide=lambda _: None, where="there")
    levels = [line.split(" ", 1)[0] for line in plan.lines]
    assert levels == ["::warning"] * 3 + ["::notice"] * 10
    assert plan.lines[0].startswith("::warning file=src/a.py,line=20,")
    assert plan.hidden == 3  # 12 notices: 9 fit beside the closing notice
    assert plan.lines[-1].startswith("::notice title=txaudit::3 more findings are not annotated")
    assert plan.lines[-1].endswith(": there.")
    exact = plan_annotations(findings[:10], [], prefix="", guide=lambda _: None, where="x")
    assert (len(exact.lines), exact.hidden) == (10, 0)  # ten fit without a closing line
