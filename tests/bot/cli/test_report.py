"""`txaudit report`: the Markdown audit report of a tree."""

from __future__ import annotations

import json
import re

import pytest

from bot.cli.main import main

from .conftest import Tree


def _check_json(capsys: pytest.CaptureFixture[str], path: str) -> dict:
    main(["check", path, "--format", "json"])
    return json.loads(capsys.readouterr().out)


def _assert_report_matches(report: str, doc: dict) -> None:
    bad_files = sorted({f["path"] for f in doc["findings"]})
    assert bad_files
    for path in bad_files:
        assert f"### `{path}`" in report
        assert f"- [ ] `{path}`:" in report  # the checklist
    for rule, count in doc["summary"]["by_rule"].items():
        assert re.search(rf"^\| {rule} \| [a-z-]* \| {count} \| \d+ \| .+ \|$", report, re.M), rule
    assert f"| **Total** | | **{doc['summary']['findings']}** |" in report


@pytest.mark.usefixtures("fake_engine", "at_repo")
def test_report_of_examples_service(capsys: pytest.CaptureFixture[str]) -> None:
    doc = _check_json(capsys, "examples/service")
    assert main(["report", "examples/service"]) == 1
    report = capsys.readouterr().out
    assert report.startswith("# txaudit audit report\n")
    _assert_report_matches(report, doc)
    # Guides configured in examples/service/.github/txaudit.yml, linked relative to the cwd.
    assert (
        "(examples/service/Docs/Docs_1_AI_GUIDES/13-TRANSACTION_MANAGEMENT_GUIDE.md"
        "#background-task-transaction-pattern-correct--critical)"
    ) in report


@pytest.mark.usefixtures("fake_engine")
def test_report_output_file_and_links(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    root = tree(
        {
            ".github/txaudit.yml": "guides:\n  transaction: {path: Docs/tx.md}\n",
            "app/jobs.py": "async def f(session):\n    await session.commit()\n",
            "app/db.py": "from x import get_background_session\n",
            "app/plain.py": "x = 1\n",
        }
    )
    assert main(["report", "--output", "out/report.md", "--fail-on", "never"]) == 0
    assert "wrote the report of 3 files to out/report.md" in capsys.readouterr().err
    report = (root / "out/report.md").read_text()
    assert "### `app/jobs.py`" in report and "### `app/db.py`" in report
    assert "app/plain.py" not in report  # neither opens a session nor touches SQL
    assert "Status: ✅ clean" in report
    assert "](../Docs/tx.md#background-task-transaction-pattern-correct--critical)" in report
    assert "| TX002 borrowed-session-commit | error | 2 |" in report


@pytest.mark.usefixtures("fake_engine")
def test_report_clean_tree(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    tree({"app/db.py": "from x import get_background_session\n"})
    assert main(["report"]) == 0
    report = capsys.readouterr().out
    assert "**No findings.**" in report and "- [x] Nothing left to fix." in report


@pytest.mark.usefixtures("fake_engine")
def test_report_errors(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    tree({"a.py": "x = 1\n"})
    assert main(["report", "missing"]) == 2
    assert capsys.readouterr().err.strip() == "txaudit: error: missing: no such file or directory"
    assert main(["report", "--output", "a.py/r.md"]) == 2  # a file where a folder should be
    assert "cannot write the report" in capsys.readouterr().err


@pytest.mark.usefixtures("at_repo")
def test_report_of_examples_service_real_engine(capsys: pytest.CaptureFixture[str]) -> None:
    doc = _check_json(capsys, "examples/service")
    assert main(["report", "examples/service"]) == 1
    report = capsys.readouterr().out
    _assert_report_matches(report, doc)
    for name in ("sitemap_scheduler.py", "sitemap_adapter.py", "jobs.py", "raw_reports.py"):
        assert name in report
    assert "isolated session pattern" in report  # the suppression and its reason
