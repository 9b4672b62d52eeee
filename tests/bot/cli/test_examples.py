"""examples/service breaks every registered rule; examples/service_fixed is clean."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest

from bot.cli.main import main

from .conftest import EXAMPLES
from .test_output import validate_sarif

pytestmark = pytest.mark.usefixtures("at_repo")

#: Rules the service does not break on purpose: a parse error is not a realistic module.
#: TXA02 needs an unparsable file; TXA03 an expiry date (it would fire from a fixed day on) and
#: TXA04 `require_reason`: their own examples and tests/bot/cli/test_suppressions.py cover them.
NOT_IN_SERVICE = {"TXA02", "TXA03", "TXA04"}
#: Where each rule is broken (file under examples/service/app/).
WHERE = {
    "TX001": "schedulers/sitemap_scheduler.py",
    "TX002": "services/sitemap_adapter.py",
    "TX003": "services/sitemap_adapter.py",
    "TX004": "schedulers/sitemap_scheduler.py",
    "TX005": "schedulers/sitemap_scheduler.py",
    "TX006": "schedulers/sitemap_scheduler.py",
    "TX007": "schedulers/sitemap_scheduler.py",
    "ORM001": "repositories/raw_reports.py",
    "ORM002": "routers/jobs.py",
    "ORM003": "repositories/raw_reports.py",
    "TXA00": "repositories/raw_reports.py",
    "TXA01": "schedulers/cleanup_scheduler.py",
}


def _check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["check", *args])
    return code, capsys.readouterr().out


def test_service_breaks_every_registered_rule(capsys: pytest.CaptureFixture[str]) -> None:
    from rules.engine.registry import all_rules

    code, out = _check(capsys, "examples/service", "--format", "json")
    assert code == 1
    doc = json.loads(out)
    assert doc["errors"] == []
    fired = {(f["rule"], f["path"]) for f in doc["findings"]}
    expected = {info.id for info in all_rules()} - NOT_IN_SERVICE
    missing = expected - {rule for rule, _ in fired}
    assert not missing, f"examples/service no longer breaks {sorted(missing)}"
    for rule in expected:
        assert (rule, f"examples/service/app/{WHERE[rule]}") in fired, rule
    guides = {f["rule"]: f["guide"] for f in doc["findings"] if f["rule"] in WHERE}
    for rule, guide in guides.items():
        if not rule.startswith("TXA"):
            assert guide.startswith("examples/service/Docs/Docs_1_AI_GUIDES/"), (rule, guide)
            target, anchor = guide.split("#")
            assert Path(target).is_file()
            assert anchor in _anchors(Path(target))


def _anchors(path: Path) -> set[str]:
    from rules.engine.guides import github_slug

    return {
        github_slug(line.lstrip("#").strip())
        for line in path.read_text().splitlines()
        if line.startswith("#")
    }


def test_suppression_with_reason_is_honoured(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _check(capsys, "examples/service/app/schedulers/cleanup_scheduler.py")
    assert code == 0, out
    assert "TX004" not in out


def test_service_fixed_is_clean(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _check(capsys, "examples/service_fixed", "--fail-on", "warning")
    assert code == 0, out
    assert out.startswith("All checks passed!")


def test_twins_have_the_same_modules() -> None:
    def modules(root: Path) -> set[str]:
        return {p.relative_to(root).as_posix() for p in root.rglob("*.py")}

    assert modules(EXAMPLES / "service") == modules(EXAMPLES / "service_fixed")


def test_service_sarif(capsys: pytest.CaptureFixture[str]) -> None:
    from rules.engine.registry import all_rules

    code, out = _check(capsys, "examples/service", "--format", "sarif")
    assert code == 1
    doc = json.loads(out)
    ids = {info.id for info in all_rules()}
    validate_sarif(doc, ids)
    driver_ids = [r["id"] for r in doc["runs"][0]["tool"]["driver"]["rules"]]
    assert driver_ids == [info.id for info in all_rules()]
    assert {r["ruleId"] for r in doc["runs"][0]["results"]} <= ids


def test_service_text_and_github(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _check(capsys, "examples/service")
    assert code == 1
    assert "examples/service/app/schedulers/sitemap_scheduler.py:" in out
    assert out.splitlines()[-1].startswith("Found ")
    code, out = _check(capsys, "examples/service", "--format", "github", "--select", "TX001")
    assert code == 1
    assert out.startswith("::error file=examples/service/app/schedulers/sitemap_scheduler.py,line=")


def test_github_format_stdout_is_workflow_commands_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["check", "examples/service", "--format", "github"]) == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 19
    assert all(line.startswith(("::error ", "::warning ", "::notice ")) for line in lines)
    assert captured.err.splitlines()[-1].startswith("Found 19 findings (")
    assert main(["check", "examples/service", "--format", "github", "--quiet"]) == 1
    assert capsys.readouterr().err == ""


def test_fix_on_a_copy_of_the_service(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(EXAMPLES / "service", tmp_path / "service")
    monkeypatch.chdir(tmp_path)
    code, before = _check(capsys, "service", "--format", "json")
    assert any(f["rule"] == "TX001" and f["fix"] for f in json.loads(before)["findings"])
    code, out = _check(capsys, "service", "--fix")
    assert code == 1  # TX002 etc. remain
    assert "TX001" not in out and "Fixed " in out
    scheduler = tmp_path / "service/app/schedulers/sitemap_scheduler.py"
    source = scheduler.read_text()
    ast.parse(source)
    assert "fetch_session.begin()" not in source
    code, after = _check(capsys, "service", "--format", "json")
    rules_after = {f["rule"] for f in json.loads(after)["findings"]}
    assert "TX001" not in rules_after and "TX002" in rules_after


def test_tx007_callee_location_reads_relative_to_the_working_directory(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Regression: the callee's file was named relative to examples/service (the project
    # root) while every finding path is relative to the working directory.
    code, out = _check(capsys, "examples/service", "--select", "TX007")
    assert code == 1
    assert "(examples/service/app/services/sitemap_adapter.py:68)" in out
