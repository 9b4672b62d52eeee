"""Accountable suppressions through the command line: `until=` expiry (TXA03) and
`suppressions.require_reason` (TXA04), with the real engine."""

from __future__ import annotations

import json
from datetime import date

import pytest

from bot.cli.main import main

from .conftest import Tree

COMMIT = "async def f(session):\n    await session.commit()"


def _findings(capsys: pytest.CaptureFixture[str]) -> list[tuple[str, int]]:
    data = json.loads(capsys.readouterr().out)
    return sorted((f["rule"], f["line"]) for f in data["findings"])


def test_an_expired_suppression_reports_the_finding_again_and_says_so(
    tree: Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    tree(
        {
            "app/old.py": COMMIT + "  # txaudit: ignore[TX002] until=2020-01-31 -- migration\n",
            "app/live.py": COMMIT + "  # txaudit: ignore[TX002] until=2999-12-31 -- migration\n",
            "app/typo.py": COMMIT + "  # txaudit: ignore[TX002] until=2027-02-30 -- migration\n",
        }
    )
    assert main(["check", "--format", "json", "app/old.py"]) == 1
    assert _findings(capsys) == [("TX002", 2), ("TXA03", 2)]
    assert main(["check", "--format", "json", "app/live.py"]) == 0
    assert _findings(capsys) == []
    assert main(["check", "app/typo.py"]) == 1  # a date that does not parse suppresses nothing
    out = capsys.readouterr().out
    assert "TXA03" in out and "`until=2027-02-30` is not a date" in out and "TX002" in out


def test_require_reason_makes_a_reasonless_suppression_count_for_nothing(
    tree: Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    tree(
        {
            "app/bare.py": COMMIT + "  # txaudit: ignore[TX002]\n",
            "app/why.py": COMMIT + "  # txaudit: ignore[TX002] -- the CLI owns the session\n",
        }
    )
    assert main(["check", "app"]) == 0  # a reason is optional by default
    capsys.readouterr()
    tree({".github/txaudit.yml": "suppressions:\n  require_reason: true\n"})
    assert main(["check", "--format", "json", "app"]) == 1
    data = json.loads(capsys.readouterr().out)
    got = sorted((f["path"], f["rule"]) for f in data["findings"])
    assert got == [("app/bare.py", "TX002"), ("app/bare.py", "TXA04")]
    assert main(["report", "app"]) == 1
    report = capsys.readouterr().out
    assert "TXA04" in report and "TX002" in report
    assert "`TX002` — *no reason given* (suppresses nothing" in report


def test_a_bad_suppressions_key_is_a_configuration_error(
    tree: Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    tree({"app/a.py": "x = 1\n", ".github/txaudit.yml": "suppressions:\n  require: yes\n"})
    assert main(["check", "app"]) == 2
    assert "suppressions.require" in capsys.readouterr().err


def test_rules_and_explain_list_the_new_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules"]) == 0
    listing = capsys.readouterr().out
    assert "TXA03" in listing and "expired-ignore" in listing
    assert "TXA04" in listing and "ignore-without-reason" in listing
    assert main(["explain", "TXA03"]) == 0
    assert "until=" in capsys.readouterr().out


def test_the_expiry_day_itself_still_suppresses() -> None:
    from rules.engine import audit_source
    from rules.engine.config import Config

    source = (COMMIT + "  # txaudit: ignore[TX002] until=2027-03-31 -- migration\n").encode()
    on_the_day = audit_source(source, "app/a.py", Config(today=date(2027, 3, 31)))
    after = audit_source(source, "app/a.py", Config(today=date(2027, 4, 1)))
    assert [f.rule for f in on_the_day.findings] == []
    assert sorted(f.rule for f in after.findings) == ["TX002", "TXA03"]
    [expired] = [f for f in after.findings if f.rule == "TXA03"]
    assert "expired on 2027-03-31 (reason: migration)" in expired.message
